// Winograd F(2x2, 3x3) convolution (Lavin & Gray 2016), float32, channels-last, stride 1, no
// dilation, groups == 1, as three XLA FFI handlers (docs/performance.md, "A native Winograd
// conv"):
// - CnnlabWinogradForward: y (N, P, Q, B) from x (N, H, W, A) and w (3, 3, A, B);
// - CnnlabWinogradInputGrad: dx (N, H, W, B) from the cotangent g (N, P, Q, A) and the forward's
//   kernel w (3, 3, B, A), flipped in space and its channel axes swapped as it is transformed;
//   low paddings 2 - the forward's;
// - CnnlabWinogradWeightGrad: dw (3, 3, A, B) from x and g.
// Attributes as the other conv kernels' (strides and dilations must be 1); output pixel (n, p, q)
// reads x rows p - ph .. p - ph + 2 and columns q - pw .. q - pw + 2, zero outside x.
// A and B must be multiples of 16. Each 2 x 2 output tile t reads a 4 x 4 input tile d:
//   y_t = AT [sum over a of (G w_ab GT) . (BT d_ta B)] A,
// the sum over a one matmul per transform point p (16 of them): M[p] = V[p] (tiles, A) x U[p]
// (A, B), with 16 multiplies per tile and channel pair where a direct conv has 36. The weight
// gradient is the adjoint: dw_ab = GT [sum over t of (BT d_ta B) . (A g_tb AT)] G, a matmul per
// point over the tiles. Register tiles are kRows tiles (forward) or input channels (weight
// gradient) x kBlock output channels; blocks of tiles are transformed into buffers each thread
// keeps, so results do not depend on the threads (the weight gradient's per-chunk partials are
// added in order).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "common.h"

namespace cnnlab {
namespace {

#ifdef __AVX512F__
constexpr int kRows = 14;
#else
constexpr int kRows = 6;
#endif
constexpr int kBlock = 2 * kLanes;  // output channels per register tile
constexpr int kPoints = 16;         // transform points of a 4 x 4 tile
constexpr int64_t kBufferFloats = int64_t{1} << 17;       // a forward block's transformed input
constexpr int64_t kPartialFloats = int64_t{1} << 21;      // cap on the weight-gradient partials
constexpr int64_t kWeightGradTiles = 256;  // most tiles per weight-gradient block

// The tiles' grid over the output: tile t (flat over N, TP, TQ) covers output rows 2 * i, 2 * i
// + 1 and columns 2 * j, 2 * j + 1 and reads input rows 2 * i - ph .. + 3, columns 2 * j - pw ..
// + 3.
struct Grid {
  int64_t h, w, p, q, tp, tq, ph, pw;

  Grid(int64_t h, int64_t w, int64_t p, int64_t q, int64_t ph, int64_t pw)
      : h(h), w(w), p(p), q(q), tp((p + 1) / 2), tq((q + 1) / 2), ph(ph), pw(pw) {}

  int64_t Tiles(int64_t n) const { return n * tp * tq; }

  // Tile t's image and its first output row and column.
  struct Origin {
    int64_t n, i, j;
  };
  Origin At(int64_t t) const { return {t / (tp * tq), t / tq % tp * 2, t % tq * 2}; }
};

// v[p * stride + c] for the 16 points p of BT d B, d the 4 x 4 input tile of tile t, channels
// [c, c + kLanes) of x (N, H, W, C); zeros outside x.
inline void InputTransform(const Grid& g, const float* x, int64_t c_all, int64_t t, int64_t c,
                           float* v, int64_t stride) {
  Grid::Origin o = g.At(t);
  int64_t n = o.n, r0 = o.i - g.ph, c0 = o.j - g.pw;
  Vec d[4][4];
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      uint64_t r = r0 + i, col = c0 + j;  // negative: wraps beyond h and w
      d[i][j] = r < static_cast<uint64_t>(g.h) && col < static_cast<uint64_t>(g.w)
                    ? LoadN<kLanes>(x + ((n * g.h + r0 + i) * g.w + c0 + j) * c_all + c)
                    : Vec{};
    }
  }
  Vec e[4][4];  // BT d: rows
  for (int j = 0; j < 4; ++j) {
    e[0][j] = d[0][j] - d[2][j];
    e[1][j] = d[1][j] + d[2][j];
    e[2][j] = d[2][j] - d[1][j];
    e[3][j] = d[1][j] - d[3][j];
  }
  for (int i = 0; i < 4; ++i) {  // (BT d) B: columns
    StoreN<kLanes>(v + (i * 4 + 0) * stride, e[i][0] - e[i][2]);
    StoreN<kLanes>(v + (i * 4 + 1) * stride, e[i][1] + e[i][2]);
    StoreN<kLanes>(v + (i * 4 + 2) * stride, e[i][2] - e[i][1]);
    StoreN<kLanes>(v + (i * 4 + 3) * stride, e[i][1] - e[i][3]);
  }
}

