"""Shared test fixtures: repository paths and the shared data folder (never copied in).

Under CI (``CI=true``) the shared data folder must be there: tests that read it would otherwise
skip quietly, so its absence fails the whole session at collection.

What keeps the suite inside its time budget, and what each part saves: docs/testing.md. Here:
one XLA compilation cache per session (a fresh temporary folder, removed at the end), the tests'
XLA flags (added to ``XLA_FLAGS`` unless it names the option; child processes inherit them), and a
larger young generation for Python's garbage collector."""

import gc
import importlib.util
import os
import pathlib
import shutil
import sys
import tempfile

import numpy as np
import pytest
from absl import logging as absl_logging

# absl's handler binds the sys.stderr of the moment it is created, which under pytest is a
# per-test capture stream that pytest closes afterwards; a later log line (submitit, orbax
# threads) then writes to a closed file and brings the session down. Bind the real stderr.
absl_logging.get_absl_handler().python_handler.stream = sys.__stderr__

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
MNIST8K = SHARED_DATA / "mnist8k"


_OWN_CACHE = []


def pytest_configure(config):
  """Before any JAX import (and before xdist starts its workers, which inherit the variables)."""
  del config
  gc.set_threshold(50_000, 20, 1_000)
  if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_CACHE.append(tempfile.mkdtemp(prefix="cnnlab-test-xla-cache-"))
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE[0]
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  # impl='auto' (the configs' default) must not follow timings a benchmark left on this machine:
  # its cache is a path that does not exist (the heuristic); tests that need one set their own.
  os.environ["CNNLAB_CONV_CACHE"] = os.path.join(tempfile.gettempdir(),
                                                 f"cnnlab-test-no-conv-cache-{os.getpid()}.json")
  flags = os.environ.get("XLA_FLAGS", "")
  for flag in ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false"):
    if flag.split("=")[0] not in flags:
      flags = f"{flags} {flag}".strip()
  os.environ["XLA_FLAGS"] = flags


def pytest_unconfigure(config):
  del config
  for path in _OWN_CACHE:
    shutil.rmtree(path, ignore_errors=True)


def pytest_sessionstart(session):
  del session
  if os.environ.get("CI") == "true" and not (MNIST8K / "images-idx3-ubyte.gz").exists():
    raise pytest.UsageError(f"CI=true but the shared data folder {SHARED_DATA} (beside the "
                            "repository) is missing or lacks mnist8k; CI must run with it")


def load_config_module(path):
  spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def needs_mnist8k():
  if not (MNIST8K / "images-idx3-ubyte.gz").exists():
    pytest.skip(f"real MNIST digits not found at {MNIST8K} (the shared data folder beside the "
                "repo); this test reads them and is skipped without them")


@pytest.fixture
def digits_config():
  """lenet5_digits with its smoke switch: 2 steps, batch 16, no progress bar."""
  return load_config_module(REPO / "configs" / "lenet5_digits.py").get_config("smoke")


def arrays(seed, *shapes, dtype=None):
  """Standard-normal jnp arrays of ``shapes`` (float32 unless ``dtype``), seeded."""
  import jax.numpy as jnp  # noqa: PLC0415 - conftest stays light for tests without JAX
  rng = np.random.default_rng(seed)
  return [jnp.asarray(rng.standard_normal(s), dtype or jnp.float32) for s in shapes]


def forward_and_grads(fn, x, w, ct):
  """``(fn(x, w), d/dx, d/dw)`` of ``fn`` for the cotangent ``ct``."""
  import jax  # noqa: PLC0415
  y, vjp = jax.vjp(fn, x, w)
  return (y, *vjp(ct))


def reference_conv_2d(x, w, *, stride, padding, dilation):
  """2D channels-last ``groups == 1`` conv: the input padded with ``lax.pad``, then a 'VALID'
  lax conv (the form that avoids the jaxlib 0.10.2 grad crash, docs/conventions.md, "Upstream
  crash"). ``padding``: 'SAME' or ``((lo, hi), (lo, hi))``."""
  from jax import lax  # noqa: PLC0415
  eff = [d * (k - 1) + 1 for k, d in zip(w.shape[:2], dilation)]
  if padding == "SAME":
    pads = lax.padtype_to_pads(x.shape[1:3], eff, stride, "SAME")
  else:
    pads = list(padding)
  x = lax.pad(x, 0.0, [(0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0)])
  return lax.conv_general_dilated(x, w, stride, "VALID", rhs_dilation=dilation,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def check_conv_2d(impl, x_shape, w_shape, kw, seed, *, use_jit, dtype=None, tol=5e-5):
  """``ops.conv(impl=impl, **kw)``'s forward and both grads equal :func:`reference_conv_2d`'s
  (in float32) on seeded normal arrays of ``dtype`` (float32 unless given), within ``tol``
  relative to the largest reference value (at least 1)."""
  import functools  # noqa: PLC0415
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  from cnnlab import ops  # noqa: PLC0415
  x, w = arrays(seed, x_shape, w_shape, dtype=dtype)
  out = jax.eval_shape(functools.partial(reference_conv_2d, **kw), x, w).shape
  ct, = arrays(seed + 1, out, dtype=dtype)

  def both(x, w, ct):
    f32 = (a.astype(jnp.float32) for a in (x, w, ct))
    return (forward_and_grads(functools.partial(ops.conv, impl=impl, **kw), x, w, ct),
            forward_and_grads(functools.partial(reference_conv_2d, **kw), *f32))

  got, want = (jax.jit(both) if use_jit else both)(x, w, ct)
  for g, r, a in zip(got, want, (ct, x, w)):
    assert g.shape == r.shape and g.dtype == a.dtype
    scale = max(1.0, float(jnp.abs(r).max()))
    np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(r), rtol=tol,
                               atol=tol * scale)


