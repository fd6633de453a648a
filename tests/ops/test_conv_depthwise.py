"""``conv(..., impl='depthwise')`` against ``lax.conv_general_dilated`` with
``feature_group_count = C``: forward, input grad, weight grad; 1D/2D/3D, stride, dilation,
padding modes, channel multiplier, float32 and bfloat16, eager and jit; and its ``limits``.

Reference: the input padded with ``jnp.pad`` (pads from ``lax.padtype_to_pads`` for 'SAME'),
then a 'VALID' lax conv (this form avoids the jaxlib 0.10.2 grad crash, docs/conventions.md,
"Upstream crash").
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from cnnlab import ops
from conftest import arrays, forward_and_grads
from cnnlab.ops import conv_depthwise
from cnnlab.ops.conv_registry import supports


def reference_conv(x, w, *, stride, padding, dilation):
  nd, c = x.ndim - 2, x.shape[-1]
  eff = [d * (k - 1) + 1 for k, d in zip(w.shape[:-2], dilation)]
  if padding == "SAME":
    pads = lax.padtype_to_pads(x.shape[1:-1], eff, stride, "SAME")
  elif padding == "VALID":
    pads = [(0, 0)] * nd
  elif isinstance(padding, int):
    pads = [(padding, padding)] * nd
  else:
    pads = list(padding)
  sp = "DHW"[-nd:]
  return lax.conv_general_dilated(
      jnp.pad(x, [(0, 0), *pads, (0, 0)]), w, stride, "VALID", rhs_dilation=dilation,
      dimension_numbers=(f"N{sp}C", f"{sp}IO", f"N{sp}C"), feature_group_count=c)


@st.composite
def depthwise_cases(draw, nd):
  """(x_shape, w_shape, conv kwargs, seed) of one depthwise conv; tiny sizes."""
  ints = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(nd))  # noqa: E731
  c, m = draw(st.integers(1, 3)), draw(st.integers(1, 2))
  window, dilation = ints(1, 3), ints(1, 2)
  stride = ints(1, 2 if nd == 3 else 3)
  padding = draw(st.one_of(st.sampled_from(("VALID", "SAME")), st.integers(0, 2),
                           st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * nd)))
  eff = [d * (k - 1) + 1 for k, d in zip(window, dilation)]
  spatial = tuple(e + draw(st.integers(0, 3 if nd == 3 else 6)) for e in eff)
  kw = dict(stride=stride, padding=padding, dilation=dilation)
  return ((draw(st.integers(1, 3)), *spatial, c), (*window, 1, c * m), kw,
          draw(st.integers(0, 2**31 - 1)))


def depthwise(x, w, **kw):
  return ops.conv(x, w, groups=x.shape[-1], impl="depthwise", **kw)


def assert_close(actual, desired, tol):
  scale = max(1.0, float(jnp.abs(desired).max()))
  np.testing.assert_allclose(np.asarray(actual, np.float32), np.asarray(desired, np.float32),
                             rtol=tol, atol=tol * scale)


def both(x, w, ct, *, kw):
  """Forward and grads of ``depthwise`` and of the float32 reference."""
  kw = dict(kw)
  return (forward_and_grads(functools.partial(depthwise, **kw), x, w, ct),
          forward_and_grads(functools.partial(reference_conv, **kw),
                            *(a.astype(jnp.float32) for a in (x, w, ct))))


def check_case(x_shape, w_shape, kw, seed, *, use_jit, dtype=jnp.float32, tol=2e-5):
  """Forward, dx and dw of ``depthwise`` vs the lax reference on the same inputs (one compile
  for both under jit)."""
  x, w = arrays(seed, x_shape, w_shape, dtype=dtype)
  out = jax.eval_shape(functools.partial(reference_conv, **kw), x, w).shape
  ct, = arrays(seed + 1, out, dtype=dtype)
  fn = jax.jit(both, static_argnames="kw") if use_jit else both
  got, want = fn(x, w, ct, kw=tuple(kw.items()))
  for g, r, a in zip(got, want, (ct, x, w)):
    assert g.shape == r.shape and g.dtype == a.dtype
    assert_close(g, r, tol)


@pytest.mark.parametrize("nd", [1, 2, 3])
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_forward_and_grads_match_lax_float32(nd, data):
  x_shape, w_shape, kw, seed = data.draw(depthwise_cases(nd))
  assert supports("depthwise", x_shape, w_shape, groups=x_shape[-1], **kw)
  check_case(x_shape, w_shape, kw, seed, use_jit=True)


@pytest.mark.parametrize("nd", [1, 2, 3])
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_bfloat16_close_to_float32_lax(nd, data):
  # Same bfloat16-rounded inputs in float32: only output rounding and accumulation order differ.
  x_shape, w_shape, kw, seed = data.draw(depthwise_cases(nd))
  check_case(x_shape, w_shape, kw, seed, use_jit=True, dtype=jnp.bfloat16, tol=2e-2)


@st.composite
def native_cases(draw):
  """2D float32 cases the C++ kernels take (multiplier 1): channel counts that reach each of
  their channel blocks (64, 32, 8, 1), kernels up to 5x5, asymmetric and over-wide padding."""
  c = draw(st.sampled_from((1, 3, 8, 13, 32, 45, 64, 75)))
  window, dilation, stride = (tuple(draw(st.integers(1, hi)) for _ in range(2))
                              for hi in (5, 3, 3))
  padding = draw(st.one_of(st.just("SAME"),
                           st.tuples(*[st.tuples(st.integers(0, 4), st.integers(0, 4))] * 2)))
  eff = [d * (k - 1) + 1 for k, d in zip(window, dilation)]
  spatial = tuple(e + draw(st.integers(0, 5)) for e in eff)
  return ((draw(st.integers(1, 3)), *spatial, c), (*window, 1, c),
          dict(stride=stride, padding=padding, dilation=dilation), draw(st.integers(0, 2**31)))


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_native_kernels_match_lax(data):
  check_case(*data.draw(native_cases()), use_jit=True, tol=5e-5)


# Rows wider than native_cases' (up to 40 columns, so most output columns read every tap), with
# channels past the last 8-wide block, strides 2 and 3, dilation and over-wide padding.
WIDE = [((2, 5, 29, 48), (3, 3, 1, 48), dict(stride=(1, 1), padding=1, dilation=(1, 1))),
        ((1, 6, 37, 40), (3, 5, 1, 40),
         dict(stride=(1, 1), padding=((0, 3), (4, 1)), dilation=(1, 2))),
        ((2, 7, 31, 16), (3, 3, 1, 16), dict(stride=(2, 2), padding="SAME", dilation=(1, 1))),
        ((1, 4, 26, 21), (1, 3, 1, 21),
         dict(stride=(1, 3), padding=((0, 0), (2, 2)), dilation=(1, 1))),
        # 5-wide kernels at strides 1 and 2 (strided input gradients: every column phase with its
        # own taps), stride 3 with channels past the last full vector.
        ((1, 6, 33, 48), (5, 5, 1, 48), dict(stride=(1, 1), padding=2, dilation=(1, 1))),
        ((2, 9, 35, 32), (5, 5, 1, 32), dict(stride=(2, 2), padding=2, dilation=(1, 1))),
        ((1, 5, 40, 24), (3, 3, 1, 24), dict(stride=(3, 3), padding=1, dilation=(1, 1)))]


@pytest.mark.parametrize("case", range(len(WIDE)))
def test_native_wide_rows_match_lax(case):
  check_case(*WIDE[case], seed=case, use_jit=True, tol=5e-5)


# Stride, dilation, asymmetric padding and a channel multiplier at once, in every rank.
FIXED = {
    1: ((2, 13, 3), (3, 1, 6), dict(stride=(2,), padding=((2, 1),), dilation=(2,))),
    2: ((2, 9, 8, 4), (3, 2, 1, 8), dict(stride=(2, 1), padding=((1, 2), (0, 1)),
                                         dilation=(1, 2))),
    3: ((1, 6, 7, 5, 2), (2, 3, 2, 1, 4), dict(stride=(1, 2, 2), padding="SAME",
                                               dilation=(2, 1, 1))),
}


@pytest.mark.parametrize("nd,use_jit", [(1, True), (2, False), (2, True), (3, True)],
                         ids=["1d-jit", "2d-eager", "2d-jit", "3d-jit"])
def test_fixed_cases_eager_and_jit(nd, use_jit):
  check_case(*FIXED[nd], seed=nd, use_jit=use_jit)


@pytest.mark.parametrize("tile_elements", [1, 10**6])
def test_tiles_do_not_change_results(tile_elements, monkeypatch):
  """One-row weight-grad tiles (several per example) and one tile per example."""
  monkeypatch.setattr(conv_depthwise, "TILE_ELEMENTS", tile_elements)
  check_case((3, 10, 7, 3), (3, 3, 1, 6), dict(stride=(3, 1), padding=1, dilation=(1, 2)),
             seed=5, use_jit=True)


def test_vmap_over_inputs_and_kernels():
  x, w = arrays(2, (3, *FIXED[2][0]), (3, *FIXED[2][1]))
  kw = FIXED[2][2]
  y = jax.vmap(functools.partial(depthwise, **kw))(x, w)
  for b in range(3):
    assert_close(y[b], reference_conv(x[b], w[b], **kw), 2e-5)


def test_limits_refuse_grouped_non_depthwise_naming_groups():
  x_shape, w_shape = (1, 8, 8, 4), (3, 3, 2, 4)  # groups=2 < C_in=4
  assert not supports("depthwise", x_shape, w_shape, groups=2)
  assert supports("depthwise", (1, 8, 8, 4), (3, 3, 1, 8), groups=4)
  with pytest.raises(ValueError, match=r"impl='depthwise' cannot serve .*groups.*groups=2"):
    ops.conv(jnp.ones(x_shape), jnp.ones(w_shape), groups=2, impl="depthwise")
