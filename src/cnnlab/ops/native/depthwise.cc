// Depthwise 2D convolution (groups == C, channel multiplier 1), float32, channels-last, as
// three XLA FFI handlers: forward, input gradient and weight gradient (docs/performance.md,
// "A native depthwise kernel"). Shapes: x (N, H, W, C), w (KH, KW, C), y (N, OH, OW, C);
// attributes: strides sh, sw, dilations dh, dw, low paddings ph, pw (the high paddings follow
// from the shapes). Each output element sums its taps in registers over blocks of channels:
// rows of a 3-wide, stride-1 kernel as wide as their operand in one sliding pass (SlideRow),
// other interior columns in strips that load each input and kernel vector once per strip
// (AdjacentStrip, TapStrip), border columns one by one; the weight gradient sums a row's
// interior columns for all of a 3-wide kernel's taps at once (WeightRows; docs/performance.md,
// "Column strips in the depthwise kernel", "Sliding rows in the depthwise kernel"). Rows are split
// between the caller and XLA's intra-op thread pool.
#include <algorithm>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "common.h"

namespace cnnlab {
namespace {

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

// A strip whose columns' KW taps read KW adjacent input columns (offsets `a` + t * c, t < KW,
// with kernel offsets w[t]), the columns SW input columns apart: each row tap loads each input
// vector once and adds it into every output column that reads it (KW * kStrip multiply-adds
// from (kStrip - 1) * SW + KW input loads, against kStrip * KW for TapStrip).
struct Adjacent;
using StripFn = void (*)(float*, const float*, const float*, const Offsets&, const Adjacent&,
                         int64_t);

struct Adjacent {
  StripFn kernel = nullptr;  // its AdjacentStrip; nullptr: the strip is not of this form
  int64_t a = 0;             // the first column's first input column, in floats
  int64_t w[5] = {};         // the kernel offsets of input columns a, a + c, ...
};

// A column's taps in the order of their input offsets.
Offsets ByInput(Offsets taps) {
  std::sort(taps.begin(), taps.end(), [](Offset x, Offset y) { return x.a < y.a; });
  return taps;
}

template <int KW, int SW>
__attribute__((noinline)) void AdjacentStrip(float* out, const float* a, const float* w,
                                             const Offsets& rows, const Adjacent& s, int64_t c) {
  Vec acc[kStrip] = {};
  for (auto r : rows) {
    Vec wv[KW];
#pragma GCC unroll 8
    for (int t = 0; t < KW; ++t) wv[t] = LoadN<kLanes>(w + r.w + s.w[t]);
    const float* p = a + r.a + s.a;
#pragma GCC unroll 32
    for (int j = 0; j < (kStrip - 1) * SW + KW; ++j) {
      Vec v = LoadN<kLanes>(p + j * c);
#pragma GCC unroll 8
      for (int q = 0; q < kStrip; ++q) {
        if (j - q * SW >= 0 && j - q * SW < KW) acc[q] += v * wv[j - q * SW];
      }
    }
  }
#pragma GCC unroll 16
  for (int q = 0; q < kStrip; ++q) StoreN<kLanes>(out + q * c, acc[q]);
}

// The Adjacent form of the strip starting at column q with step `step` (StripStep), if it has one.
Adjacent AdjacentForm(const std::vector<Offsets>& cols, size_t q, int64_t step, int64_t c) {
  Adjacent s;
  int64_t kw = cols[q].size(), sw = step / c;
  if (step % c != 0 || (kw != 3 && kw != 5) || (sw != 1 && sw != 2)) return s;
  Offsets taps = ByInput(cols[q]);
  for (int64_t t = 0; t < kw; ++t) {
    if (taps[t].a != taps[0].a + t * c) return s;
    s.w[t] = taps[t].w;
  }
  s.a = taps[0].a;
  if (kw == 3) s.kernel = sw == 1 ? AdjacentStrip<3, 1> : AdjacentStrip<3, 2>;
  if (kw == 5) s.kernel = sw == 1 ? AdjacentStrip<5, 1> : AdjacentStrip<5, 2>;
  return s;
}

// One output row: out (Q, C) from one image's a and w by its row's and every column's taps;
// steps[q] (StripStep) nonzero where a strip starts, adjacent[q] its Adjacent form.
void TapRow(float* out, const float* a, const float* w, const Offsets& rows,
            const std::vector<Offsets>& cols, const std::vector<int64_t>& steps,
            const std::vector<Adjacent>& adjacent, int64_t c) {
  for (size_t q = 0; q < cols.size();) {
    int64_t o = 0, width = 1;
    if (steps[q] != 0) {
      for (; o + kLanes <= c; o += kLanes) {
        if (adjacent[q].kernel) {
          adjacent[q].kernel(out + q * c + o, a + o, w + o, rows, adjacent[q], c);
        } else {
          TapStrip(out + q * c + o, a + o, w + o, rows, cols[q], steps[q], c);
        }
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

// out[q, b] = sum over tap rows t < RT of a[t][q - 1, b] * k[t][0][b] + a[t][q, b] * k[t][1][b] +
// a[t][q + 1, b] * k[t][2][b] for q < width, b < kLanes, columns outside [0, width) read as
// zero: one output row of a 3-wide, stride-1, undilated kernel whose output is as wide as its
// operand, one vector of channels. Each operand vector is loaded once and each kernel vector once
// per row; the border columns are the same loop's first and last.
template <int RT>
__attribute__((noinline)) void SlideRow(float* out, const float* const* a,
                                        const float* const (*k)[3], int64_t width, int64_t c) {
  Vec kv[RT][3], prev[RT], cur[RT];
#pragma GCC unroll 4
  for (int t = 0; t < RT; ++t) {
#pragma GCC unroll 4
    for (int u = 0; u < 3; ++u) kv[t][u] = LoadN<kLanes>(k[t][u]);
    prev[t] = Vec{};
    cur[t] = LoadN<kLanes>(a[t]);
  }
  for (int64_t q = 0; q + 1 < width; ++q) {
    Vec sum = {};
#pragma GCC unroll 4
    for (int t = 0; t < RT; ++t) {
      Vec next = LoadN<kLanes>(a[t] + (q + 1) * c);
      sum += prev[t] * kv[t][0] + cur[t] * kv[t][1] + next * kv[t][2];
      prev[t] = cur[t];
      cur[t] = next;
    }
    StoreN<kLanes>(out + q * c, sum);
  }
  Vec sum = {};
#pragma GCC unroll 4
  for (int t = 0; t < RT; ++t) sum += prev[t] * kv[t][0] + cur[t] * kv[t][1];
  StoreN<kLanes>(out + (width - 1) * c, sum);
}

using SlideFn = void (*)(float*, const float* const*, const float* const (*)[3], int64_t,
                         int64_t);

// The kernel offsets (floats) of columns q - 1, q, q + 1 where every column's taps have
// SlideRow's form (at least 3 columns, as many as the operand's), else empty.
std::vector<int64_t> SlideForm(const std::vector<Offsets>& cols, int64_t cols_a, int64_t c) {
  int64_t width = cols.size();
  if (width < 3 || width != cols_a || cols[1].size() != 3) return {};
  Offsets mid = ByInput(cols[1]);
  std::vector<int64_t> k = {mid[0].w, mid[1].w, mid[2].w};
  for (int64_t q = 0; q < width; ++q) {
    Offsets taps = ByInput(cols[q]);
    size_t t = 0;
    for (int64_t u = 0; u < 3; ++u) {
      if (q - 1 + u < 0 || q - 1 + u >= width) continue;
      if (t >= taps.size() || taps[t].a != (q - 1 + u) * c || taps[t].w != k[u]) return {};
      ++t;
    }
    if (t != taps.size()) return {};
  }
  return k;
}

// SlideRow over one output row's channel blocks (the channels past the last full vector by
// TapBlock); false where the row has more than 3 tap rows.
bool SlideRows(float* out, const float* a, const float* w, const Offsets& rows,
               const std::vector<Offsets>& cols, const std::vector<int64_t>& k, int64_t c) {
  static constexpr SlideFn kernels[3] = {SlideRow<1>, SlideRow<2>, SlideRow<3>};
  if (rows.empty() || rows.size() > 3) return false;
  int64_t width = cols.size(), o = 0;
  for (; o + kLanes <= c; o += kLanes) {
    const float* as[3];
    const float* ks[3][3];
    for (size_t t = 0; t < rows.size(); ++t) {
      as[t] = a + rows[t].a + o;
      for (int u = 0; u < 3; ++u) ks[t][u] = w + rows[t].w + k[u] + o;
    }
    kernels[rows.size() - 1](out + o, as, ks, width, c);
  }
  for (int64_t j = 0; j < width; ++j) {
    ForChannelBlocks(c, [&](auto v, int64_t b) {
      TapBlock<decltype(v)::value>(out + j * c + b, a + b, w + b, rows, cols[j]);
    }, o);
  }
  return true;
}

// out (N, P, Q, C) from a (N, rows_a, cols_a, C) and w (KH, KW, C) by the tap tables.
void TapConv(ffi::ThreadPool& pool, float* out, const float* a, const float* w,
             const Taps& row_taps, const Taps& col_taps, int64_t n, int64_t rows_a,
             int64_t cols_a, int64_t kw, int64_t c) {
  std::vector<Offsets> rows = Scaled(row_taps, kw * c, cols_a * c), cols = Scaled(col_taps, c, c);
  int64_t p = rows.size(), q = cols.size();
  std::vector<int64_t> steps(q, 0);
  std::vector<Adjacent> adjacent(q);
  for (int64_t j = 0; j < q;) {
    steps[j] = StripStep(cols, j);
    if (steps[j] != 0) adjacent[j] = AdjacentForm(cols, j, steps[j], c);
    j += steps[j] != 0 ? kStrip : 1;
  }
  std::vector<int64_t> slide = SlideForm(cols, cols_a, c);
  ParallelFor(pool, n * p, Chunks(pool, n * p), [&](int64_t lo, int64_t hi, int64_t) {
    for (int64_t r = lo; r < hi; ++r) {
      float* row = out + r * q * c;
      const float* image = a + (r / p) * rows_a * cols_a * c;
      if (slide.empty() || !SlideRows(row, image, w, rows[r % p], cols, slide, c)) {
        TapRow(row, image, w, rows[r % p], cols, steps, adjacent, c);
      }
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

// For tap rows t < RT: out[t][l * c + b] += sum over output columns q in [qa, qb) of
// x[t][q * SW + l, b] * g[q, b], l < 3, b < kLanes: a 3-wide kernel's products along one output
// row for all its tap rows at once. Each cotangent vector is loaded once for the 3 * RT taps, and
// each input vector once per tap row (kept in registers for the columns that read it again).
// x[t] start at the block and at the column of q = 0, tap 0.
template <int RT, int SW>
__attribute__((noinline)) void WeightRows(float* const* out, const float* const* x,
                                          const float* gr, int64_t qa, int64_t qb, int64_t c) {
  Vec acc[RT][3] = {}, win[RT][3];
#pragma GCC unroll 4
  for (int t = 0; t < RT; ++t) {
    for (int l = 0; l < 3 - SW; ++l) win[t][l + SW] = LoadN<kLanes>(x[t] + (qa * SW + l) * c);
  }
  for (int64_t q = qa; q < qb; ++q) {
    Vec g = LoadN<kLanes>(gr + q * c);
#pragma GCC unroll 4
    for (int t = 0; t < RT; ++t) {
      // win[t][l] = x[t][q * SW + l]: the last 3 - SW from the column before, SW new.
#pragma GCC unroll 4
      for (int l = 0; l < 3 - SW; ++l) win[t][l] = win[t][l + SW];
#pragma GCC unroll 4
      for (int l = 3 - SW; l < 3; ++l) win[t][l] = LoadN<kLanes>(x[t] + (q * SW + l) * c);
#pragma GCC unroll 4
      for (int l = 0; l < 3; ++l) acc[t][l] += win[t][l] * g;
    }
  }
#pragma GCC unroll 4
  for (int t = 0; t < RT; ++t) {
#pragma GCC unroll 4
    for (int l = 0; l < 3; ++l) {
      StoreN<kLanes>(out[t] + l * c, LoadN<kLanes>(out[t] + l * c) + acc[t][l]);
    }
  }
}

using RowsFn = void (*)(float* const*, const float* const*, const float*, int64_t, int64_t,
                        int64_t);

// The WeightRows variant for rt tap rows and column stride sw, or nullptr.
RowsFn WeightRowsKernel(int64_t rt, int64_t sw) {
  static constexpr RowsFn kernels[2][3] = {
      {WeightRows<1, 1>, WeightRows<2, 1>, WeightRows<3, 1>},
      {WeightRows<1, 2>, WeightRows<2, 2>, WeightRows<3, 2>}};
  return rt >= 1 && rt <= 3 && (sw == 1 || sw == 2) ? kernels[sw - 1][rt - 1] : nullptr;
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
  if (kw <= 3) std::tie(qa, qb) = Interior(cols, kw);
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
      const auto& taps = rows[r % oh];
      // A 3-wide, undilated kernel sums all of a row's tap rows at once (WeightRows).
      RowsFn all_rows = kw == 3 && dw == 1 ? WeightRowsKernel(taps.size(), sw) : nullptr;
      for (int64_t o = 0; all_rows && o < cv; o += kLanes) {
        float* outs[3];
        const float* x0s[3];
        for (size_t t = 0; t < taps.size(); ++t) {
          outs[t] = acc + taps[t].first * kw * c + o;
          x0s[t] = xs + ((r / oh) * h + taps[t].second) * w * c - pw * c + o;
        }
        all_rows(outs, x0s, gr + o, qa, qb, c);
      }
      for (auto [a, i] : taps) {
        const float* xr = xs + ((r / oh) * h + i) * w * c;
        float* out = acc + a * kw * c;
        const float* x0 = xr - pw * c;  // column q * sw - pw of tap 0 is x0 + q * sw * c
        if (!all_rows) {
          for (int64_t o = 0; o < cv; o += kLanes) {
            strip(out + o, x0 + o, gr + o, qa, qb, sw, dw, c);
          }
        }
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

CNNLAB_CONV_HANDLER(CnnlabDepthwiseForward, cnnlab::Forward);
CNNLAB_CONV_HANDLER(CnnlabDepthwiseInputGrad, cnnlab::InputGrad);
CNNLAB_CONV_HANDLER(CnnlabDepthwiseWeightGrad, cnnlab::WeightGrad);
