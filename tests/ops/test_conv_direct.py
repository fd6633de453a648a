"""``conv(..., impl='direct')`` against ``lax.conv_general_dilated`` (forward, input grad, weight
grad) on the cases its C++ kernels take, and against torch on one; the compiled HLO names its
custom calls where documented and none elsewhere; its ``limits``.

Reference: ``conftest.reference_conv_2d``.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab import ops
from cnnlab.ops import conv_direct
from cnnlab.ops.conv_registry import supports
from conftest import (arrays, check_conv_2d, check_conv_2d_against_torch, conv_and_grads,
                      custom_calls, draw_conv_2d, native_calls_when_off, needs_compiler,
                      reference_conv_2d)


def direct(x, w, **kw):
  return ops.conv(x, w, impl="direct", **kw)


check_case = functools.partial(check_conv_2d, "direct")


@st.composite
def direct_cases(draw):
  """2D cases with channel counts that reach every output block width (16 and 8 channels with
  AVX2; 32, 16 and 8 with AVX-512) and most pixel/channel tails of the tiles; kernels to 5x5,
  stride and dilation to 3 and 2, padding 'SAME', asymmetric or wider than the window (the
  input grad then crops the cotangent)."""
  c_in, c_out = (draw(st.sampled_from((8, 16, 24, 40))) for _ in range(2))
  return draw_conv_2d(draw, c_in, c_out, pad=5, rows=(1, 7), cols=(1, 7), batch=3)


@settings(max_examples=14, deadline=None)
@given(data=st.data())
def test_forward_and_grads_match_lax(data):
  x_shape, w_shape, kw, seed = data.draw(direct_cases())
  assert supports("direct", x_shape, w_shape, **kw)
  check_case(x_shape, w_shape, kw, seed, use_jit=True)


@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
def test_fixed_case_eager_and_jit(use_jit):
  check_case((2, 9, 7, 16), (3, 2, 16, 24),
             dict(stride=(1, 1), padding=((2, 0), (1, 3)), dilation=(2, 1)), 3,
             use_jit=use_jit)


@pytest.mark.parametrize("x_shape, w_shape", [
    ((1, 5, 4, 272), (3, 3, 272, 40)),  # from 256 input channels the weight grad packs x
    ((3, 14, 13, 8), (3, 3, 8, 16)),    # 546 pixels: weight-grad chunks summed in order
], ids=["wide", "many_pixels"])
def test_packed_and_chunked_weight_grad(x_shape, w_shape):
  check_case(x_shape, w_shape, dict(stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1)),
             5, use_jit=True, tol=1e-4)


@pytest.mark.parametrize("x_shape, w_shape, kw", [
    ((1, 5, 32, 64), (3, 3, 64, 64), dict(padding="SAME")),  # 3 tiles of 11 columns, overlapping
    ((3, 7, 7, 64), (3, 3, 64, 64), dict(padding="SAME")),  # 2 x 7 tiles, then 1 x 7
    ((2, 3, 4, 128), (3, 3, 128, 32), dict(padding="SAME")),  # 3 x 4 tiles
    ((2, 5, 4, 64), (3, 3, 64, 32), dict(padding="SAME")),  # 3 x 4 tiles, then 2 x 4
    ((1, 7, 5, 64), (3, 3, 64, 32), dict(padding=((2, 2), (1, 1)), dilation=(2, 1))),
    ((1, 9, 20, 64), (3, 3, 64, 32), dict(stride=(2, 1), padding=((1, 1), (1, 1)))),
    ((1, 10, 16, 256), (3, 3, 256, 32), dict(padding=((2, 2), (1, 1)), dilation=(2, 1))),
    ((1, 6, 9, 512), (2, 3, 512, 32), dict(padding=((0, 2), (1, 0)))),
    ((2, 10, 12, 64), (3, 3, 64, 64), dict(padding=((0, 0), (0, 0)))),
    ((1, 8, 9, 64), (5, 5, 64, 32), dict(padding="SAME")),  # 2 padding columns: general tiles
    ((2, 16, 16, 64), (3, 3, 64, 128), dict(stride=(2, 2), padding=((1, 1), (1, 1)))),
    ((1, 11, 10, 64), (3, 2, 64, 64), dict(stride=(3, 2), padding=((2, 0), (0, 1)))),
    ((2, 9, 9, 64), (1, 1, 64, 32), dict(stride=(2, 2), padding=((0, 0), (0, 0)))),
    ((1, 10, 11, 64), (5, 5, 64, 32), dict(stride=(2, 2), padding=((2, 2), (2, 2)))),
    ((1, 12, 20, 64), (7, 7, 64, 32), dict(stride=(2, 2), padding=((3, 3), (3, 3)))),
], ids=["segments", "row_pairs", "row_triples", "row_rest", "row_pairs_dilated", "row_stride",
        "row_dilation", "asymmetric", "valid", "wide_padding", "phases", "phases_uneven",
        "phases_empty", "stride2_pad2", "stride2_pad3"])
def test_row_tiles(x_shape, w_shape, kw):
  """64-512 input channels and 32-multiple output channels: the forward's and input gradient's
  row tiles (docs/performance.md, "Row tiles in the dense conv"; column stride 2 with up to 2
  padding columns, 3 keep the general tiles), and strided input gradients
  by output phases (3x3 stride 2; stride 3 x 2 with uneven phases; 1x1 stride 2, whose odd
  phases no tap reaches)."""
  kw = dict(dict(stride=(1, 1), dilation=(1, 1)), **kw)
  check_case(x_shape, w_shape, kw, 7, use_jit=True, tol=1e-4)


def test_strided_case_matches_torch():
  """A ResNet-style stride-2 3x3 conv: forward and both grads against torch 2.13."""
  check_conv_2d_against_torch("direct", (2, 11, 10, 8), (3, 3, 8, 16), stride=2, padding=1)


def test_bfloat16_runs_lax_close_to_float32():
  x, w = arrays(3, (2, 8, 8, 8), (3, 3, 8, 16), dtype=jnp.bfloat16)
  y = jax.jit(functools.partial(direct, padding="SAME"))(x, w)
  assert y.dtype == jnp.bfloat16
  want = reference_conv_2d(x.astype(jnp.float32), w.astype(jnp.float32), stride=(1, 1),
                           padding="SAME", dilation=(1, 1))
  np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(want), rtol=2e-2, atol=5e-2)


def fwd_and_grads(x, w, stride=1):
  return conv_and_grads("direct", x, w, stride=stride, padding=1)


@needs_compiler
def test_float32_runs_its_passes_natively():
  x, w = arrays(0, (2, 9, 9, 8), (3, 3, 8, 16))
  assert custom_calls(fwd_and_grads, x, w) == set(conv_direct.NATIVE)
  # Stride 2: the input grad is the forward's kernel over each output phase; lax's conv with a
  # dilated kernel.
  strided = functools.partial(fwd_and_grads, stride=2)
  forward, _, weight_grad = conv_direct.NATIVE
  assert custom_calls(strided, x, w) == {forward, weight_grad}
  hlo = jax.jit(strided).lower(x, w).compile().as_text()
  assert "convolution(" not in hlo and hlo.count(f'"{forward}"') == 5  # forward + 4 phases
  dilated = lambda x, w: jax.vjp(  # noqa: E731
      functools.partial(direct, stride=2, padding=2, dilation=2), x, w)[1](jnp.ones((2, 5, 5, 16)))
  assert "convolution(" in jax.jit(dilated).lower(x, w).compile().as_text()


def test_no_native_calls_for_bfloat16_or_when_disabled(monkeypatch):
  x, w = arrays(0, (2, 9, 9, 8), (3, 3, 8, 16))
  assert not native_calls_when_off(fwd_and_grads, x, w, monkeypatch)


def test_limits_name_the_option():
  assert not supports("direct", (1, 8, 8, 3), (3, 3, 3, 16))
  assert not supports("direct", (1, 8, 8, 16), (3, 3, 16, 12))
  assert not supports("direct", (1, 8, 8, 16), (3, 3, 8, 16), groups=2)
  assert not supports("direct", (1, 8, 16), (3, 16, 16))
  with pytest.raises(ValueError, match=r"impl='direct' cannot serve .*channels.*\(3, 16\)"):
    ops.conv(jnp.ones((1, 8, 8, 3)), jnp.ones((3, 3, 3, 16)), impl="direct")
