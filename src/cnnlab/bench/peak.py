"""Peak FLOP/s of the device a benchmark runs on, for model FLOPs utilisation (MFU).

GPU: the vendor's dense tensor-core peak per compute dtype, by device kind (docs/performance.md,
"GPU bench mode", gives the sources). CPU: none is published for a shared VM, so the peak is
measured: the median rate of a jitted square float32 ``jnp.matmul``, whatever the dtype timed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cnnlab.bench import report

# Dense (no 2:4 sparsity) tensor-core TFLOP/s of the SXM parts; float32 is TF32, which JAX's
# default matmul precision uses on these GPUs.
GPU_PEAK_TFLOPS = {"H100": {"bfloat16": 989.4, "float16": 989.4, "float32": 494.7},
                   "H200": {"bfloat16": 989.4, "float16": 989.4, "float32": 494.7}}


def measured_matmul_tflops(n: int = 2048, *, warmup: int = 2, iters: int = 5) -> float:
  """Median TFLOP/s of ``jnp.matmul`` on two ``n x n`` float32 matrices (jitted)."""
  a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n), np.float32))
  mm = jax.jit(jnp.matmul)
  return 2 * n**3 / report.median_seconds(lambda: mm(a, a), warmup=warmup, iters=iters) / 1e12


def peak_tflops(dtype: str) -> tuple[float, str]:
  """``(TFLOP/s, where it comes from)`` for ``dtype`` (a jnp dtype name) on JAX's first device:
  the table for a known GPU, else the measured float32 matmul rate."""
  d = jax.devices()[0]
  for kind, peaks in GPU_PEAK_TFLOPS.items():
    if d.platform == "gpu" and kind in d.device_kind:
      if dtype not in peaks:
        raise ValueError(f"dtype={dtype!r} has no {kind} peak (allowed: {sorted(peaks)})")
      return peaks[dtype], f"{kind} dense {dtype} peak (table)"
  return measured_matmul_tflops(), f"measured float32 jnp.matmul on {d.platform}:{d.device_kind}"
