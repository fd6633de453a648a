"""``cnnlab.ops.native``: the C++ kernels build here, are cached by content, are used where
documented (the compiled HLO names their custom calls) and not where not; a failed build falls
back with one warning. Their numbers are checked against lax in test_conv_depthwise.py."""

import functools
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from cnnlab import ops
from cnnlab.ops import conv_depthwise, native
from conftest import arrays, custom_calls, needs_compiler

def fwd_and_grads(x, w):
  """y, dx and dw of a depthwise 3x3 conv (y returned, so all three passes run)."""
  conv = functools.partial(ops.conv, groups=x.shape[-1], padding=1, impl="depthwise")
  y, vjp = jax.vjp(conv, x, w)
  return (y, *vjp(jnp.ones_like(y)))


@needs_compiler
def test_builds_into_an_empty_cache_once(tmp_path, monkeypatch):
  monkeypatch.setenv("CNNLAB_NATIVE_CACHE", str(tmp_path))
  source = pathlib.Path(native.__file__).with_name("depthwise.cc")
  lib = native._build(source)
  assert lib.parent == tmp_path and re.fullmatch(r"depthwise-[0-9a-f]{16}\.so", lib.name)
  mtime = lib.stat().st_mtime_ns
  assert native._build(source) == lib and lib.stat().st_mtime_ns == mtime  # reused
  # No temporary file left; the lock file stays.
  assert sorted(p.name for p in tmp_path.iterdir()) == [lib.name, f"{lib.name}.lock"]


@needs_compiler
def test_processes_starting_together_build_once(tmp_path):
  """Two processes ask for the same library in an empty cache at once: one compiles it, the
  other waits on the lock and loads it (a compiler wrapper counts the compiles)."""
  log = tmp_path / "compiles"
  cxx = tmp_path / "cxx"
  cxx.write_text(f'#!/bin/sh\ncase "$*" in *-o*) echo x >> {log};; esac\nexec c++ "$@"\n')
  cxx.chmod(0o755)
  env = dict(os.environ, CXX=str(cxx), CNNLAB_NATIVE_CACHE=str(tmp_path / "cache"))
  code = ("import pathlib; from cnnlab.ops import native; "
          "print(native._build(pathlib.Path(native.__file__).with_name('depthwise.cc')))")
  procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            text=True) for _ in range(2)]
  libs = {p.communicate(timeout=300)[0].strip() for p in procs}
  assert all(p.returncode == 0 for p in procs) and len(libs) == 1
  assert log.read_text().splitlines() == ["x"]


def test_a_failed_build_warns_once_and_returns_false(tmp_path, monkeypatch, caplog):
  monkeypatch.setenv("CNNLAB_NATIVE_CACHE", str(tmp_path))
  monkeypatch.setenv("CXX", "false")  # exits 1 for --version as for a compile
  assert native.targets.__wrapped__("depthwise", conv_depthwise.NATIVE) is False
  warnings = [r for r in caplog.records if "native depthwise kernels unavailable" in r.getMessage()]
  assert len(warnings) == 1 and not list(tmp_path.iterdir())


@needs_compiler
def test_float32_2d_runs_all_three_passes_natively():
  x, w = arrays(0, (2, 9, 9, 8), (3, 3, 1, 8))
  assert custom_calls(fwd_and_grads, x, w) == set(conv_depthwise.NATIVE)


@pytest.mark.parametrize("case", ["bfloat16", "multiplier", "1d", "disabled", "env"])
def test_other_cases_keep_the_xla_forms(case, monkeypatch):
  x_shape, w_shape, dtype = (2, 9, 9, 8), (3, 3, 1, 8), jnp.float32
  if case == "bfloat16":
    dtype = jnp.bfloat16
  elif case == "multiplier":
    w_shape = (3, 3, 1, 16)
  elif case == "1d":
    x_shape, w_shape = (2, 9, 8), (3, 1, 8)
  elif case == "env":
    monkeypatch.setenv("CNNLAB_NATIVE", "0")
  x, w = arrays(0, x_shape, w_shape, dtype=dtype)
  # A fresh function each time: jit reuses a trace made before the switch.
  fn = lambda x, w: fwd_and_grads(x, w)  # noqa: E731
  if case == "disabled":
    with native.disabled():
      calls = custom_calls(fn, x, w)
    assert native.enabled()
  else:
    calls = custom_calls(fn, x, w)
  assert not calls & set(conv_depthwise.NATIVE)


def test_export_traces_no_native_call():
  """What ``cnnlab.train.export`` relies on: inside ``disabled()`` an exported depthwise conv
  names no custom call (outside it, jax.export refuses cnnlab's targets where they are built)."""
  x, w = arrays(1, (2, 9, 9, 8), (3, 3, 1, 8))
  conv = lambda x: ops.conv(x, w, groups=8, padding=1, impl="depthwise")  # noqa: E731
  with native.disabled():
    exported = jax.export.export(jax.jit(conv))(x)
  assert "custom_call" not in exported.mlir_module()
  assert jnp.allclose(exported.call(x), conv(x), atol=1e-5)
