// Dense 2D convolution (groups == 1), float32, channels-last, on an input already zero-padded,
// as two XLA FFI handlers (docs/performance.md, "A native dense conv"):
// - CnnlabDenseForward: y (N, P, Q, CO) from x (N, H, W, CI) and w (KH, KW, CI, CO);
// - CnnlabDenseWeightGrad: dw (KH, KW, CI, CO) from x and the cotangent g (N, P, Q, CO).
// Attributes: strides sh, sw and dilations dh, dw; output pixel (n, p, q) reads x[n, p * sh +
// kh * dh, q * sw + kw * dw] under tap (kh, kw). CO must be a multiple of 8. The input gradient
// of a stride-1 conv is the forward of the padded cotangent with the kernel flipped and
// transposed (the caller does both). Register tiles: 6 output pixels x 16 output channels for
// the forward, 6 input channels x 16 output channels for the weight gradient; the forward splits
// the pixels between the caller and XLA's intra-op thread pool, the weight gradient sums its
// pixel chunks' partial kernels in order, so results do not depend on the threads.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "common.h"

namespace cnnlab {
namespace {

constexpr int kPixels = 6;  // output pixels (forward) or input channels (weight grad) per tile
constexpr int64_t kForwardFloats = int64_t{1} << 15;  // input floats a forward work item reads
constexpr int64_t kWeightGradFloats = int64_t{1} << 23;  // cap on the partial kernels (32 MB)
constexpr int64_t kWeightGradBlock = 128;               // pixels per cache block
constexpr int64_t kPackedChannels = 256;  // from here the weight grad packs its input panels

// The geometry shared by both passes: per output pixel its offset into x (at tap 0, channel 0),
// per tap its offset from there.
struct Geometry {
  std::vector<int64_t> pixels, taps;
};

template <typename Dims>
Geometry Offsets(const Dims& xd, const Dims& outd, int64_t kh, int64_t kw, int64_t sh,
                 int64_t sw, int64_t dh, int64_t dw) {
  int64_t h = xd[1], w = xd[2], ci = xd[3], p = outd[1], q = outd[2];
  Geometry g;
  g.pixels.reserve(outd[0] * p * q);
  for (int64_t n = 0; n < outd[0]; ++n) {
    for (int64_t i = 0; i < p; ++i) {
      for (int64_t j = 0; j < q; ++j) g.pixels.push_back(((n * h + i * sh) * w + j * sw) * ci);
    }
  }
  for (int64_t a = 0; a < kh; ++a) {
    for (int64_t b = 0; b < kw; ++b) g.taps.push_back((a * dh * w + b * dw) * ci);
  }
  return g;
}

// y[p, v] = sum over taps t and input channels c of x[pixels[p] + taps[t] + c] * w[t, c, v]
// for P pixels and 8 * V output channels; w is the block's packed slice (taps, CI, 16), y starts
// at the block, its pixels `co` apart. Not inlined: alone, the compiler keeps all 2 * P
// accumulators in registers (inlined, it spilled some).
template <int P, int V>
__attribute__((noinline)) void ForwardTile(float* y, const float* x, const int64_t* pixels,
                                           const float* w, const std::vector<int64_t>& taps,
                                           int64_t ci, int64_t co) {
  V8 acc[P][V] = {};
  for (size_t t = 0; t < taps.size(); ++t) {
    const float* xt = x + taps[t];
    const float* wt = w + t * ci * 16;
    for (int64_t c = 0; c < ci; ++c) {
      V8 wv[V];
      for (int v = 0; v < V; ++v) wv[v] = Load(wt + c * 16 + 8 * v);
      for (int p = 0; p < P; ++p) {
        float xs = xt[pixels[p] + c];
        for (int v = 0; v < V; ++v) acc[p][v] += xs * wv[v];
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    for (int v = 0; v < V; ++v) Store(y + p * co + 8 * v, acc[p][v]);
  }
}

// Calls op(std::integral_constant<int, P>()) for P = n, 1 <= n <= kPixels.
template <typename Op>
void WithCount(int64_t n, Op op) {
  switch (n) {
    case 1: return op(std::integral_constant<int, 1>());
    case 2: return op(std::integral_constant<int, 2>());
    case 3: return op(std::integral_constant<int, 3>());
    case 4: return op(std::integral_constant<int, 4>());
    case 5: return op(std::integral_constant<int, 5>());
    default: return op(std::integral_constant<int, kPixels>());
  }
}

// Calls op(std::integral_constant<int, V>()) for a block of 8 * V = min(16, left) channels.
template <typename Op>
void WithBlock(int64_t left, Op op) {
  if (left >= 16) return op(std::integral_constant<int, 2>());
  return op(std::integral_constant<int, 1>());
}

// Calls op(std::integral_constant<int, V>(), o) for blocks [o, o + 8 * V) of 16 channels, then
// one of 8 if co is not a multiple of 16.
template <typename Op>
void ForOutputBlocks(int64_t co, Op op) {
  for (int64_t o = 0; o < co; o += 16) WithBlock(co - o, [&](auto v) { op(v, o); });
}

// y (N, P, Q, CO) from x (N, H, W, CI) and the kernel as (KH, KW, CI, CO); `flip`: the kernel
// is given as (KH, KW, CO, CI) and used flipped in space (the input gradient's).
void Conv(ffi::ThreadPool& pool, ffi::Buffer<ffi::F32>& x, ffi::Buffer<ffi::F32>& w,
          ffi::ResultBuffer<ffi::F32>& y, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
          bool flip) {
  auto xd = x.dimensions(), wd = w.dimensions(), yd = y->dimensions();
  int64_t ci = xd[3], co = yd[3];
  Geometry g = Offsets(xd, yd, wd[0], wd[1], sh, sw, dh, dw);
  int64_t m = g.pixels.size(), tiles = (m + kPixels - 1) / kPixels;
  // Work items: (output channel block, run of tiles reading about kForwardFloats of x), channel
  // block major, so that consecutive items reuse one block's kernel slice from cache.
  int64_t run_tiles = std::clamp<int64_t>(kForwardFloats / (kPixels * ci * wd[0]), 1, 32);
  int64_t runs = (tiles + run_tiles - 1) / run_tiles, blocks = (co + 15) / 16;
  const float* xs = x.typed_data();
  float* ys = y->typed_data();
  // The kernel repacked as (block, tap, input channel, 16): each block's slice contiguous.
  int64_t taps = g.taps.size();
  std::vector<float> packed(blocks * taps * ci * 16, 0.0f);
  const float* wsrc = w.typed_data();
  ParallelFor(pool, taps * ci, Chunks(pool, taps * ci), [&](int64_t lo, int64_t hi, int64_t) {
    for (int64_t r = lo; r < hi; ++r) {
      float* dst = packed.data() + r * 16;
      if (flip) {
        const float* src = wsrc + (taps - 1 - r / ci) * ci * co + r % ci;
        for (int64_t o = 0; o < co; ++o) dst[(o / 16) * taps * ci * 16 + o % 16] = src[o * ci];
      } else {
        for (int64_t o = 0; o < co; o += 16) {
          std::copy_n(wsrc + r * co + o, std::min<int64_t>(16, co - o), dst + o * taps * ci);
        }
      }
    }
  });
  int64_t items = blocks * runs;
  ParallelFor(pool, items, Chunks(pool, items), [&](int64_t lo, int64_t hi, int64_t) {
    for (int64_t item = lo; item < hi; ++item) {
      int64_t o = item / runs * 16, run = item % runs;
      int64_t end = std::min(tiles, (run + 1) * run_tiles);
      WithBlock(co - o, [&](auto v) {
        for (int64_t t = run * run_tiles; t < end; ++t) {
          int64_t p0 = t * kPixels;
          WithCount(std::min<int64_t>(kPixels, m - p0), [&](auto p) {
            ForwardTile<decltype(p)::value, decltype(v)::value>(
                ys + p0 * co + o, xs, g.pixels.data() + p0, packed.data() + o * taps * ci,
                g.taps, ci, co);
          });
        }
      });
    }
  });
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, int64_t sh, int64_t sw, int64_t dh,
                   int64_t dw) {
  Conv(pool, x, w, y, sh, sw, dh, dw, /*flip=*/false);
  return ffi::Error::Success();
}

// The input gradient of a stride-1 conv: x is the cotangent padded by (K - 1) * dilation - pad
// on each side (negative: cropped), w the forward's kernel (KH, KW, CI, CO), y the gradient
// (N, H, W, CI).
ffi::Error InputGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> w,
                     ffi::ResultBuffer<ffi::F32> dx, int64_t sh, int64_t sw, int64_t dh,
                     int64_t dw) {
  Conv(pool, g, w, dx, sh, sw, dh, dw, /*flip=*/true);
  return ffi::Error::Success();
}

// acc[c, v] += sum over n pixels j of x[rows[j] + c] * g[j, v] for P input and 8 * V output
// channels; g is a panel packed pixel-major (n, 16), acc starts at the channel blocks, its rows
// `co` apart.
template <int P, int V>
__attribute__((noinline)) void WeightTile(float* acc_out, const float* x, const int64_t* rows,
                                          const float* g, int64_t n, int64_t co) {
  V8 acc[P][V];
  for (int p = 0; p < P; ++p) {
    for (int v = 0; v < V; ++v) acc[p][v] = Load(acc_out + p * co + 8 * v);
  }
  for (int64_t j = 0; j < n; ++j) {
    const float* xj = x + rows[j];
    V8 gv[V];
    for (int v = 0; v < V; ++v) gv[v] = Load(g + j * 16 + 8 * v);
    for (int p = 0; p < P; ++p) {
      float xs = xj[p];
      for (int v = 0; v < V; ++v) acc[p][v] += xs * gv[v];
    }
  }
  for (int p = 0; p < P; ++p) {
    for (int v = 0; v < V; ++v) Store(acc_out + p * co + 8 * v, acc[p][v]);
  }
}

ffi::Error WeightGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> gy,
                      ffi::ResultBuffer<ffi::F32> dwt, int64_t sh, int64_t sw, int64_t dh,
                      int64_t dw) {
  auto xd = x.dimensions(), gd = gy.dimensions(), wd = dwt->dimensions();
  int64_t ci = xd[3], co = gd[3];
  Geometry geo = Offsets(xd, gd, wd[0], wd[1], sh, sw, dh, dw);
  int64_t m = geo.pixels.size(), k = wd[0] * wd[1] * ci * co;
  int64_t oblocks = (co + 15) / 16;
  int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>(Chunks(pool, (m + kWeightGradBlock - 1) / kWeightGradBlock),
                           kWeightGradFloats / k));
  const float* xs = x.typed_data();
  const float* gs = gy.typed_data();
  std::unique_ptr<float[]> partial(new float[chunks * k]);  // each chunk zeroes its own
  ParallelFor(pool, m, chunks, [&](int64_t lo, int64_t hi, int64_t chunk) {
    float* acc = partial.get() + chunk * k;
    std::fill(acc, acc + k, 0.0f);
    // A block's cotangent as (output block, pixel, 16), so that each tile reads its panel in
    // order (the tail block's other 8 columns are zeros). With wide rows (kPackedChannels) the
    // input too, per tap, as (input block, pixel, kPixels): its pixels are then a few cache
    // lines and pages apart, not one each.
    bool pack = ci >= kPackedChannels;
    std::vector<float> gp(oblocks * kWeightGradBlock * 16, 0.0f);
    std::vector<float> xp(pack ? (ci + kPixels - 1) / kPixels * kPixels * kWeightGradBlock
                               : 0);
    std::vector<int64_t> packed_rows(kWeightGradBlock);
    for (int64_t j = 0; j < kWeightGradBlock; ++j) packed_rows[j] = j * kPixels;
    for (int64_t b = lo; b < hi; b += kWeightGradBlock) {
      int64_t n = std::min(hi, b + kWeightGradBlock) - b;
      for (int64_t o = 0; o < co; o += 16) {
        int64_t width = std::min<int64_t>(16, co - o);
        for (int64_t j = 0; j < n; ++j) {
          std::copy_n(gs + (b + j) * co + o, width, gp.data() + (o * n + j * 16));
        }
      }
      for (size_t t = 0; t < geo.taps.size(); ++t) {
        for (int64_t c = 0; pack && c < ci; c += kPixels) {
          int64_t width = std::min<int64_t>(kPixels, ci - c);
          for (int64_t j = 0; j < n; ++j) {
            std::copy_n(xs + geo.pixels[b + j] + geo.taps[t] + c, width,
                        xp.data() + (c * n + j * kPixels));
          }
        }
        for (int64_t c = 0; c < ci; c += kPixels) {
          const float* x0 = pack ? xp.data() + c * n : xs + geo.taps[t] + c;
          const int64_t* rows = pack ? packed_rows.data() : geo.pixels.data() + b;
          WithCount(std::min<int64_t>(kPixels, ci - c), [&](auto p) {
            ForOutputBlocks(co, [&](auto v, int64_t o) {
              WeightTile<decltype(p)::value, decltype(v)::value>(
                  acc + (t * ci + c) * co + o, x0, rows, gp.data() + o * n, n, co);
            });
          });
        }
      }
    }
  });
  SumPartials(pool, partial.get(), chunks, k, dwt->typed_data());
  return ffi::Error::Success();
}

}  // namespace
}  // namespace cnnlab

XLA_FFI_DEFINE_HANDLER_SYMBOL(CnnlabDenseForward, cnnlab::Forward, CNNLAB_CONV_BINDING());
XLA_FFI_DEFINE_HANDLER_SYMBOL(CnnlabDenseInputGrad, cnnlab::InputGrad, CNNLAB_CONV_BINDING());
XLA_FFI_DEFINE_HANDLER_SYMBOL(CnnlabDenseWeightGrad, cnnlab::WeightGrad, CNNLAB_CONV_BINDING());
