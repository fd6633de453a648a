// Shared by the native kernels: work split over XLA's intra-op thread pool, and vector registers
// of 8 floats (V8) and of the build's widest width (Vec) (GCC/Clang vector extension: AVX or
// AVX-512 on x86, NEON on ARM).
#ifndef CNNLAB_NATIVE_COMMON_H_
#define CNNLAB_NATIVE_COMMON_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace cnnlab {

namespace ffi = xla::ffi;

// What a parallel loop shares with its pool tasks, which may start after it has returned: the
// next unclaimed index, and how much is done.
struct LoopState {
  std::atomic<int64_t> next{0};
  int64_t done = 0;
  std::mutex mu;
  std::condition_variable cv;

  void Finish(int64_t n, int64_t total) {  // n more of total done
    std::lock_guard<std::mutex> lock(mu);
    if ((done += n) == total) cv.notify_all();
  }
};

// Runs `run` on the caller and on up to total - 1 of XLA's intra-op pool threads, then waits until
// `total` are done.
template <typename Run>
void RunOnPool(ffi::ThreadPool& pool, LoopState& state, int64_t total, Run run) {
  int64_t helpers = std::min<int64_t>(pool.num_threads(), total - 1);
  for (int64_t t = 0; t < helpers; ++t) pool.Schedule(Run(run));
  run();
  std::unique_lock<std::mutex> lock(state.mu);
  state.cv.wait(lock, [&] { return state.done == total; });
}

// Runs body(begin, end, chunk) over [0, items) in `chunks` contiguous chunks, on the caller and
// XLA's intra-op pool. Chunks are claimed from a counter, so the caller only waits for chunks
// being run: a pool task that starts after every chunk is claimed returns at once.
template <typename F>
void ParallelFor(ffi::ThreadPool& pool, int64_t items, int64_t chunks, F body) {
  auto state = std::make_shared<LoopState>();
  RunOnPool(pool, *state, chunks, [state, items, chunks, body]() {
    for (int64_t i; (i = state->next.fetch_add(1)) < chunks;) {
      body(items * i / chunks, items * (i + 1) / chunks, i);
      state->Finish(1, chunks);
    }
  });
}

// Runs body(begin, end) over [0, items) on the caller and XLA's intra-op pool, each range
// claimed as it is needed: a quarter of the items left per runner, at least one (a guided
// schedule): large ranges first, small ones last, so that the runners finish together.
// For bodies whose results do not depend on how [0, items) is split.
template <typename F>
void ParallelForGuided(ffi::ThreadPool& pool, int64_t items, F body) {
  auto state = std::make_shared<LoopState>();
  int64_t runners = pool.num_threads() + 1;
  RunOnPool(pool, *state, items, [state, items, runners, body]() {
    for (int64_t lo = state->next.load(), n;;) {
      if (lo >= items) return;
      n = std::max<int64_t>(1, (items - lo) / (4 * runners));
      if (!state->next.compare_exchange_weak(lo, lo + n)) continue;  // lo reloaded
      body(lo, lo + n);
      state->Finish(n, items);
      lo = state->next.load();
    }
  });
}

int64_t Chunks(ffi::ThreadPool& pool, int64_t items) {
  return std::max<int64_t>(1, std::min<int64_t>(items, 4 * (pool.num_threads() + 1)));
}

// Per position along one spatial dim, its (tap, input position) pairs.
using Taps = std::vector<std::vector<std::pair<int64_t, int64_t>>>;

// For each of `out` positions along one dim, its (tap, position in `in`) pairs:
// in = o * stride - pad + k * dilation, kept when inside [0, in).
inline Taps ForwardTaps(int64_t out, int64_t in, int64_t taps, int64_t stride, int64_t dilation,
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

// Interior positions [qa, qb) along one dim of `taps` (ForwardTaps): all k taps inside the input.
inline std::pair<int64_t, int64_t> Interior(const Taps& taps, int64_t k) {
  int64_t qa = 0, qb = static_cast<int64_t>(taps.size());
  while (qa < qb && static_cast<int64_t>(taps[qa].size()) < k) ++qa;
  while (qb > qa && static_cast<int64_t>(taps[qb - 1].size()) < k) --qb;
  return {qa, qb};
}

// Calls op(std::integral_constant<int, P>()) for P = n, 1 <= n <= Max (nothing for n < 1).
template <int Max, int P = 1, typename Op>
void WithCount(int64_t n, Op op) {
  if constexpr (P <= Max) {
    if (n == P) return op(std::integral_constant<int, P>());
    WithCount<Max, P + 1>(n, op);
  }
}

// Eight floats in one vector register.
typedef float V8 __attribute__((vector_size(32)));

inline V8 Load(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void Store(float* p, V8 v) { std::memcpy(p, &v, sizeof(v)); }

// The widest vector the build targets: 16 floats with AVX-512, else V8.
#ifdef __AVX512F__
typedef float Vec __attribute__((vector_size(64)));
#else
typedef V8 Vec;
#endif
constexpr int kLanes = sizeof(Vec) / sizeof(float);

// The first N floats at p as a Vec (the others zero); the first N lanes of v stored at p.
template <int N>
inline Vec LoadN(const float* p) {
  Vec v = {};
  std::memcpy(&v, p, N * sizeof(float));
  return v;
}

template <int N>
inline void StoreN(float* p, Vec v) {
  std::memcpy(p, &v, N * sizeof(float));
}

// out[j] = sum over chunks i, in order, of partial[i * k + j], j < k: per-chunk partial sums
// added the same way whatever thread ran each chunk.
inline void SumPartials(ffi::ThreadPool& pool, const float* partial, int64_t chunks, int64_t k,
                        float* out) {
  ParallelFor(pool, k, Chunks(pool, k / 4096 + 1), [&](int64_t lo, int64_t hi, int64_t) {
    std::copy(partial + lo, partial + hi, out + lo);
    for (int64_t i = 1; i < chunks; ++i) {
      for (int64_t j = lo; j < hi; ++j) out[j] += partial[i * k + j];
    }
  });
}

}  // namespace cnnlab

// The binding of every conv kernel here: XLA's intra-op pool, two float32 operands, one float32
// result, strides sh, sw, dilations dh, dw and low paddings ph, pw; CNNLAB_CONV_HANDLER defines
// a handler symbol with it.
#define CNNLAB_CONV_BINDING()                                 \
  xla::ffi::Ffi::Bind()                                       \
      .Ctx<xla::ffi::ThreadPool>()                            \
      .Arg<xla::ffi::Buffer<xla::ffi::F32>>()                 \
      .Arg<xla::ffi::Buffer<xla::ffi::F32>>()                 \
      .Ret<xla::ffi::Buffer<xla::ffi::F32>>()                 \
      .Attr<int64_t>("sh")                                    \
      .Attr<int64_t>("sw")                                    \
      .Attr<int64_t>("dh")                                    \
      .Attr<int64_t>("dw")                                    \
      .Attr<int64_t>("ph")                                    \
      .Attr<int64_t>("pw")
#define CNNLAB_CONV_HANDLER(symbol, fn) \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(symbol, fn, CNNLAB_CONV_BINDING())

#endif  // CNNLAB_NATIVE_COMMON_H_