// m[r, :] = sum over a < n of v[r * vs + a] * u[a, :] for R rows and kLanes * J columns: u is
// packed (n, kBlock), m (R, kBlock).
template <int R, int J>
__attribute__((noinline)) void ForwardTile(const float* v, int64_t vs, const float* u, int64_t n,
                                           float* m) {
  Vec acc[R][J] = {};
  for (int64_t a = 0; a < n; ++a) {
    Vec uv[J];
    for (int j = 0; j < J; ++j) uv[j] = LoadN<kLanes>(u + a * kBlock + kLanes * j);
    for (int r = 0; r < R; ++r) {
      float s = v[r * vs + a];
      for (int j = 0; j < J; ++j) acc[r][j] += s * uv[j];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < J; ++j) StoreN<kLanes>(m + r * kBlock + kLanes * j, acc[r][j]);
  }
}

// A buffer a thread keeps between calls (grown as needed), so that no call faults in fresh
// pages.
float* ThreadBuffer(std::vector<float>& buffer, int64_t floats) {
  if (static_cast<int64_t>(buffer.size()) < floats) buffer.resize(floats);
  return buffer.data();
}

// U (16, B / kBlock, A, kBlock): G w GT per channel pair, output channels in blocks (the last
// zero-filled). flip: w is (3, 3, B, A), used flipped in space with its channel axes swapped.
// Vectors run along w's last axis (B, or A where flipped: then each lane is stored alone).
const float* KernelTransform(ffi::ThreadPool& pool, const float* w, int64_t a_all, int64_t b_all,
                             bool flip) {
  int64_t blocks = (b_all + kBlock - 1) / kBlock, point = blocks * a_all * kBlock;
  int64_t rows = flip ? b_all : a_all, cols = flip ? a_all : b_all;  // w's (.., rows, cols)
  thread_local std::vector<float> ubuf;
  float* u = ThreadBuffer(ubuf, kPoints * point);
  if (b_all % kBlock) std::fill(u, u + kPoints * point, 0.0f);  // the last block's tail
  ParallelFor(pool, rows, Chunks(pool, rows), [&](int64_t lo, int64_t hi, int64_t) {
    for (int64_t r = lo; r < hi; ++r) {
      for (int64_t c = 0; c < cols; c += kLanes) {
        Vec k[3][3], e[4][3], t[kPoints];
        for (int i = 0; i < 3; ++i) {
          for (int j = 0; j < 3; ++j) {
            int64_t tap = flip ? (2 - i) * 3 + 2 - j : i * 3 + j;
            k[i][j] = LoadN<kLanes>(w + (tap * rows + r) * cols + c);
          }
        }
        for (int j = 0; j < 3; ++j) {  // G k
          e[0][j] = k[0][j];
          e[1][j] = 0.5f * (k[0][j] + k[1][j] + k[2][j]);
          e[2][j] = 0.5f * (k[0][j] - k[1][j] + k[2][j]);
          e[3][j] = k[2][j];
        }
        for (int i = 0; i < 4; ++i) {  // (G k) GT
          t[i * 4 + 0] = e[i][0];
          t[i * 4 + 1] = 0.5f * (e[i][0] + e[i][1] + e[i][2]);
          t[i * 4 + 2] = 0.5f * (e[i][0] - e[i][1] + e[i][2]);
          t[i * 4 + 3] = e[i][2];
        }
        for (int p = 0; p < kPoints; ++p) {
          if (!flip) {  // r is a, lanes are b = c ..
            StoreN<kLanes>(u + p * point + ((c / kBlock) * a_all + r) * kBlock + c % kBlock,
                           t[p]);
            continue;
          }
          for (int l = 0; l < kLanes; ++l) {  // r is b, lanes are a = c ..
            u[p * point + ((r / kBlock) * a_all + c + l) * kBlock + r % kBlock] = t[p][l];
          }
        }
      }
    }
  });
  return u;
}

