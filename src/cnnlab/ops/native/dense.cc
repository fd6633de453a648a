// Dense 2D convolution (groups == 1), float32, channels-last, as three XLA FFI handlers
// (docs/performance.md, "A native dense conv"):
// - CnnlabDenseForward: y (N, P, Q, CO) from x (N, H, W, CI) and w (KH, KW, CI, CO);
// - CnnlabDenseInputGrad (stride 1): dx (N, H, W, CI) from the cotangent g (N, P, Q, CO) and w;
// - CnnlabDenseWeightGrad: dw (KH, KW, CI, CO) from x and g.
// Attributes: strides sh, sw, dilations dh, dw, low paddings ph, pw; output pixel (n, p, q)
// reads x[n, p * sh + kh * dh - ph, q * sw + kw * dw - pw] under tap (kh, kw), zero outside x,
// so no padded copy is made. CI and CO must be multiples of 8. The input gradient of a stride-1
// conv is the forward over the cotangent with the kernel flipped and transposed as it is packed,
// and low paddings (K - 1) * dilation - pad (the caller's). Register tiles: kPixels output pixels x
// kBlock output channels for the forward, kPixels input x kBlock output channels for the weight
// gradient (6 x 16 with AVX2, 14 x 32 with AVX-512), and with AVX-512 row tiles of 1-3 output
// rows x 4-14 columns for the forward where C_in is 64-512 (RowPlan); the forward splits the
// pixels between the caller and XLA's intra-op thread pool, the weight gradient its output
// channels or its pixels (summing the chunks' partial kernels in order), so results do not
// depend on the threads.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "common.h"

namespace cnnlab {
namespace {

// A tile's sums are kPixels x 2 vectors (common.h's Vec): 12 of AVX2's 16 registers (8 floats
// each), 28 of AVX-512's 32 (16 floats each). Channel blocks are kBlock = 2 * kLanes wide.
#ifdef __AVX512F__
constexpr int kPixels = 14;  // output pixels (forward) or input channels (weight grad) per tile
#else
constexpr int kPixels = 6;
#endif
constexpr int kBlock = 2 * kLanes;

constexpr int64_t kForwardFloats = int64_t{1} << 15;  // input floats a forward work item reads
constexpr int64_t kL2Floats = int64_t{1} << 18;       // floats in a 1 MB L2 cache
constexpr int64_t kWeightGradFloats = int64_t{1} << 23;  // cap on the partial kernels (32 MB)
constexpr int64_t kWeightGradBlock = 256;               // pixels per cache block

// The geometry shared by all passes: output pixel (n, i, j) reads input row i * sh + kh * dh -
// ph and column j * sw + kw * dw - pw under tap (kh, kw), zeros outside the input (low paddings
// ph, pw may be negative: a crop). Per output pixel its first row and column and their offset
// into x (at channel 0; outside x at the borders), per tap its steps from there; At() gives a
// pixel's input row under a tap, or `zeros` (ci floats) where that row is padding.
struct Pixel {
  int64_t offset;
  int64_t row, col;
};

struct Tap {
  int64_t offset;
  int64_t dr, dc;
};

struct Geometry {
  std::vector<Pixel> pixels;  // all output pixels, where the caller asks for the table
  std::vector<Tap> taps;
  uint64_t h, w;
  std::vector<float> zeros;
  int64_t p, q, ci, sh, sw, dh, dw, ph, pw, kh, kw;  // output rows, columns; input channels;
                                                     // strides, dilations, pads, kernel size

  const float* At(const float* x, const Pixel& p, const Tap& t) const {
    uint64_t r = p.row + t.dr, c = p.col + t.dc;  // negative: wraps beyond h and w
    return r < h && c < w ? x + (p.offset + t.offset) : zeros.data();
  }

