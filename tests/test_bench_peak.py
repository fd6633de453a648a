"""``cnnlab.bench.peak``: the GPU table by device kind and dtype; on the CPU, the measured rate
of a float32 matmul (no table value exists for a shared VM)."""

import jax
import numpy as np
import pytest

from cnnlab.bench import peak


def test_gpu_peak_from_the_table(monkeypatch):
  class H100:
    platform, device_kind = "gpu", "NVIDIA H100 80GB HBM3"

  monkeypatch.setattr(jax, "devices", lambda: [H100()])
  assert peak.peak_tflops("bfloat16") == (989.4, "H100 dense bfloat16 peak (table)")
  assert peak.peak_tflops("float32")[0] == 494.7  # TF32: half the bfloat16 rate
  with pytest.raises(ValueError, match=r"dtype='int8' has no H100 peak \(allowed: "):
    peak.peak_tflops("int8")


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU's measured peak")
def test_cpu_peak_is_measured():
  tflops, source = peak.peak_tflops("bfloat16")
  assert source.startswith("measured float32 jnp.matmul on cpu:")
  assert np.isfinite(tflops) and 0 < tflops < 100  # a few CPU cores: far below a GPU's