// y for tiles [t0, t0 + nt): input transform into vb (16, nt, A), per output-channel block the
// 16 matmuls into mb (16, nt, kBlock), then AT M A into y, cropped to P x Q.
void ForwardBlock(const Grid& g, const float* x, int64_t a_all, const float* u, int64_t b_all,
                  int64_t t0, int64_t nt, float* vb, float* mb, float* y) {
  for (int64_t t = 0; t < nt; ++t) {
    for (int64_t c = 0; c < a_all; c += kLanes) {
      InputTransform(g, x, a_all, t0 + t, c, vb + t * a_all + c, nt * a_all);
    }
  }
  int64_t blocks = (b_all + kBlock - 1) / kBlock;
  for (int64_t ob = 0; ob < blocks; ++ob) {
    for (int p = 0; p < kPoints; ++p) {
      const float* up = u + (p * blocks + ob) * a_all * kBlock;
      for (int64_t t = 0; t < nt; t += kRows) {
        WithCount<kRows>(std::min<int64_t>(kRows, nt - t), [&](auto rows) {
          const float* vp = vb + (p * nt + t) * a_all;
          float* mp = mb + (p * nt + t) * kBlock;
          if (b_all - ob * kBlock >= kBlock) {
            ForwardTile<rows, 2>(vp, a_all, up, a_all, mp);
          } else {
            ForwardTile<rows, 1>(vp, a_all, up, a_all, mp);
          }
        });
      }
    }
    for (int64_t t = 0; t < nt; ++t) {
      auto [n, i0, j0] = g.At(t0 + t);
      for (int64_t j = 0; j < kBlock && ob * kBlock + j < b_all; j += kLanes) {
        Vec m[4][4], e[2][4];
        for (int p = 0; p < kPoints; ++p) {
          m[p / 4][p % 4] = LoadN<kLanes>(mb + (p * nt + t) * kBlock + j);
        }
        for (int k = 0; k < 4; ++k) {  // AT M: rows
          e[0][k] = m[0][k] + m[1][k] + m[2][k];
          e[1][k] = m[1][k] - m[2][k] - m[3][k];
        }
        for (int i = 0; i < 2 && i0 + i < g.p; ++i) {  // (AT M) A: columns
          float* out = y + ((n * g.p + i0 + i) * g.q + j0) * b_all + ob * kBlock + j;
          StoreN<kLanes>(out, e[i][0] + e[i][1] + e[i][2]);
          if (j0 + 1 < g.q) StoreN<kLanes>(out + b_all, e[i][1] - e[i][2] - e[i][3]);
        }
      }
    }
  }
}

// Tiles per forward block: a multiple of kRows whose transformed input fits kBufferFloats (at
// least two row tiles, so each kernel vector loaded serves at least 2 * kRows tiles).
int64_t ForwardBlockTiles(int64_t a_all) {
  return kRows * std::max<int64_t>(2, kBufferFloats / (kPoints * a_all * kRows));
}

void Conv(ffi::ThreadPool& pool, ffi::Buffer<ffi::F32>& x, ffi::Buffer<ffi::F32>& w,
          ffi::ResultBuffer<ffi::F32>& y, int64_t ph, int64_t pw, bool flip) {
  auto xd = x.dimensions(), yd = y->dimensions();
  int64_t a_all = xd[3], b_all = yd[3];
  Grid g(xd[1], xd[2], yd[1], yd[2], ph, pw);
  const float* u = KernelTransform(pool, w.typed_data(), a_all, b_all, flip);
  int64_t tiles = g.Tiles(xd[0]), nt = ForwardBlockTiles(a_all);
  int64_t blocks = (tiles + nt - 1) / nt;
  const float* xs = x.typed_data();
  float* ys = y->typed_data();
  ParallelForGuided(pool, blocks, [&](int64_t lo, int64_t hi) {
    thread_local std::vector<float> vbuf, mbuf;
    float* vb = ThreadBuffer(vbuf, kPoints * nt * a_all);
    float* mb = ThreadBuffer(mbuf, kPoints * nt * kBlock);
    for (int64_t b = lo; b < hi; ++b) {
      int64_t t0 = b * nt;
      ForwardBlock(g, xs, a_all, u, b_all, t0, std::min(nt, tiles - t0), vb, mb, ys);
    }
  });
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                   int64_t ph, int64_t pw) {
  Conv(pool, x, w, y, ph, pw, /*flip=*/false);
  return ffi::Error::Success();
}

ffi::Error InputGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> w,
                     ffi::ResultBuffer<ffi::F32> dx, int64_t sh, int64_t sw, int64_t dh,
                     int64_t dw, int64_t ph, int64_t pw) {
  Conv(pool, g, w, dx, ph, pw, /*flip=*/true);
  return ffi::Error::Success();
}