  // Output pixel k (flat over N, P, Q).
  Pixel PixelAt(int64_t k) const {
    int64_t n = k / (p * q), r = k / q % p * sh - ph, c = k % q * sw - pw;
    return {((n * static_cast<int64_t>(h) + r) * static_cast<int64_t>(w) + c) * ci, r, c};
  }
};

template <typename Dims>
Geometry Offsets(const Dims& xd, const Dims& outd, int64_t kh, int64_t kw, int64_t sh,
                 int64_t sw, int64_t dh, int64_t dw, int64_t ph, int64_t pw, bool table) {
  int64_t h = xd[1], w = xd[2], ci = xd[3], p = outd[1], q = outd[2];
  Geometry g{{}, {}, static_cast<uint64_t>(h), static_cast<uint64_t>(w),
             std::vector<float>(ci + kPixels, 0.0f), p, q, ci, sh, sw, dh, dw, ph, pw, kh, kw};
  if (table) {
    g.pixels.reserve(outd[0] * p * q);
    for (int64_t k = 0; k < outd[0] * p * q; ++k) g.pixels.push_back(g.PixelAt(k));
  }
  for (int64_t a = 0; a < kh; ++a) {
    for (int64_t b = 0; b < kw; ++b) g.taps.push_back({(a * dh * w + b * dw) * ci, a * dh, b * dw});
  }
  return g;
}

// y[p, v] = sum over taps t and input channels c of x at (pixels[p], t), channel c, times
// w[t, c, v] for P pixels and kLanes * (V - 1) + T output channels; w is the block's packed slice
// (taps, CI, kBlock), y starts at the block, its pixels `co` apart. Not inlined: alone, the
// compiler keeps all V * P sums in registers (inlined, it spilled some).
template <int P, int V, int T>
__attribute__((noinline)) void ForwardTile(float* y, const float* x, const Pixel* pixels,
                                           const float* w, const Geometry& g, int64_t ci,
                                           int64_t co) {
  Vec acc[P][V] = {};
  for (size_t t = 0; t < g.taps.size(); ++t) {
    const float* xt[P];
    for (int p = 0; p < P; ++p) xt[p] = g.At(x, pixels[p], g.taps[t]);
    const float* wt = w + t * ci * kBlock;
    for (int64_t c = 0; c < ci; ++c) {
      Vec wv[V];
      for (int v = 0; v < V; ++v) wv[v] = LoadN<kLanes>(wt + c * kBlock + kLanes * v);
      for (int p = 0; p < P; ++p) {
        float xs = xt[p][c];
        for (int v = 0; v < V; ++v) acc[p][v] += xs * wv[v];
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    for (int v = 0; v + 1 < V; ++v) StoreN<kLanes>(y + p * co + kLanes * v, acc[p][v]);
    StoreN<T>(y + p * co + kLanes * (V - 1), acc[p][V - 1]);
  }
}

// Calls op(V, T) as integral constants for the block of min(kBlock, left) channels (left a
// multiple of 8): V vectors, the last with T channels.
template <typename Op>
void WithBlock(int64_t left, Op op) {
  using std::integral_constant;
  if (left >= kBlock) return op(integral_constant<int, 2>(), integral_constant<int, kLanes>());
  if (left > kLanes) return op(integral_constant<int, 2>(), integral_constant<int, 8>());
  if (left == kLanes) return op(integral_constant<int, 1>(), integral_constant<int, kLanes>());
  return op(integral_constant<int, 1>(), integral_constant<int, 8>());
}

// Calls op(V, T, o) for the blocks [o, o + kBlock) of channels [begin, end) (see WithBlock).
template <typename Op>
void ForOutputBlocks(int64_t begin, int64_t end, Op op) {
  for (int64_t o = begin; o < end; o += kBlock) {
    WithBlock(end - o, [&](auto v, auto t) { op(v, t, o); });
  }
}

// The row-tile path of the forward (and stride-1 input gradient): where a conv's output is at
// least 4 wide, its column stride 1 or 2, at most one output column a side reads padding, CI is
// 64, 128, 256 or 512 and CO a multiple of kBlock. A tile is R output rows x Q adjacent output
// columns (R * Q <= kPixels), so under a tap the Q pixels of a row read input pixels S = sw * CI
// floats apart: one pointer per row and offsets known when compiling (no per-pixel pointers,
// which the general tile keeps in more registers than x86 has), about 8 % more multiply-adds per
// cycle on CPU E (docs/performance.md, "Row tiles in the dense conv").
struct RowPlan {
  const Geometry& g;         // the conv's shape (no pixel table)
  int r, q;                  // tile shape
  int64_t groups, segments;  // row groups, column segments
  int64_t wide;  // segments of q columns; the others q - 1 wide (R = 1, q > 8), else the last
                 // overlaps the one before; the last row group has the rows left (1 to r)
};

// acc[r * Q + j] += x at the tile's row r, column j (base[r] + j * S) times the tap's packed
// kernel rows wt (ci, kBlock), for rows RF <= r < R - RL and columns SF <= j < Q - SL (the others
// read padding under this tap).
template <int R, int Q, int S, int SF, int SL, int RF, int RL>
inline __attribute__((always_inline)) void RowTaps(Vec (&acc)[R * Q][2], const float* const* base,
                                                   const float* wt, int64_t ci) {
  for (int64_t c = 0; c < ci; ++c) {
    Vec w0 = LoadN<kLanes>(wt + c * kBlock), w1 = LoadN<kLanes>(wt + c * kBlock + kLanes);
#pragma GCC unroll 16
    for (int r = RF; r < R - RL; ++r) {
#pragma GCC unroll 16
      for (int j = SF; j < Q - SL; ++j) {
        float xs = base[r][j * S + c];
        acc[r * Q + j][0] += xs * w0;
        acc[r * Q + j][1] += xs * w1;
      }
    }
  }
}

// RowTaps with RF = skip / R padding rows first and RL = skip % R last (RF + RL < R).
template <int R, int Q, int S, int SF, int SL, int I = 0>
inline __attribute__((always_inline)) void RowTapsSkipping(Vec (&acc)[R * Q][2],
                                                           const float* const* base,
                                                           const float* wt, int64_t ci, int skip) {
  if constexpr (I + 1 < R * R) {
    if (skip != I) return RowTapsSkipping<R, Q, S, SF, SL, I + 1>(acc, base, wt, ci, skip);
  }
  if constexpr (I / R + I % R < R) RowTaps<R, Q, S, SF, SL, I / R, I % R>(acc, base, wt, ci);
}

// The tile at output rows i0.., columns j0.. of image x (H, W, CI) for one channel block (w its
// packed slice); y at the tile's first pixel. Columns left of `col_skip` belong to the tile
// before (the last tile of a row may overlap it) and are not stored.
template <int R, int Q, int S>
__attribute__((noinline)) void RowTile(float* y, const float* x, const float* w,
                                       const RowPlan& pl, int64_t i0, int64_t j0,
                                       int64_t col_skip, int64_t co) {
  Vec acc[R * Q][2] = {};
  const int64_t width = pl.g.w, height = pl.g.h;
  for (int64_t a = 0; a < pl.g.kh; ++a) {
    const int64_t i = i0 * pl.g.sh + a * pl.g.dh - pl.g.ph;  // the tile's first input row
    // Rows above and below x (padding) are left out.
    int rf = static_cast<int>(std::clamp<int64_t>((-i + pl.g.sh - 1) / pl.g.sh, 0, R));
    int rl = static_cast<int>(std::clamp<int64_t>(
        R - (height - i + pl.g.sh - 1) / pl.g.sh, 0, R));
    if (rf + rl >= R) continue;
    const float* base[R];
    for (int b = 0; b < pl.g.kw; ++b) {
      int64_t col = j0 * pl.g.sw + b * pl.g.dw - pl.g.pw;  // the tile's first input column
      for (int r = 0; r < R; ++r) {
        base[r] = x + ((i + r * pl.g.sh) * width + col) * pl.g.ci;  // read for rf <= r < R - rl
      }
      const float* wt = w + (a * pl.g.kw + b) * pl.g.ci * kBlock;
      bool first = col < 0, last = col + (Q - 1) * pl.g.sw >= width;
      int skip = rf * R + rl;
      if (first && last) {
        RowTapsSkipping<R, Q, S, 1, 1>(acc, base, wt, pl.g.ci, skip);
      } else if (first) {
        RowTapsSkipping<R, Q, S, 1, 0>(acc, base, wt, pl.g.ci, skip);
      } else if (last) {
        RowTapsSkipping<R, Q, S, 0, 1>(acc, base, wt, pl.g.ci, skip);
      } else {
        RowTapsSkipping<R, Q, S, 0, 0>(acc, base, wt, pl.g.ci, skip);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = col_skip; j < Q; ++j) {
      StoreN<kLanes>(y + (r * pl.g.q + j) * co, acc[r * Q + j][0]);
      StoreN<kLanes>(y + (r * pl.g.q + j) * co + kLanes, acc[r * Q + j][1]);
    }
  }
}

// The row-tile plan of a conv, or r == 0 where the general tiles serve it (see RowPlan).
RowPlan PlanRows(const Geometry& g, int64_t n, int64_t co) {
  RowPlan pl{g, 0, 0, 0, 0, 0};
  int64_t w = g.w, ci = g.ci, p = g.p, wo = g.q, sw = g.sw, pw = g.pw, kw = g.kw, dw = g.dw;
  bool channels = (ci == 64 || ci == 128 || ci == 256 || ci == 512) && co % kBlock == 0;
  // Only the first and last output column may read padding (each then skips that tap).
  bool columns = (sw == 1 || sw == 2) && sw - pw >= 0 &&
                 (wo - 2) * sw + (kw - 1) * dw - pw < w && wo >= 4;
  if (!channels || !columns || kPixels < 14 || n * p == 0) return pl;
  if (wo >= 8) {  // one row, the columns in segments of 8-14
    pl.r = 1;
    pl.segments = (wo + kPixels - 1) / kPixels;
    pl.q = static_cast<int>((wo + pl.segments - 1) / pl.segments);
    pl.wide = pl.q > 8 ? wo - (pl.q - 1) * pl.segments : pl.segments;
  } else {  // 4-7 columns: whole rows, as many as fit, balanced over the image
    pl.q = static_cast<int>(wo);
    pl.segments = pl.wide = 1;
    int64_t most = std::min<int64_t>(kPixels / wo, p);
    int64_t groups = (p + most - 1) / most;
    pl.r = static_cast<int>((p + groups - 1) / groups);
    if (pl.r == 1) return pl;  // a single output row of 4-7 pixels: general tiles
  }
  pl.groups = (p + pl.r - 1) / pl.r;
  return pl;
}

// Calls op(integral_constant R, integral_constant Q) for the plan's tile shape: R = 1 with
// 8 <= Q <= 14, or R = 2 or 3 with 4 <= Q <= 7 and R * Q <= 14 (none without AVX-512).
template <int Q = 4, typename Op>
void WithTileShape(int r, int q, Op op) {
  using std::integral_constant;
  if constexpr (kPixels >= 14) {
    if (q != Q) {
      if constexpr (Q < kPixels) WithTileShape<Q + 1>(r, q, op);
      return;
    }
    if constexpr (Q >= 8) {
      op(integral_constant<int, 1>(), integral_constant<int, Q>());
    } else if constexpr (3 * Q <= kPixels) {
      if (r == 3) return op(integral_constant<int, 3>(), integral_constant<int, Q>());
      op(integral_constant<int, 2>(), integral_constant<int, Q>());
    } else {
      op(integral_constant<int, 2>(), integral_constant<int, Q>());
    }
  }
}

// Calls op(integral_constant S) for a row tile's pixel stride S = sw * CI (64 to 1024).
template <int S = 64, typename Op>
void WithPixelStride(int64_t s, Op op) {
  if constexpr (S < 1024) {
    if (s != S) return WithPixelStride<2 * S>(s, op);
  }
  op(std::integral_constant<int, S>());
}

// dst[c * ds + o] = src[o * ss + c] for o, c < 8 (8 rows of 8 floats transposed in registers).
inline void Transpose8x8(const float* src, int64_t ss, float* dst, int64_t ds) {
  V8 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = Load(src + i * ss);
  for (int i = 0; i < 8; i += 2) {  // pairs of rows interleaved
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4) {  // then pairs of pairs
    for (int j = 0; j < 2; ++j) {
      V8 a = t[i + j], b = t[i + j + 2];
      u[i + 2 * j] = __builtin_shufflevector(a, b, 0, 1, 8, 9, 4, 5, 12, 13);
      u[i + 2 * j + 1] = __builtin_shufflevector(a, b, 2, 3, 10, 11, 6, 7, 14, 15);
    }
  }
  for (int i = 0; i < 4; ++i) {  // then the 128-bit halves
    Store(dst + i * ds, __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11));
    Store(dst + (i + 4) * ds, __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15));
  }
}

// y (N, P, Q, CO) from x (N, H, W, CI) and the kernel as (KH, KW, CI, CO); `flip`: the kernel
// is given as (KH, KW, CO, CI) and used flipped in space (the input gradient's).
void Conv(ffi::ThreadPool& pool, ffi::Buffer<ffi::F32>& x, ffi::Buffer<ffi::F32>& w,
          ffi::ResultBuffer<ffi::F32>& y, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
          int64_t ph, int64_t pw, bool flip) {
  auto xd = x.dimensions(), wd = w.dimensions(), yd = y->dimensions();
  int64_t ci = xd[3], co = yd[3], blocks = (co + kBlock - 1) / kBlock;
  const float* xs = x.typed_data();
  float* ys = y->typed_data();
  // The kernel repacked as (block, tap, input channel, kBlock): each block's slice contiguous
  // (the tail block's missing channels zero), one (block, tap) panel per item; flipped, the
  // source rows are output channels, and the panel is transposed 8 x 8 floats at a time.
  int64_t taps = wd[0] * wd[1], packed_size = blocks * taps * ci * kBlock;
  std::unique_ptr<float[]> packed(new float[packed_size]);
  const float* wsrc = w.typed_data();
  ParallelFor(pool, blocks * taps, Chunks(pool, blocks * taps), [&](int64_t lo, int64_t hi,
                                                                   int64_t) {
    for (int64_t item = lo; item < hi; ++item) {
      int64_t o0 = item / taps * kBlock, t = item % taps;
      int64_t width = std::min<int64_t>(kBlock, co - o0);
      float* dst = packed.get() + item * ci * kBlock;
      if (flip) {  // channels are multiples of 8 (conv_direct.py)
        const float* src = wsrc + (taps - 1 - t) * ci * co + o0 * ci;
        for (int64_t c = 0; c < ci; c += 8) {
          for (int64_t o = 0; o < width; o += 8) {
            Transpose8x8(src + o * ci + c, ci, dst + c * kBlock + o, kBlock);
          }
        }
      } else {
        const float* src = wsrc + t * ci * co + o0;
        for (int64_t c = 0; c < ci; ++c) std::copy_n(src + c * co, width, dst + c * kBlock);
      }
      for (int64_t c = 0; width < kBlock && c < ci; ++c) {
        std::fill(dst + c * kBlock + width, dst + (c + 1) * kBlock, 0.0f);
      }
    }
  });
  Geometry shape = Offsets(xd, yd, wd[0], wd[1], sh, sw, dh, dw, ph, pw, /*table=*/false);
  RowPlan pl = PlanRows(shape, xd[0], co);
  if (pl.r > 0) {
    int64_t per_image = pl.groups * pl.segments, row_tiles = xd[0] * per_image;
    int64_t tile_runs = std::clamp<int64_t>(kForwardFloats / (pl.r * pl.q * ci * wd[0]), 1, 32);
    int64_t tile_items = (row_tiles + tile_runs - 1) / tile_runs;
    // Items (group of runs, channel block, run): a group's input (about a quarter of L2) is read
    // once for all channel blocks, which cycle through L2 beside it; one run per group where
    // the whole packed kernel fits in half of L2 with it (docs/performance.md).
    int64_t run_floats = tile_runs * pl.r * pl.q * sh * sw * ci;  // input per run, about
    int64_t group = packed_size <= kL2Floats / 2
                        ? 1 : std::clamp<int64_t>(kL2Floats / 4 / run_floats, 1, tile_items);
    int64_t all = blocks * group * ((tile_items + group - 1) / group);
    WithTileShape(pl.r, pl.q, [&](auto r, auto q) {
      constexpr int R = decltype(r)::value, Q = decltype(q)::value;
      WithPixelStride(sw * ci, [&](auto stride) {
        ParallelForGuided(pool, all, [&](int64_t lo, int64_t hi) {
          for (int64_t item = lo; item < hi; ++item) {
            int64_t o = item / group % blocks * kBlock;
            int64_t run = item / (group * blocks) * group + item % group;
            for (int64_t t = run * tile_runs; t < std::min(row_tiles, (run + 1) * tile_runs); ++t) {
              int64_t n = t / per_image, g = t % per_image / pl.segments, s = t % pl.segments;
              int64_t i0 = g * R, j0 = std::min<int64_t>(s * Q, pl.g.q - Q);
              float* yt = ys + ((n * pl.g.p + i0) * pl.g.q) * co + o;
              const float* xt = xs + n * xd[1] * xd[2] * ci;
              const float* wb = packed.get() + o * taps * ci;
              constexpr int S = decltype(stride)::value;
              if constexpr (R == 1 && Q > 8) {
                if (s >= pl.wide) {  // a segment one column narrower, no overlap
                  j0 = pl.wide * Q + (s - pl.wide) * (Q - 1);
                  RowTile<1, Q - 1, S>(yt + j0 * co, xt, wb, pl, i0, j0, 0, co);
                  continue;
                }
              }
              if constexpr (R > 1) {  // an image's last group: the 1 or 2 rows left
                if (int64_t left = pl.g.p - i0; left < R) {
                  if (left == 1) {
                    RowTile<1, Q, S>(yt + j0 * co, xt, wb, pl, i0, j0, s * Q - j0, co);
                  } else {
                    RowTile<2, Q, S>(yt + j0 * co, xt, wb, pl, i0, j0, s * Q - j0, co);
                  }
                  continue;
                }
              }
              RowTile<R, Q, S>(yt + j0 * co, xt, wb, pl, i0, j0, s * Q - j0, co);
            }
          }
        });
      });
    });
    return;
  }
  // General tiles: work items (output channel block, run of tiles reading about kForwardFloats
  // of x), channel block major, so that consecutive items reuse one block's kernel slice.
  Geometry g = Offsets(xd, yd, wd[0], wd[1], sh, sw, dh, dw, ph, pw, /*table=*/true);
  int64_t m = g.pixels.size(), tiles = (m + kPixels - 1) / kPixels;
  int64_t run_tiles = std::clamp<int64_t>(kForwardFloats / (kPixels * ci * wd[0]), 1, 32);
  int64_t runs = (tiles + run_tiles - 1) / run_tiles, items = blocks * runs;
  ParallelForGuided(pool, items, [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      int64_t o = item / runs * kBlock, run = item % runs;
      int64_t end = std::min(tiles, (run + 1) * run_tiles);
      WithBlock(co - o, [&](auto v, auto tail) {
        for (int64_t t = run * run_tiles; t < end; ++t) {
          int64_t p0 = t * kPixels;
          WithCount<kPixels>(std::min<int64_t>(kPixels, m - p0), [&](auto p) {
            ForwardTile<decltype(p)::value, decltype(v)::value, decltype(tail)::value>(
                ys + p0 * co + o, xs, g.pixels.data() + p0, packed.get() + o * taps * ci,
                g, ci, co);
          });
        }
      });
    }
  });
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                   int64_t ph, int64_t pw) {
  Conv(pool, x, w, y, sh, sw, dh, dw, ph, pw, /*flip=*/false);
  return ffi::Error::Success();
}

// The input gradient of a stride-1 conv: g is the cotangent, its low paddings ph, pw are
// (K - 1) * dilation - pad (negative: cropped), w the forward's kernel (KH, KW, CI, CO), dx the
// gradient (N, H, W, CI).
ffi::Error InputGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> w,
                     ffi::ResultBuffer<ffi::F32> dx, int64_t sh, int64_t sw, int64_t dh,
                     int64_t dw, int64_t ph, int64_t pw) {
  Conv(pool, g, w, dx, sh, sw, dh, dw, ph, pw, /*flip=*/true);
  return ffi::Error::Success();
}

// acc[c, v] += sum over k < n of rows[k][shift + c] * g[pixel[k], v] for P input and
// kLanes * (V - 1) + T output channels; g is a panel packed pixel-major (pixels, kBlock), acc
// starts at the channel blocks, its rows `co` apart.
template <int P, int V, int T>
__attribute__((noinline)) void WeightTile(float* acc_out, const float* const* rows,
                                          const int64_t* pixel, int64_t shift, const float* g,
                                          int64_t n, int64_t co) {
  Vec acc[P][V];
  for (int p = 0; p < P; ++p) {
    for (int v = 0; v + 1 < V; ++v) acc[p][v] = LoadN<kLanes>(acc_out + p * co + kLanes * v);
    acc[p][V - 1] = LoadN<T>(acc_out + p * co + kLanes * (V - 1));
  }
  for (int64_t k = 0; k < n; ++k) {
    const float* xj = rows[k] + shift;
    // One register for the row, the channels at fixed offsets from it (without this GCC kept
    // shift + p for each p in registers and spilled some of them).
    asm("" : "+r"(xj));
    const float* gj = g + pixel[k] * kBlock;
    Vec gv[V];
    for (int v = 0; v < V; ++v) gv[v] = LoadN<kLanes>(gj + kLanes * v);
    for (int p = 0; p < P; ++p) {
      float xs = xj[p];
      for (int v = 0; v < V; ++v) acc[p][v] += xs * gv[v];
    }
  }
  for (int p = 0; p < P; ++p) {
    for (int v = 0; v + 1 < V; ++v) StoreN<kLanes>(acc_out + p * co + kLanes * v, acc[p][v]);
    StoreN<T>(acc_out + p * co + kLanes * (V - 1), acc[p][V - 1]);
  }
}

// Adds to acc (KH, KW, CI, CO) the weight gradient of output pixels [lo, hi) for output
// channels [o_lo, o_hi) (o_lo a multiple of kBlock).
void AccumulateWeightGrad(const Geometry& geo, const float* xs, const float* gs, int64_t ci,
                          int64_t co, int64_t lo, int64_t hi, int64_t o_lo, int64_t o_hi,
                          float* acc) {
  // A block's cotangent as (output block, pixel, kBlock), so that each tile reads its panel in
  // order (a tail block's columns past o_hi hold stale floats; the tiles compute them and store
  // only the block's own channels). The input is read in place, kPixels channels of a pixel at
  // a time (packing it per tap, as before 2026-12-07 from 256 channels, cost more than it saved).
  int64_t oblocks = (o_hi - o_lo + kBlock - 1) / kBlock;
  std::vector<float> gp(oblocks * kWeightGradBlock * kBlock, 0.0f);
  std::vector<const float*> rows(kWeightGradBlock);
  std::vector<int64_t> pixel(kWeightGradBlock);
  std::vector<Pixel> pixels(kWeightGradBlock);
  for (int64_t b = lo; b < hi; b += kWeightGradBlock) {
    int64_t n = std::min(hi, b + kWeightGradBlock) - b;
    for (int64_t j = 0; j < n; ++j) pixels[j] = geo.PixelAt(b + j);
    for (int64_t o = o_lo; o < o_hi; o += kBlock) {
      int64_t width = std::min<int64_t>(kBlock, o_hi - o);
      for (int64_t j = 0; j < n; ++j) {
        std::copy_n(gs + (b + j) * co + o, width, gp.data() + ((o - o_lo) * n + j * kBlock));
      }
    }
    for (size_t t = 0; t < geo.taps.size(); ++t) {
      // The block's pixels whose input under this tap is not padding (a padding row adds 0).
      int64_t valid = 0;
      for (int64_t j = 0; j < n; ++j) {
        const float* row = geo.At(xs, pixels[j], geo.taps[t]);
        if (row == geo.zeros.data()) continue;
        rows[valid] = row;
        pixel[valid++] = j;
      }
      // Input channels in tiles of kPixels; a remainder of kPixels + 1 to 2 * kPixels - 1
      // channels in two tiles of about half that (256 = 17 * 14 + 9 + 9, not 18 * 14 + 4).
      for (int64_t c = 0, width; c < ci; c += width) {
        int64_t left = ci - c;
        width = left > kPixels && left < 2 * kPixels ? (left + 1) / 2
                                                     : std::min<int64_t>(kPixels, left);
        WithCount<kPixels>(width, [&](auto p) {
          ForOutputBlocks(o_lo, o_hi, [&](auto v, auto tail, int64_t o) {
            WeightTile<decltype(p)::value, decltype(v)::value, decltype(tail)::value>(
                acc + (t * ci + c) * co + o, rows.data(), pixel.data(), c,
                gp.data() + (o - o_lo) * n, valid, co);
          });
        });
      }
    }
  }
}

// Split over pixel chunks, each into a partial kernel of its own, the partials then added in
// order; or, where those partials would outgrow the input (few pixels, many channels: ResNet's
// later stages), over output-channel blocks, each chunk writing its own columns.
ffi::Error WeightGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> gy,
                      ffi::ResultBuffer<ffi::F32> dwt, int64_t sh, int64_t sw, int64_t dh,
                      int64_t dw, int64_t ph, int64_t pw) {
  auto xd = x.dimensions(), gd = gy.dimensions(), wd = dwt->dimensions();
  int64_t ci = xd[3], co = gd[3];
  Geometry geo = Offsets(xd, gd, wd[0], wd[1], sh, sw, dh, dw, ph, pw, /*table=*/false);
  int64_t m = gd[0] * gd[1] * gd[2], k = wd[0] * wd[1] * ci * co;
  int64_t oblocks = (co + kBlock - 1) / kBlock;
  int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>(Chunks(pool, (m + kWeightGradBlock - 1) / kWeightGradBlock),
                           kWeightGradFloats / k));
  const float* xs = x.typed_data();
  const float* gs = gy.typed_data();
  float* out = dwt->typed_data();
  if (oblocks > 1 && chunks * k > m * ci) {  // a chunk per block, zeroing its own columns
    ParallelFor(pool, oblocks, oblocks, [&](int64_t lo, int64_t hi, int64_t) {
      int64_t o_lo = lo * kBlock, o_hi = std::min(co, hi * kBlock);
      for (int64_t r = 0; r < k / co; ++r) {
        std::fill(out + r * co + o_lo, out + r * co + o_hi, 0.0f);
      }
      AccumulateWeightGrad(geo, xs, gs, ci, co, 0, m, o_lo, o_hi, out);
    });
    return ffi::Error::Success();
  }
  std::unique_ptr<float[]> partial(new float[chunks * k]);  // each chunk zeroes its own
  ParallelFor(pool, m, chunks, [&](int64_t lo, int64_t hi, int64_t chunk) {
    float* acc = partial.get() + chunk * k;
    std::fill(acc, acc + k, 0.0f);
    AccumulateWeightGrad(geo, xs, gs, ci, co, lo, hi, 0, co, acc);
  });
  SumPartials(pool, partial.get(), chunks, k, out);
  return ffi::Error::Success();
}

}  // namespace
}  // namespace cnnlab

CNNLAB_CONV_HANDLER(CnnlabDenseForward, cnnlab::Forward);
CNNLAB_CONV_HANDLER(CnnlabDenseInputGrad, cnnlab::InputGrad);
CNNLAB_CONV_HANDLER(CnnlabDenseWeightGrad, cnnlab::WeightGrad);
