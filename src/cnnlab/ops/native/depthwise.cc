// Depthwise 2D convolution (groups == C, channel multiplier 1), float32, channels-last, as
// three XLA FFI handlers: forward, input gradient and weight gradient (docs/performance.md,
// "A native depthwise kernel"). Shapes: x (N, H, W, C), w (KH, KW, C), y (N, OH, OW, C);
// attributes: strides sh, sw, dilations dh, dw, low paddings ph, pw (the high paddings follow
// from the shapes). Each output element sums its taps in registers over blocks of channels,
// interior columns in strips that load each tap's kernel vector once, and the weight gradient
// sums a row's interior columns for all kernel columns at once (docs/performance.md, "Column
// strips in the depthwise kernel"); rows are split between the caller and XLA's intra-op
// thread pool.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "common.h"

namespace cnnlab {
namespace {

using Taps = std::vector<std::vector<std::pair<int64_t, int64_t>>>;

// For each of `out` positions along one dim, its (tap, position in `in`) pairs:
// in = o * stride - pad + k * dilation, kept when inside [0, in).
Taps ForwardTaps(int64_t out, int64_t in, int64_t taps, int64_t stride, int64_t dilation,
                 int64_t pad) {
  Taps t(out);
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t k = 0; k < taps; ++k) {
      int64_t i = o * stride - pad + k * dilation;
      if (i >= 0 && i < in) t[o].emplace_back(k, i);
    }
  }
  return t;
}

// The transpose: for each of `in` positions, its (tap, output position) pairs.
Taps InputTaps(int64_t out, int64_t in, int64_t taps, int64_t stride, int64_t dilation,
               int64_t pad) {
  Taps t(in);
  Taps f = ForwardTaps(out, in, taps, stride, dilation, pad);
  for (int64_t o = 0; o < out; ++o) {
    for (auto [k, i] : f[o]) t[i].emplace_back(k, o);
  }
  return t;
}

// Calls op(std::integral_constant<int, V>(), o) for the channel blocks [o, o + 8 * V) of 64, 32
// and 8 channels that cover [first, c), then with V = 0 for each remaining channel o.
template <typename Op>
void ForChannelBlocks(int64_t c, Op op, int64_t first = 0) {
  int64_t o = first;
  for (; o + 64 <= c; o += 64) op(std::integral_constant<int, 8>(), o);
  for (; o + 32 <= c; o += 32) op(std::integral_constant<int, 4>(), o);
  for (; o + 8 <= c; o += 8) op(std::integral_constant<int, 1>(), o);
  for (; o < c; ++o) op(std::integral_constant<int, 0>(), o);
}

// One tap's offsets, in floats, into the kernel and into the summed operand.
struct Offset {
  int64_t w, a;
};
using Offsets = std::vector<Offset>;

// The tap tables scaled to offsets: rows (k, i) -> (k * KW * C, i * cols_a * C), cols (l, j) ->
// (l * C, j * C).
std::vector<Offsets> Scaled(const Taps& taps, int64_t w_step, int64_t a_step) {
  std::vector<Offsets> out(taps.size());
  for (size_t i = 0; i < taps.size(); ++i) {
    for (auto [k, j] : taps[i]) out[i].push_back({k * w_step, j * a_step});
  }
  return out;
}

// out[b] = sum over the taps rows x cols of a[b + offsets] * w[b + offsets], b < 8 * V: one
// output position's block of channels (V = 0: one channel).
template <int V>
inline void TapBlock(float* out, const float* a, const float* w, const Offsets& rows,
                     const Offsets& cols) {
  if constexpr (V == 0) {
    float acc = 0.0f;
    for (auto r : rows) {
      for (auto s : cols) acc += a[r.a + s.a] * w[r.w + s.w];
    }
    *out = acc;
  } else {
    V8 acc[V] = {};
    for (auto r : rows) {
      for (auto s : cols) {
        const float* p = a + r.a + s.a;
        const float* q = w + r.w + s.w;
        for (int v = 0; v < V; ++v) acc[v] += Load(p + 8 * v) * Load(q + 8 * v);
      }
    }
    for (int v = 0; v < V; ++v) Store(out + 8 * v, acc[v]);
  }
}

