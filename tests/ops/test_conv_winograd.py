"""``conv(..., impl='winograd')``'s C++ F(2x2, 3x3) kernels against ``lax.conv_general_dilated``
(forward, input grad, weight grad; ``conftest.reference_conv_2d``) on the cases they take, and
against torch on one; the compiled HLO names their custom calls for float32 only; the XLA form
serves other channel counts. (Both forms on small cases: tests/ops/test_conv_impls.py.)"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from cnnlab import ops
from cnnlab.ops import conv_winograd
from conftest import (arrays, check_conv_2d, check_conv_2d_against_torch, conv_and_grads,
                      custom_calls, native_calls_when_off, needs_compiler)

UNIT = dict(stride=(1, 1), dilation=(1, 1))


def check_case(x_shape, w_shape, kw, seed, **options):
  check_conv_2d("winograd", x_shape, w_shape, dict(UNIT, **kw), seed, **options)


@st.composite
def winograd_cases(draw):
  """3x3 stride-1 cases with channel counts that fill one or both vectors of an output block
  (16, 32, 48 with AVX-512), odd and even output sizes (cropped tiles), tiles that straddle
  rows and images within a block, padding 'SAME', none, asymmetric or wider than the window
  (the input gradient then crops the cotangent)."""
  c_in, c_out = (draw(st.sampled_from((16, 32, 48))) for _ in range(2))
  padding = draw(st.one_of(st.just("SAME"),
                           st.tuples(*[st.tuples(st.integers(0, 4), st.integers(0, 4))] * 2)))
  spatial = tuple(draw(st.integers(3, 12)) for _ in range(2))
  return ((draw(st.integers(1, 3)), *spatial, c_in), (3, 3, c_in, c_out), dict(padding=padding),
          draw(st.integers(0, 2**31)))


@settings(max_examples=14, deadline=None)
@given(data=st.data())
def test_forward_and_grads_match_lax(data):
  x_shape, w_shape, kw, seed = data.draw(winograd_cases())
  check_case(x_shape, w_shape, kw, seed, use_jit=True)


@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
def test_fixed_case_eager_and_jit(use_jit):
  check_case((2, 9, 7, 16), (3, 3, 16, 32), dict(padding=((2, 0), (1, 3))), 3, use_jit=use_jit)


@pytest.mark.parametrize("x_shape, w_shape", [
    ((3, 10, 10, 64), (3, 3, 64, 64)),     # 75 tiles: weight-grad partials per chunk
    ((3, 10, 10, 128), (3, 3, 128, 256)),  # partials too large: products split by point
    ((1, 14, 14, 512), (3, 3, 512, 16)),   # forward blocks of 28 tiles, a lone output vector
], ids=["partials", "shared", "wide"])
def test_weight_grad_modes_and_wide_inputs(x_shape, w_shape):
  check_case(x_shape, w_shape, dict(padding="SAME"), 5, use_jit=True, tol=1e-4)


def test_case_matches_torch():
  """A ResNet-style 3x3 conv: forward and both grads against torch 2.13."""
  check_conv_2d_against_torch("winograd", (2, 8, 9, 16), (3, 3, 16, 32), padding=1)


@pytest.mark.parametrize("x_shape, w_shape, padding", [
    ((2, 5, 6, 7, 16), (3, 3, 3, 16, 32), 1),
    ((1, 4, 5, 4, 32), (3, 3, 3, 32, 16), ((2, 0), (0, 1), (1, 3))),
], ids=["same", "asymmetric"])
def test_3d_per_temporal_tap_matches_lax(x_shape, w_shape, padding):
  """3x3x3: the native 2D kernels per temporal tap, forward and both gradients, against
  ``lax.conv_general_dilated`` at ``precision='highest'``."""
  x, w = arrays(11, x_shape, w_shape)
  ours = functools.partial(ops.conv, impl="winograd", padding=padding)
  pads = padding if isinstance(padding, tuple) else ((padding, padding),) * 3
  def ref(x, w):  # padded, then 'VALID' (docs/conventions.md, "Upstream crash")
    xp = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), *[(lo, hi, 0) for lo, hi in pads],
                                             (0, 0, 0)])
    return lax.conv_general_dilated(xp, w, (1, 1, 1), "VALID",
                                    dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
                                    precision=lax.Precision.HIGHEST)

  y, vjp = jax.vjp(jax.jit(ours), x, w)
  y_ref, vjp_ref = jax.vjp(ref, x, w)
  ct, = arrays(12, y.shape)
  for got, want in zip((y, *vjp(ct)), (y_ref, *vjp_ref(ct))):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(jnp.abs(want).max()))
  assert custom_calls(ours, x, w) == {conv_winograd.NATIVE[0]}


fwd_and_grads = functools.partial(conv_and_grads, "winograd", padding=1)


@needs_compiler
def test_float32_runs_its_passes_natively():
  x, w = arrays(0, (2, 9, 9, 16), (3, 3, 16, 32))
  assert custom_calls(fwd_and_grads, x, w) == set(conv_winograd.NATIVE)
  assert "convolution(" not in jax.jit(fwd_and_grads).lower(x, w).compile().as_text()


def test_other_channel_counts_and_groups_run_the_xla_form():
  for x_shape, w_shape, groups in (((1, 6, 6, 8), (3, 3, 8, 16), 1),
                                   ((1, 6, 6, 32), (3, 3, 16, 32), 2)):
    x, w = arrays(0, x_shape, w_shape)
    fn = lambda x, w, g=groups: ops.conv(x, w, impl="winograd", padding=1, groups=g)  # noqa: E731
    assert not custom_calls(fn, x, w)


def test_no_native_calls_for_bfloat16_or_when_disabled(monkeypatch):
  x, w = arrays(0, (2, 9, 9, 16), (3, 3, 16, 32))
  assert not native_calls_when_off(fwd_and_grads, x, w, monkeypatch)
