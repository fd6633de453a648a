// A 2D convolution with few input channels (LeNet-5's, a stem's), float32, channels-last, as
// XLA FFI handlers (docs/performance.md, "A native forward for few input channels", "Few-channel
// weight gradients"):
// - CnnlabFewForward: y (N, OH, OW, CO) from x (N, H, W, CI) and w (KH, KW, CI, CO);
// - CnnlabFewWeightGrad: dw (KH, KW, CI, CO) from x and the cotangent g (N, OH, OW, CO).
// Attributes: strides sh, sw, dilations dh, dw, low paddings ph, pw (the high paddings follow
// from the shapes). Output channels are taken in blocks of 8; where CO is not a multiple of 8 the
// kernel (forward) or the cotangent (weight gradient) is copied with zero channels up to the next
// multiple and the results' extra channels dropped. Forward: each output row is summed in
// registers in tiles of T adjacent output columns x up to 32 output channels: per tap and input
// channel, one kernel vector per 8 output channels and one broadcast input value per column (with
// one input channel and one block of 8 output channels, each input value broadcast once per tap
// row: SlideTile).
// Weight gradient: per output row and tap row, the row's (kernel column, input channel) pairs in
// tiles of T x up to 32 output channels, summed in registers over the row's columns: per column
// one cotangent vector per 8 channels and one broadcast input value per pair. Columns whose taps
// reach into the padding take their taps inside the input one by one. Rows are split between
// the caller and XLA's intra-op thread pool (the weight gradient's partial kernels summed in
// order, so results do not depend on the threads).
#include <algorithm>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "common.h"

namespace cnnlab {
namespace {

// What a row's tiles share: the sizes, and the row's taps as (kernel row, input row) pairs.
struct Row {
  const float* x;  // the image, (H, W, CI)
  const float* w;  // the kernel, (KH, KW, CI, CO)
  const Taps::value_type* rows;  // the row's taps (ForwardTaps)
  int64_t wd, ci, co, kw, sw, dw, pw;
};

// y[t, b] for t < T output columns from column q, b < 8 * V channels from channel block cb,
// every column's KW taps inside the input row (interior columns). With column stride and
// dilation 1, a kernel row's taps and input channels are one run of KW * CI floats in x and in
// w, summed in one loop.
template <int T, int V>
__attribute__((noinline)) void Tile(float* y, const Row& r, int64_t q, int64_t cb) {
  V8 acc[T][V] = {};
  bool unit = r.sw == 1 && r.dw == 1;
  int64_t run = unit ? r.kw * r.ci : r.ci, segments = unit ? 1 : r.kw;
  for (auto [kh, ih] : *r.rows) {
    for (int64_t l = 0; l < segments; ++l) {
      const float* xp[T];
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        xp[t] = r.x + (ih * r.wd + (q + t) * r.sw - r.pw + l * r.dw) * r.ci;
      }
      const float* wp = r.w + (kh * r.kw + l) * r.ci * r.co + cb;
      for (int64_t j = 0; j < run; ++j) {
        V8 wv[V];
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) wv[v] = Load(wp + j * r.co + 8 * v);
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
          float xb = xp[t][j];
#pragma GCC unroll 4
          for (int v = 0; v < V; ++v) acc[t][v] += xb * wv[v];
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) Store(y + t * r.co + 8 * v, acc[t][v]);
  }
}

// y[b] for b < 8 * V channels from channel block cb at one output column whose taps are `cols`
// ((kernel column, input column) pairs).
template <int V>
void Column(float* y, const Row& r, const Taps::value_type& cols, int64_t cb) {
  V8 acc[V] = {};
  for (auto [kh, ih] : *r.rows) {
    for (auto [l, iw] : cols) {
      const float* xp = r.x + (ih * r.wd + iw) * r.ci;
      const float* wp = r.w + (kh * r.kw + l) * r.ci * r.co + cb;
      for (int64_t c = 0; c < r.ci; ++c) {
        float xb = xp[c];
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[v] += xb * Load(wp + c * r.co + 8 * v);
      }
    }
  }
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) Store(y + 8 * v, acc[v]);
}