// acc[r, :] += sum over t < n of v[t * vs + r] * gt[t * gs + :] for R input channels and
// kLanes * J output channels; acc (R, b_all).
template <int R, int J>
__attribute__((noinline)) void WeightTile(const float* v, int64_t vs, const float* gt, int64_t gs,
                                          int64_t n, float* acc_out, int64_t b_all) {
  Vec acc[R][J];
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < J; ++j) acc[r][j] = LoadN<kLanes>(acc_out + r * b_all + kLanes * j);
  }
  for (int64_t t = 0; t < n; ++t) {
    const float* vt = v + t * vs;
    Vec gv[J];
    for (int j = 0; j < J; ++j) gv[j] = LoadN<kLanes>(gt + t * gs + kLanes * j);
    for (int r = 0; r < R; ++r) {
      float s = vt[r];
      for (int j = 0; j < J; ++j) acc[r][j] += s * gv[j];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < J; ++j) StoreN<kLanes>(acc_out + r * b_all + kLanes * j, acc[r][j]);
  }
}

// The tiles [lo, hi) of the block at t0 (nt tiles): x's transforms into vb (16, nt, A), the
// cotangent's (A g AT, g its 2 x 2 tile) into gb (16, nt, B).
void TransformTiles(const Grid& g, const float* x, int64_t a_all, const float* gy, int64_t b_all,
                    int64_t t0, int64_t nt, int64_t lo, int64_t hi, float* vb, float* gb) {
  for (int64_t t = lo; t < hi; ++t) {
    for (int64_t c = 0; c < a_all; c += kLanes) {
      InputTransform(g, x, a_all, t0 + t, c, vb + t * a_all + c, nt * a_all);
    }
    auto [n, i0, j0] = g.At(t0 + t);
    for (int64_t c = 0; c < b_all; c += kLanes) {
      Vec d[2][2];
      for (int i = 0; i < 2; ++i) {
        for (int j = 0; j < 2; ++j) {
          d[i][j] = i0 + i < g.p && j0 + j < g.q
                        ? LoadN<kLanes>(gy + ((n * g.p + i0 + i) * g.q + j0 + j) * b_all + c)
                        : Vec{};
        }
      }
      Vec e[4][2] = {{d[0][0], d[0][1]},
                     {d[0][0] + d[1][0], d[0][1] + d[1][1]},
                     {d[0][0] - d[1][0], d[0][1] - d[1][1]},
                     {-d[1][0], -d[1][1]}};
      float* out = gb + t * b_all + c;
      for (int i = 0; i < 4; ++i) {
        StoreN<kLanes>(out + (i * 4 + 0) * nt * b_all, e[i][0]);
        StoreN<kLanes>(out + (i * 4 + 1) * nt * b_all, e[i][0] + e[i][1]);
        StoreN<kLanes>(out + (i * 4 + 2) * nt * b_all, e[i][0] - e[i][1]);
        StoreN<kLanes>(out + (i * 4 + 3) * nt * b_all, -e[i][1]);
      }
    }
  }
}

// Adds to m (16, A, B) point p's products of a block's nt transformed tiles (vb, gb), output
// channels [o_lo, o_hi) (o_lo a multiple of kBlock).
void PointProducts(const float* vb, const float* gb, int64_t nt, int64_t a_all, int64_t b_all,
                   int p, int64_t o_lo, int64_t o_hi, float* m) {
  const float* vp = vb + p * nt * a_all;
  const float* gp = gb + p * nt * b_all;
  float* mp = m + p * a_all * b_all;
  for (int64_t a = 0; a < a_all; a += kRows) {
    WithCount<kRows>(std::min<int64_t>(kRows, a_all - a), [&](auto rows) {
      for (int64_t o = o_lo; o < o_hi; o += kBlock) {
        if (o_hi - o >= kBlock) {
          WeightTile<rows, 2>(vp + a, a_all, gp + o, b_all, nt, mp + a * b_all + o, b_all);
        } else {
          WeightTile<rows, 1>(vp + a, a_all, gp + o, b_all, nt, mp + a * b_all + o, b_all);
        }
      }
    });
  }
}