def draw_conv_2d(draw, c_in, c_out, *, pad, rows, cols, batch):
  """One 2D conv case ``(x_shape, w_shape, kw, seed)`` for ``check_conv_2d``, drawn with
  hypothesis's ``draw``: kernels to 5x5, dilation to 2, stride to 3, padding 'SAME' or up to
  ``pad`` on each side, the input ``rows`` / ``cols`` (ranges) larger than the dilated window,
  up to ``batch`` examples."""
  from hypothesis import strategies as st  # noqa: PLC0415
  window, dilation, stride = (tuple(draw(st.integers(1, hi)) for _ in range(2))
                              for hi in (5, 2, 3))
  padding = draw(st.one_of(st.just("SAME"),
                           st.tuples(*[st.tuples(st.integers(0, pad), st.integers(0, pad))] * 2)))
  eff = [d * (k - 1) + 1 for k, d in zip(window, dilation)]
  spatial = (eff[0] + draw(st.integers(*rows)), eff[1] + draw(st.integers(*cols)))
  return ((draw(st.integers(1, batch)), *spatial, c_in), (*window, c_in, c_out),
          dict(stride=stride, padding=padding, dilation=dilation), draw(st.integers(0, 2**31)))


def check_conv_2d_against_torch(impl, x_shape, w_shape, **kw):
  """``ops.conv(impl=impl, **kw)`` (jitted, ``groups == 1``) and its grads for a seeded
  cotangent against torch 2.13's ``conv2d`` (``stride``/``padding`` ints) in float64: its float32
  CPU weight gradient is unreliable (tests/ops/test_conv_torch.py)."""
  import functools  # noqa: PLC0415
  import jax  # noqa: PLC0415
  import torch  # noqa: PLC0415
  from cnnlab import ops  # noqa: PLC0415
  x, w = (np.asarray(a) for a in arrays(7, x_shape, w_shape))
  y, vjp = jax.vjp(jax.jit(functools.partial(ops.conv, impl=impl, **kw)), x, w)
  ct = np.asarray(arrays(8, y.shape)[0])
  x_t = torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64, requires_grad=True)
  w_t = torch.tensor(w.transpose(3, 2, 0, 1).copy(), dtype=torch.float64, requires_grad=True)
  y_t = torch.nn.functional.conv2d(x_t, w_t, **kw)
  y_t.backward(torch.tensor(ct.transpose(0, 3, 1, 2), dtype=torch.float64))
  dx, dw = vjp(ct)
  for got, want in ((y, y_t.detach().numpy().transpose(0, 2, 3, 1)),
                    (dx, x_t.grad.numpy().transpose(0, 2, 3, 1)),
                    (dw, w_t.grad.numpy().transpose(2, 3, 1, 0))):
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def conv_and_grads(impl, x, w, **kw):
  """``ops.conv(x, w, impl=impl, **kw)`` and its two gradients for a cotangent of ones."""
  import functools  # noqa: PLC0415
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  from cnnlab import ops  # noqa: PLC0415
  y, vjp = jax.vjp(functools.partial(ops.conv, impl=impl, **kw), x, w)
  return (y, *vjp(jnp.ones_like(y)))


def native_calls_when_off(fn, x, w, monkeypatch):
  """The custom calls of ``fn`` traced for bfloat16 operands, inside ``native.disabled()`` and
  under ``CNNLAB_NATIVE=0`` (each a fresh function: jit reuses a trace made before a switch)."""
  import jax.numpy as jnp  # noqa: PLC0415
  from cnnlab.ops import native  # noqa: PLC0415
  calls = custom_calls(fn, x.astype(jnp.bfloat16), w.astype(jnp.bfloat16))
  with native.disabled():
    calls |= custom_calls(lambda x, w: fn(x, w), x, w)
  monkeypatch.setenv("CNNLAB_NATIVE", "0")
  return calls | custom_calls(lambda x, w: fn(x, w), x, w)


CXX = os.environ.get("CXX", "c++")
needs_compiler = pytest.mark.skipif(shutil.which(CXX) is None,
                                    reason=f"no C++ compiler ({CXX}): the XLA forms serve")


def custom_calls(fn, *args):
  """The custom-call targets in ``fn``'s compiled CPU HLO."""
  import re  # noqa: PLC0415
  import jax  # noqa: PLC0415
  text = jax.jit(fn).lower(*args).compile().as_text()
  return set(re.findall(r'custom_call_target="([^"]+)"', text))


def evaluate_cli(config_arg, run, capsys, *flags):
  """``scripts/evaluate.py --config=CONFIG_ARG --workdir=RUN FLAGS...`` through the library's CLI
  in this process: its exit code must be 0; returns the JSON result line it printed."""
  import json  # noqa: PLC0415
  from cnnlab import train  # noqa: PLC0415
  from cnnlab.train import cli  # noqa: PLC0415
  capsys.readouterr()
  code = cli.execute(lambda config, workdir: train.evaluate(config, workdir),
                     ["evaluate.py", f"--config={config_arg}", f"--workdir={run}", *flags])
  assert code == 0
  return json.loads(capsys.readouterr().out.strip().splitlines()[-1])
