// Forward of a 2D convolution with few input channels (LeNet-5's, a stem's), float32,
// channels-last, as one XLA FFI handler (docs/performance.md, "A native forward for few input
// channels"). Shapes: x (N, H, W, CI), w (KH, KW, CI, CO) with CO a multiple of 8,
// y (N, OH, OW, CO); attributes: strides sh, sw, dilations dh, dw, low paddings ph, pw (the high
// paddings follow from the shapes). Each output row is summed in registers in tiles of T
// adjacent output columns x up to 32 output channels: per tap and input channel, one kernel
// vector per 8 output channels and one broadcast input value per column. Columns whose taps
// reach into the padding are summed one by one over their taps inside the input. Rows are split
// between the caller and XLA's intra-op thread pool.
#include <algorithm>
#include <cstdint>
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
          V8 xb = V8{} + xp[t][j];
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
        V8 xb = V8{} + xp[c];
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[v] += xb * Load(wp + c * r.co + 8 * v);
      }
    }
  }
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) Store(y + 8 * v, acc[v]);
}

// Output columns per tile for V blocks of 8 channels: T * V sums, V kernel vectors and a
// broadcast within AVX2's 16 vector registers.
template <int V>
constexpr int kTile = V == 1 ? 12 : V == 2 ? 6 : V == 3 ? 4 : 3;

// Tile<n, V> for n <= T columns from column q.
template <int V, int T>
void PartialTile(float* y, const Row& r, int64_t q, int64_t n, int64_t cb) {
  if constexpr (T > 0) {
    if (n == T) return Tile<T, V>(y, r, q, cb);
    PartialTile<V, T - 1>(y, r, q, n, cb);
  }
}

// One output row (Q, CO) in channel blocks of up to 32: interior columns [qa, qb) in tiles (the
// last one partial), the others column by column.
template <int V>
void RowBlock(float* y, const Row& r, const Taps& cols, int64_t qa, int64_t qb, int64_t cb) {
  constexpr int T = kTile<V>;
  int64_t q = 0;
  for (; q < qa; ++q) Column<V>(y + q * r.co + cb, r, cols[q], cb);
  for (; q + T <= qb; q += T) Tile<T, V>(y + q * r.co + cb, r, q, cb);
  if (q < qb) PartialTile<V, T - 1>(y + q * r.co + cb, r, q, qb - q, cb);
  for (q = std::max(q, qb); q < static_cast<int64_t>(cols.size()); ++q) {
    Column<V>(y + q * r.co + cb, r, cols[q], cb);
  }
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                   int64_t ph, int64_t pw) {
  auto xd = x.dimensions(), wd = w.dimensions(), yd = y->dimensions();
  int64_t h = xd[1], width = xd[2], ci = xd[3], kh = wd[0], kw = wd[1], co = wd[3];
  int64_t p = yd[1], q = yd[2];
  if (co % 8 != 0) return ffi::Error::InvalidArgument("CnnlabFewForward: CO not a multiple of 8");
  Taps rows = ForwardTaps(p, h, kh, sh, dh, ph), cols = ForwardTaps(q, width, kw, sw, dw, pw);
  int64_t qa = 0, qb = q;  // interior columns: all kw taps inside
  while (qa < q && static_cast<int64_t>(cols[qa].size()) < kw) ++qa;
  while (qb > qa && static_cast<int64_t>(cols[qb - 1].size()) < kw) --qb;
  const float* xs = x.typed_data();
  float* ys = y->typed_data();
  int64_t items = xd[0] * p;
  ParallelFor(pool, items, Chunks(pool, items), [&](int64_t lo, int64_t hi, int64_t) {
    for (int64_t i = lo; i < hi; ++i) {
      Row r{xs + (i / p) * h * width * ci, w.typed_data(), &rows[i % p], width, ci, co, kw, sw,
            dw, pw};
      float* out = ys + i * q * co;
      int64_t cb = 0;
      for (; cb + 32 <= co; cb += 32) RowBlock<4>(out, r, cols, qa, qb, cb);
      if (co - cb == 24) RowBlock<3>(out, r, cols, qa, qb, cb);
      if (co - cb == 16) RowBlock<2>(out, r, cols, qa, qb, cb);
      if (co - cb == 8) RowBlock<1>(out, r, cols, qa, qb, cb);
    }
  });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace cnnlab

XLA_FFI_DEFINE_HANDLER_SYMBOL(CnnlabFewForward, cnnlab::Forward,
                              CNNLAB_CONV_BINDING().Attr<int64_t>("ph").Attr<int64_t>("pw"));
