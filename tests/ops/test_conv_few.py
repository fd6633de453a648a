"""``conv(..., impl='few')`` against ``lax.conv_general_dilated`` (forward, input grad, weight
grad; ``conftest.reference_conv_2d``) on the cases its C++ kernels take, and against torch on
LeNet-5's two first convs; the compiled HLO names its custom calls for float32 only; its
``limits``."""

import functools

import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab import ops
from cnnlab.ops import conv_few
from cnnlab.ops.conv_registry import supports
from conftest import (arrays, check_conv_2d, check_conv_2d_against_torch, conv_and_grads,
                      custom_calls, draw_conv_2d, native_calls_when_off, needs_compiler)

check_case = functools.partial(check_conv_2d, "few")


@st.composite
def few_cases(draw):
  """2D cases with 1-6 input channels (and 9: any count works) and output channels that reach
  every block of the kernels (32, 24, 16, 8 channels: 8, 16, 24, 40, 64) and counts the kernels
  pad to a multiple of 8 (6, 10); kernels to 5x5, stride
  to 3, dilation to 2, padding 'SAME', asymmetric or wider than the window (border columns),
  rows wide enough for full and partial tiles of columns."""
  c_in = draw(st.sampled_from((1, 2, 3, 4, 6, 9)))
  c_out = draw(st.sampled_from((6, 8, 10, 16, 24, 40, 64)))
  return draw_conv_2d(draw, c_in, c_out, pad=4, rows=(0, 4), cols=(0, 30), batch=2)


@settings(max_examples=16, deadline=None)
@given(data=st.data())
def test_forward_and_grads_match_lax(data):
  x_shape, w_shape, kw, seed = data.draw(few_cases())
  assert supports("few", x_shape, w_shape, **kw)
  check_case(x_shape, w_shape, kw, seed, use_jit=True)


@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
def test_fixed_case_eager_and_jit(use_jit):
  """29 interior columns (tiles of 12 columns for a block of 8 channels with AVX2, 24 with
  AVX-512, the last partial) and 2 border columns on each side, 40 channels (a block of 32,
  then 8)."""
  check_case((2, 6, 33, 3), (3, 5, 3, 40),
             dict(stride=(1, 1), padding=((1, 1), (2, 2)), dilation=(1, 1)), 3,
             use_jit=use_jit)


@pytest.mark.parametrize("window", [(3, 5), (5, 3)])
def test_one_channel_rows_slide(window):
  """One input channel, at most 8 output channels, 3 or 5 kernel columns, unit column stride:
  the sliding tiles (full and partial ones: 36 or 38 interior columns) and their border columns."""
  check_case((2, 7, 40, 1), (*window, 1, 6),
             dict(stride=(2, 1), padding=((1, 0), (2, 2)), dilation=(1, 1)), 5, use_jit=True)


@pytest.mark.parametrize("x_shape, w_shape", [((3, 32, 32, 1), (5, 5, 1, 6)),
                                              ((3, 14, 14, 6), (5, 5, 6, 16))],
                         ids=["C1", "C3"])
def test_lenet_convs_match_torch(x_shape, w_shape):
  """LeNet-5's C1 (1 -> 6 channels, 5x5, 32x32 input) and C3 (6 -> 16, 14x14): forward and both
  grads against torch."""
  check_conv_2d_against_torch("few", x_shape, w_shape)


fwd_and_grads = functools.partial(conv_and_grads, "few", padding=1)


@needs_compiler
def test_float32_forward_and_weight_gradient_are_native():
  x, w = arrays(0, (2, 9, 9, 3), (3, 3, 3, 6))
  assert custom_calls(fwd_and_grads, x, w) == set(conv_few.NATIVE)
  hlo = jax.jit(fwd_and_grads).lower(x, w).compile().as_text()
  assert hlo.count("convolution(") == 1  # cols' input gradient


def test_no_native_call_for_bfloat16_or_when_disabled(monkeypatch):
  x, w = arrays(0, (2, 9, 9, 3), (3, 3, 3, 16))
  assert not native_calls_when_off(fwd_and_grads, x, w, monkeypatch)


def test_limits_name_the_option():
  assert supports("few", (1, 8, 8, 3), (3, 3, 3, 16))
  assert supports("few", (1, 8, 8, 3), (3, 3, 3, 6))
  assert not supports("few", (1, 8, 8, 4), (3, 3, 2, 16), groups=2)
  assert not supports("few", (1, 8, 3), (3, 3, 16))
  with pytest.raises(ValueError, match=r"impl='few' cannot serve .*2D convs with groups=1, got 1D"):
    ops.conv(jnp.ones((1, 8, 1)), jnp.ones((5, 1, 6)), impl="few")