// Output columns per tile for V blocks of 8 channels: T * V sums, V kernel vectors and a
// broadcast within the 32 vector registers of AVX-512, else AVX2's 16.
#ifdef __AVX512F__
template <int V>
constexpr int kTile = V == 1 ? 24 : V == 2 ? 12 : V == 3 ? 8 : 6;
#else
template <int V>
constexpr int kTile = V == 1 ? 12 : V == 2 ? 6 : V == 3 ? 4 : 3;
#endif

// Tile<T, 1> for one input channel, column stride and dilation 1 and KW kernel columns: per tap
// row the kernel row's KW vectors stay in registers and each input value is broadcast once for
// the up to KW output columns it reaches (Tile broadcasts it once per tap: LeNet-5's C1, where
// one block of 8 output channels makes every multiply-add of Tile wait on a broadcast load).
template <int T, int KW>
__attribute__((noinline)) void SlideTile(float* y, const Row& r, int64_t q) {
  V8 acc[T] = {};
  for (auto [kh, ih] : *r.rows) {
    const float* xp = r.x + ih * r.wd + q - r.pw;
    V8 wv[KW];
#pragma GCC unroll 8
    for (int l = 0; l < KW; ++l) wv[l] = Load(r.w + (kh * KW + l) * r.co);
#pragma GCC unroll 32
    for (int i = 0; i < T + KW - 1; ++i) {  // input column q + i - pw
      float xb = xp[i];
#pragma GCC unroll 8
      for (int l = 0; l < KW; ++l) {
        if (i - l >= 0 && i - l < T) acc[i - l] += xb * wv[l];
      }
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) Store(y + t * r.co, acc[t]);
}

// Output columns per SlideTile: T sums, KW kernel vectors and a broadcast within the registers.
#ifdef __AVX512F__
constexpr int kSlideTile = 12;
#else
constexpr int kSlideTile = 8;
#endif

// The interior columns [q, qb) of one output row by SlideTile (KW = 3 or 5), or false.
bool SlideRow(float* y, const Row& r, int64_t q, int64_t qb) {
  if (r.ci != 1 || r.co != 8 || r.sw != 1 || r.dw != 1 || (r.kw != 3 && r.kw != 5)) return false;
  constexpr int T = kSlideTile;
  for (; q + T <= qb; q += T) {
    r.kw == 3 ? SlideTile<T, 3>(y + q * 8, r, q) : SlideTile<T, 5>(y + q * 8, r, q);
  }
  WithCount<T - 1>(qb - q, [&](auto n) {
    r.kw == 3 ? SlideTile<n, 3>(y + q * 8, r, q) : SlideTile<n, 5>(y + q * 8, r, q);
  });
  return true;
}

// One output row (Q, CO) in channel blocks of up to 32: interior columns [qa, qb) in tiles (the
// last one partial), the others column by column.
template <int V>
void RowBlock(float* y, const Row& r, const Taps& cols, int64_t qa, int64_t qb, int64_t cb) {
  constexpr int T = kTile<V>;
  int64_t q = 0;
  for (; q < qa; ++q) Column<V>(y + q * r.co + cb, r, cols[q], cb);
  if (V == 1 && SlideRow(y, r, q, qb)) q = std::max(q, qb);
  for (; q + T <= qb; q += T) Tile<T, V>(y + q * r.co + cb, r, q, cb);
  WithCount<T - 1>(qb - q, [&](auto n) { Tile<n, V>(y + q * r.co + cb, r, q, cb); });
  for (q = std::max(q, qb); q < static_cast<int64_t>(cols.size()); ++q) {
    Column<V>(y + q * r.co + cb, r, cols[q], cb);
  }
}

// n rounded up to a multiple of 8: channels in whole blocks.
int64_t RoundUp8(int64_t n) { return (n + 7) / 8 * 8; }

// Calls op(std::integral_constant<int, V>(), cb) for the blocks [cb, cb + 8 * V) of 32 channels,
// then one of 24, 16 or 8, that cover co8 (a multiple of 8) channels.
template <typename Op>
void ForBlocks(int64_t co8, Op op) {
  int64_t cb = 0;
  for (; cb + 32 <= co8; cb += 32) op(std::integral_constant<int, 4>(), cb);
  if (co8 - cb == 24) op(std::integral_constant<int, 3>(), cb);
  if (co8 - cb == 16) op(std::integral_constant<int, 2>(), cb);
  if (co8 - cb == 8) op(std::integral_constant<int, 1>(), cb);
}

// n = min(from, to) floats from each of `count` runs of `from` floats, into runs of `to` floats:
// channel padding added (to > from) or dropped (to < from). Runs go in order, as whole vectors
// of 8 floats where those stay inside in and out: a run's vectors spill into the runs after it,
// which are written later. The padding of a run copied by vectors holds the floats after it in
// `in` (the callers drop those channels' results), that of the others zeros.
inline void Restride(const float* in, int64_t count, int64_t from, int64_t to, float* out) {
  int64_t n = std::min(from, to), span = RoundUp8(n);
  int64_t vectored = std::max<int64_t>(0, count - (span + n - 1) / n);
  for (int64_t i = 0; i < vectored; ++i) {
    for (int64_t v = 0; v < span; v += 8) Store(out + i * to + v, Load(in + i * from + v));
  }
  for (int64_t i = vectored; i < count; ++i) {
    std::copy(in + i * from, in + i * from + n, out + i * to);
    std::fill(out + i * to + n, out + (i + 1) * to, 0.0f);
  }
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                   int64_t ph, int64_t pw) {
  auto xd = x.dimensions(), wd = w.dimensions(), yd = y->dimensions();
  int64_t h = xd[1], width = xd[2], ci = xd[3], kh = wd[0], kw = wd[1], co = wd[3];
  int64_t p = yd[1], q = yd[2], co8 = RoundUp8(co);
  Taps rows = ForwardTaps(p, h, kh, sh, dh, ph), cols = ForwardTaps(q, width, kw, sw, dw, pw);
  int64_t qa, qb;  // plain variables: lambdas capture them (C++17)
  std::tie(qa, qb) = Interior(cols, kw);
  std::vector<float> padded;  // the kernel with CO8 channels, where CO is not a multiple of 8
  if (co8 != co) {
    padded.resize(kh * kw * ci * co8);
    Restride(w.typed_data(), kh * kw * ci, co, co8, padded.data());
  }
  const float* ws = co8 != co ? padded.data() : w.typed_data();
  const float* xs = x.typed_data();
  float* ys = y->typed_data();
  int64_t items = xd[0] * p;
  ParallelFor(pool, items, Chunks(pool, items), [&](int64_t lo, int64_t hi, int64_t) {
    std::vector<float> row(co8 != co ? q * co8 : 0);  // an output row with CO8 channels
    for (int64_t i = lo; i < hi; ++i) {
      Row r{xs + (i / p) * h * width * ci, ws, &rows[i % p], width, ci, co8, kw, sw, dw, pw};
      float* out = co8 != co ? row.data() : ys + i * q * co;
      ForBlocks(co8, [&](auto v, int64_t cb) { RowBlock<v>(out, r, cols, qa, qb, cb); });
      if (co8 != co) Restride(row.data(), q, co8, co, ys + i * q * co);
    }
  });
  return ffi::Error::Success();
}

// What the weight gradient's tiles of one (output row, tap row) share.
struct GradRow {
  const float* x;    // the input row, (W, CI)
  const float* g;    // the cotangent row, (OW, CO8)
  const int64_t* at;  // per (kernel column, input channel) pair j: its offset in x from a
                      // column's first tap, kw * dw * CI + c
  int64_t co, ci, sw, pw;  // co: CO8
};

// acc[j, b] += sum over columns q in [qa, qb) of x[q * sw - pw, pair j0 + j] * g[q, cb + b] for
// j < T pairs, b < 8 * V channels; acc: the tap row's (KW * CI, CO8) partial kernel.
template <int T, int V>
__attribute__((noinline)) void GradTile(float* acc, const GradRow& r, int64_t qa, int64_t qb,
                                        int64_t j0, int64_t cb) {
  V8 sum[T][V] = {};
  int64_t at[T];
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) at[t] = r.at[j0 + t];
  for (int64_t q = qa; q < qb; ++q) {
    const float* xp = r.x + (q * r.sw - r.pw) * r.ci;
    V8 gv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) gv[v] = Load(r.g + q * r.co + cb + 8 * v);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      float xb = xp[at[t]];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) sum[t][v] += xb * gv[v];
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) {
    float* a = acc + (j0 + t) * r.co + cb;
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) Store(a + 8 * v, Load(a + 8 * v) + sum[t][v]);
  }
}