// Output columns per strip: kStrip columns x one Vec of channels as sums in registers.
constexpr int kStrip = 6;

// out[q * c + b] for q < kStrip, b < kLanes: a strip of output columns whose taps are those of its
// first column (cols) shifted by `step` floats per column; each tap's kernel vector is loaded
// once for the strip.
__attribute__((noinline)) void TapStrip(float* out, const float* a, const float* w,
                                        const Offsets& rows, const Offsets& cols, int64_t step,
                                        int64_t c) {
  Vec acc[kStrip] = {};
  for (auto r : rows) {
    for (auto s : cols) {
      Vec wv = LoadN<kLanes>(w + r.w + s.w);
      const float* p = a + r.a + s.a;
#pragma GCC unroll 16
      for (int q = 0; q < kStrip; ++q) acc[q] += LoadN<kLanes>(p + q * step) * wv;
    }
  }
#pragma GCC unroll 16
  for (int q = 0; q < kStrip; ++q) StoreN<kLanes>(out + q * c, acc[q]);
}

// The step (floats) by which the taps of columns q .. q + kStrip - 1 shift per column, or 0
// where they are not one set of taps shifted (image borders, strided input gradients).
int64_t StripStep(const std::vector<Offsets>& cols, size_t q) {
  if (q + kStrip > cols.size() || cols[q].empty() || cols[q + 1].size() != cols[q].size()) {
    return 0;
  }
  int64_t step = cols[q + 1][0].a - cols[q][0].a;
  for (size_t j = q + 1; j < q + kStrip; ++j) {
    if (cols[j].size() != cols[q].size()) return 0;
    for (size_t t = 0; t < cols[q].size(); ++t) {
      if (cols[j][t].w != cols[q][t].w ||
          cols[j][t].a != cols[q][t].a + static_cast<int64_t>(j - q) * step) {
        return 0;
      }
    }
  }
  return step;
}

// One output row: out (Q, C) from one image's a and w by its row's and every column's taps;
// steps[q] (StripStep) nonzero where a strip starts.
void TapRow(float* out, const float* a, const float* w, const Offsets& rows,
            const std::vector<Offsets>& cols, const std::vector<int64_t>& steps, int64_t c) {
  for (size_t q = 0; q < cols.size();) {
    int64_t o = 0, width = 1;
    if (steps[q] != 0) {
      for (; o + kLanes <= c; o += kLanes) {
        TapStrip(out + q * c + o, a + o, w + o, rows, cols[q], steps[q], c);
      }
      width = kStrip;
    }
    for (int64_t j = q; j < static_cast<int64_t>(q) + width; ++j) {
      ForChannelBlocks(c, [&](auto v, int64_t b) {
        TapBlock<decltype(v)::value>(out + j * c + b, a + b, w + b, rows, cols[j]);
      }, o);
    }
    q += width;
  }
}

// out (N, P, Q, C) from a (N, rows_a, cols_a, C) and w (KH, KW, C) by the tap tables.
void TapConv(ffi::ThreadPool& pool, float* out, const float* a, const float* w,
             const Taps& row_taps, const Taps& col_taps, int64_t n, int64_t rows_a,
             int64_t cols_a, int64_t kw, int64_t c) {
  std::vector<Offsets> rows = Scaled(row_taps, kw * c, cols_a * c), cols = Scaled(col_taps, c, c);
  int64_t p = rows.size(), q = cols.size();
  std::vector<int64_t> steps(q, 0);
  for (int64_t j = 0; j < q;) {
    steps[j] = StripStep(cols, j);
    j += steps[j] != 0 ? kStrip : 1;
  }
  ParallelFor(pool, n * p, Chunks(pool, n * p), [&](int64_t lo, int64_t hi, int64_t) {
    for (int64_t r = lo; r < hi; ++r) {
      TapRow(out + r * q * c, a + (r / p) * rows_a * cols_a * c, w, rows[r % p], cols, steps, c);
    }
  });
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                   int64_t ph, int64_t pw) {
  auto xd = x.dimensions(), wd = w.dimensions(), yd = y->dimensions();
  Taps rows = ForwardTaps(yd[1], xd[1], wd[0], sh, dh, ph);
  Taps cols = ForwardTaps(yd[2], xd[2], wd[1], sw, dw, pw);
  TapConv(pool, y->typed_data(), x.typed_data(), w.typed_data(), rows, cols, xd[0], xd[1], xd[2],
          wd[1], xd[3]);
  return ffi::Error::Success();
}