// M (16, A, B) = sum over tiles of x's and the cotangent's transforms. Few channel pairs: split
// over chunks of tiles, each into a partial M of its own, the partials added in order. Many
// (partials would be large): per block of tiles, the transforms split over tiles, then the
// products over (point, output-channel block) pairs, each adding to its own part of M.
void WeightProducts(ffi::ThreadPool& pool, const Grid& g, const float* xs, int64_t a_all,
                    const float* gs, int64_t b_all, int64_t tiles, float* m) {
  int64_t k = kPoints * a_all * b_all, oblocks = (b_all + kBlock - 1) / kBlock;
  int64_t nt = std::clamp<int64_t>(tiles / (2 * (pool.num_threads() + 1)), kRows,
                                   kWeightGradTiles);  // at least two blocks per runner
  int64_t blocks = (tiles + nt - 1) / nt, chunks = Chunks(pool, blocks);
  if (chunks * k <= kPartialFloats) {
    thread_local std::vector<float> pbuf;
    float* partial = ThreadBuffer(pbuf, chunks * k);  // each chunk zeroes its own
    ParallelFor(pool, blocks, chunks, [&](int64_t lo, int64_t hi, int64_t chunk) {
      float* mc = partial + chunk * k;
      std::fill(mc, mc + k, 0.0f);
      thread_local std::vector<float> vbuf, gbuf;
      float* vb = ThreadBuffer(vbuf, kPoints * nt * a_all);
      float* gb = ThreadBuffer(gbuf, kPoints * nt * b_all);
      for (int64_t b = lo; b < hi; ++b) {
        int64_t t0 = b * nt, n = std::min(nt, tiles - t0);
        TransformTiles(g, xs, a_all, gs, b_all, t0, n, 0, n, vb, gb);
        for (int p = 0; p < kPoints; ++p) PointProducts(vb, gb, n, a_all, b_all, p, 0, b_all, mc);
      }
    });
    SumPartials(pool, partial, chunks, k, m);
    return;
  }
  nt = kWeightGradTiles;
  thread_local std::vector<float> vbuf, gbuf;
  float* vb = ThreadBuffer(vbuf, kPoints * nt * a_all);
  float* gb = ThreadBuffer(gbuf, kPoints * nt * b_all);
  std::fill(m, m + k, 0.0f);
  for (int64_t t0 = 0; t0 < tiles; t0 += nt) {
    int64_t n = std::min(nt, tiles - t0);
    ParallelFor(pool, n, Chunks(pool, n), [&](int64_t lo, int64_t hi, int64_t) {
      TransformTiles(g, xs, a_all, gs, b_all, t0, n, lo, hi, vb, gb);
    });
    ParallelForGuided(pool, kPoints * oblocks, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        int64_t o = i % oblocks * kBlock;
        PointProducts(vb, gb, n, a_all, b_all, i / oblocks, o,
                      std::min(b_all, o + kBlock), m);
      }
    });
  }
}

// dw = GT M G per channel pair.
ffi::Error WeightGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> gy,
                      ffi::ResultBuffer<ffi::F32> dwt, int64_t sh, int64_t sw, int64_t dh,
                      int64_t dw, int64_t ph, int64_t pw) {
  auto xd = x.dimensions(), gd = gy.dimensions();
  int64_t a_all = xd[3], b_all = gd[3], pair = a_all * b_all;
  Grid g(xd[1], xd[2], gd[1], gd[2], ph, pw);
  thread_local std::vector<float> mbuf;
  float* m = ThreadBuffer(mbuf, kPoints * pair);
  WeightProducts(pool, g, x.typed_data(), a_all, gy.typed_data(), b_all, g.Tiles(xd[0]), m);
  float* out = dwt->typed_data();
  ParallelFor(pool, pair / kLanes, Chunks(pool, pair / kLanes), [&](int64_t lo, int64_t hi,
                                                                    int64_t) {
    for (int64_t v = lo; v < hi; ++v) {
      Vec s[4][4], e[3][4];
      for (int p = 0; p < kPoints; ++p) {
        s[p / 4][p % 4] = LoadN<kLanes>(m + p * pair + v * kLanes);
      }
      for (int j = 0; j < 4; ++j) {  // GT S: rows
        e[0][j] = s[0][j] + 0.5f * (s[1][j] + s[2][j]);
        e[1][j] = 0.5f * (s[1][j] - s[2][j]);
        e[2][j] = 0.5f * (s[1][j] + s[2][j]) + s[3][j];
      }
      for (int i = 0; i < 3; ++i) {  // (GT S) G: columns
        float* o = out + i * 3 * pair + v * kLanes;
        StoreN<kLanes>(o, e[i][0] + 0.5f * (e[i][1] + e[i][2]));
        StoreN<kLanes>(o + pair, 0.5f * (e[i][1] - e[i][2]));
        StoreN<kLanes>(o + 2 * pair, 0.5f * (e[i][1] + e[i][2]) + e[i][3]);
      }
    }
  });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace cnnlab

CNNLAB_CONV_HANDLER(CnnlabWinogradForward, cnnlab::Forward);
CNNLAB_CONV_HANDLER(CnnlabWinogradInputGrad, cnnlab::InputGrad);
CNNLAB_CONV_HANDLER(CnnlabWinogradWeightGrad, cnnlab::WeightGrad);