// One tap row's partial kernel acc (KW * CI, CO8) from one output row: the interior columns
// [qa, qb) in tiles of pairs x channel blocks of up to 32, the others tap by tap.
template <int V>
void GradBlock(float* acc, const GradRow& r, const Taps& cols, int64_t qa, int64_t qb,
               int64_t pairs, int64_t cb) {
  constexpr int T = kTile<V>;
  int64_t j = 0;
  for (; j + T <= pairs; j += T) GradTile<T, V>(acc, r, qa, qb, j, cb);
  WithCount<T - 1>(pairs - j, [&](auto n) { GradTile<n, V>(acc, r, qa, qb, j, cb); });
  auto border = [&](int64_t q) {
    V8 gv[V];
    for (int v = 0; v < V; ++v) gv[v] = Load(r.g + q * r.co + cb + 8 * v);
    for (auto [l, iw] : cols[q]) {
      for (int64_t c = 0; c < r.ci; ++c) {
        float xb = r.x[iw * r.ci + c];
        float* a = acc + (l * r.ci + c) * r.co + cb;
        for (int v = 0; v < V; ++v) Store(a + 8 * v, Load(a + 8 * v) + xb * gv[v]);
      }
    }
  };
  for (int64_t q = 0; q < qa; ++q) border(q);
  for (int64_t q = qb; q < static_cast<int64_t>(cols.size()); ++q) border(q);
}