ffi::Error InputGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> gy, ffi::Buffer<ffi::F32> w,
                     ffi::ResultBuffer<ffi::F32> dx, int64_t sh, int64_t sw, int64_t dh,
                     int64_t dw, int64_t ph, int64_t pw) {
  auto gd = gy.dimensions(), wd = w.dimensions(), xd = dx->dimensions();
  Taps rows = InputTaps(gd[1], xd[1], wd[0], sh, dh, ph);
  Taps cols = InputTaps(gd[2], xd[2], wd[1], sw, dw, pw);
  TapConv(pool, dx->typed_data(), gy.typed_data(), w.typed_data(), rows, cols, gd[0], gd[1],
          gd[2], wd[1], gd[3]);
  return ffi::Error::Success();
}

// acc[b] += sum over t of x[js[t], b] * g[qs[t], b], b < 8 * V (V8 blocks; V = 0: one channel):
// one kernel column's products along one output row. xr, gr (columns, C) start at the block.
template <int V>
inline void WeightBlock(float* acc_out, const float* xr, const float* gr,
                        const std::vector<int64_t>& js, const std::vector<int64_t>& qs,
                        int64_t c) {
  if constexpr (V == 0) {
    float acc = *acc_out;
    for (size_t t = 0; t < js.size(); ++t) acc += xr[js[t] * c] * gr[qs[t] * c];
    *acc_out = acc;
  } else {
    V8 acc[V];
    for (int v = 0; v < V; ++v) acc[v] = Load(acc_out + 8 * v);
    for (size_t t = 0; t < js.size(); ++t) {
      const float* p = xr + js[t] * c;
      const float* q = gr + qs[t] * c;
      for (int v = 0; v < V; ++v) acc[v] += Load(p + 8 * v) * Load(q + 8 * v);
    }
    for (int v = 0; v < V; ++v) Store(acc_out + 8 * v, acc[v]);
  }
}

// acc[l * c + b] += sum over output columns q in [qa, qb) of x[q * sw + l * dw, b] * g[q, b] for
// l < L, b < kLanes: L kernel columns' products along one output row, each cotangent vector
// loaded once for the L taps, even and odd columns in separate sums. xr starts at the block and
// at the column of q = 0, tap 0 (q * sw - pw).
template <int L>
__attribute__((noinline)) void WeightStrip(float* acc_out, const float* xr, const float* gr,
                                           int64_t qa, int64_t qb, int64_t sw, int64_t dw,
                                           int64_t c) {
  Vec even[L] = {}, odd[L] = {};
  int64_t q = qa;
  for (; q + 1 < qb; q += 2) {
    Vec g0 = LoadN<kLanes>(gr + q * c), g1 = LoadN<kLanes>(gr + (q + 1) * c);
#pragma GCC unroll 8
    for (int l = 0; l < L; ++l) {
      even[l] += LoadN<kLanes>(xr + (q * sw + l * dw) * c) * g0;
      odd[l] += LoadN<kLanes>(xr + ((q + 1) * sw + l * dw) * c) * g1;
    }
  }
  if (q < qb) {
    Vec g0 = LoadN<kLanes>(gr + q * c);
#pragma GCC unroll 8
    for (int l = 0; l < L; ++l) even[l] += LoadN<kLanes>(xr + (q * sw + l * dw) * c) * g0;
  }
#pragma GCC unroll 8
  for (int l = 0; l < L; ++l) {
    StoreN<kLanes>(acc_out + l * c, LoadN<kLanes>(acc_out + l * c) + even[l] + odd[l]);
  }
}

ffi::Error WeightGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> gy,
                      ffi::ResultBuffer<ffi::F32> dwt, int64_t sh, int64_t sw, int64_t dh,
                      int64_t dw, int64_t ph, int64_t pw) {
  auto xd = x.dimensions(), gd = gy.dimensions(), wd = dwt->dimensions();
  int64_t h = xd[1], w = xd[2], c = xd[3], oh = gd[1], ow = gd[2], kh = wd[0], kw = wd[1];
  Taps rows = ForwardTaps(oh, h, kh, sh, dh, ph);
  // Output columns [qa, qb) read all kw taps inside the input: for kernels up to 3 columns wide
  // WeightStrip sums them in the channels [0, cv) of full vectors. For each kernel column l,
  // js[l], qs[l] list the other (input, output) column pairs under it, and js_all[l],
  // qs_all[l] every pair, for the channels [cv, c).
  Taps cols = ForwardTaps(ow, w, kw, sw, dw, pw);
  int64_t qa = 0, qb = 0;
  if (kw <= 3) {
    while (qa < ow && static_cast<int64_t>(cols[qa].size()) < kw) ++qa;
    for (qb = qa; qb < ow && static_cast<int64_t>(cols[qb].size()) == kw;) ++qb;
  }
  int64_t cv = qb > qa ? c - c % kLanes : 0;
  auto strip = kw == 3 ? WeightStrip<3> : kw == 2 ? WeightStrip<2> : WeightStrip<1>;
  std::vector<std::vector<int64_t>> js(kw), qs(kw), js_all(kw), qs_all(kw);
  for (int64_t q = 0; q < ow; ++q) {
    for (auto [l, j] : cols[q]) {
      js_all[l].push_back(j);
      qs_all[l].push_back(q);
      if (q >= qa && q < qb) continue;
      js[l].push_back(j);
      qs[l].push_back(q);
    }
  }
  const float* xs = x.typed_data();
  const float* gs = gy.typed_data();
  int64_t k = kh * kw * c, items = xd[0] * oh, chunks = Chunks(pool, items);
  std::vector<float> partial(chunks * k, 0.0f);
  ParallelFor(pool, items, chunks, [&](int64_t lo, int64_t hi, int64_t chunk) {
    float* acc = partial.data() + chunk * k;
    for (int64_t r = lo; r < hi; ++r) {
      const float* gr = gs + r * ow * c;
      for (auto [a, i] : rows[r % oh]) {
        const float* xr = xs + ((r / oh) * h + i) * w * c;
        float* out = acc + a * kw * c;
        const float* x0 = xr - pw * c;  // column q * sw - pw of tap 0 is x0 + q * sw * c
        for (int64_t o = 0; o < cv; o += kLanes) strip(out + o, x0 + o, gr + o, qa, qb, sw, dw, c);
        for (int64_t l = 0; l < kw; ++l) {
          ForChannelBlocks(cv, [&](auto v, int64_t o) {
            WeightBlock<decltype(v)::value>(out + l * c + o, xr + o, gr + o, js[l], qs[l], c);
          });
          ForChannelBlocks(c, [&](auto v, int64_t o) {
            WeightBlock<decltype(v)::value>(out + l * c + o, xr + o, gr + o, js_all[l], qs_all[l],
                                            c);
          }, cv);
        }
      }
    }
  });
  SumPartials(pool, partial.data(), chunks, k, dwt->typed_data());
  return ffi::Error::Success();
}

}  // namespace
}  // namespace cnnlab

#define CNNLAB_DEPTHWISE_HANDLER(symbol, fn) \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(symbol, fn,  \
                                CNNLAB_CONV_BINDING().Attr<int64_t>("ph").Attr<int64_t>("pw"))

CNNLAB_DEPTHWISE_HANDLER(CnnlabDepthwiseForward, cnnlab::Forward);
CNNLAB_DEPTHWISE_HANDLER(CnnlabDepthwiseInputGrad, cnnlab::InputGrad);
CNNLAB_DEPTHWISE_HANDLER(CnnlabDepthwiseWeightGrad, cnnlab::WeightGrad);