ffi::Error WeightGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> g,
                      ffi::ResultBuffer<ffi::F32> dw_out, int64_t sh, int64_t sw, int64_t dh,
                      int64_t dw, int64_t ph, int64_t pw) {
  auto xd = x.dimensions(), gd = g.dimensions(), wd = dw_out->dimensions();
  int64_t h = xd[1], width = xd[2], ci = xd[3], kh = wd[0], kw = wd[1], co = wd[3];
  int64_t p = gd[1], q = gd[2], co8 = RoundUp8(co), pairs = kw * ci;
  Taps rows = ForwardTaps(p, h, kh, sh, dh, ph), cols = ForwardTaps(q, width, kw, sw, dw, pw);
  int64_t qa, qb;  // plain variables: lambdas capture them (C++17)
  std::tie(qa, qb) = Interior(cols, kw);
  std::vector<int64_t> at(pairs);
  for (int64_t j = 0; j < pairs; ++j) at[j] = (j / ci) * dw * ci + j % ci;
  int64_t items = xd[0] * p, chunks = Chunks(pool, items), k = kh * pairs * co8;
  std::vector<float> partial(chunks * k, 0.0f);
  const float* xs = x.typed_data();
  const float* gs = g.typed_data();
  ParallelFor(pool, items, chunks, [&](int64_t lo, int64_t hi, int64_t chunk) {
    std::vector<float> row(co8 != co ? q * co8 : 0);  // a cotangent row with CO8 channels
    float* acc = partial.data() + chunk * k;
    for (int64_t i = lo; i < hi; ++i) {
      const float* gr = gs + i * q * co;
      if (co8 != co) {
        Restride(gr, q, co, co8, row.data());
        gr = row.data();
      }
      for (auto [t, ih] : rows[i % p]) {
        GradRow r{xs + ((i / p) * h + ih) * width * ci, gr, at.data(), co8, ci, sw, pw};
        float* a = acc + t * pairs * co8;
        ForBlocks(co8, [&](auto v, int64_t cb) { GradBlock<v>(a, r, cols, qa, qb, pairs, cb); });
      }
    }
  });
  if (co8 == co) {
    SumPartials(pool, partial.data(), chunks, k, dw_out->typed_data());
  } else {
    std::vector<float> sum(k);
    SumPartials(pool, partial.data(), chunks, k, sum.data());
    Restride(sum.data(), kh * pairs, co8, co, dw_out->typed_data());
  }
  return ffi::Error::Success();
}

}  // namespace
}  // namespace cnnlab

CNNLAB_CONV_HANDLER(CnnlabFewForward, cnnlab::Forward);
CNNLAB_CONV_HANDLER(CnnlabFewWeightGrad, cnnlab::WeightGrad);
