"""``conv(..., impl='perpass')`` and ``make_perpass`` method mixes against
``lax.conv_general_dilated``: forward, input grad, weight grad; 1D/2D, stride, dilation, padding,
groups, float32 and bfloat16, eager and jit; the compiled weight grad uses the chosen method;
``limits`` names the pass and the option.

Reference: the input padded with ``jnp.pad``, then a 'VALID' lax conv (this form avoids the
jaxlib 0.10.2 grad crash, docs/conventions.md, "Upstream crash").
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
from cnnlab.ops import conv_perpass
from cnnlab.ops.conv_case import make_case
from cnnlab.ops.conv_registry import supports, unsupported_reason

MIXES = [conv_perpass.DEFAULT_METHODS, dict(fwd="im2col", dx="shift", dw="im2col"),
         dict(fwd="shift", dx="im2col", dw="lax")]


def reference_conv(x, w, *, stride, padding, dilation, groups):
  nd = x.ndim - 2
  pads = [(padding, padding)] * nd if isinstance(padding, int) else list(padding)
  sp = "DHW"[-nd:]
  return lax.conv_general_dilated(
      jnp.pad(x, [(0, 0), *pads, (0, 0)]), w, stride, "VALID", rhs_dilation=dilation,
      dimension_numbers=(f"N{sp}C", f"{sp}IO", f"N{sp}C"), feature_group_count=groups)


def perpass_conv(x, w, *, methods, **kw):
  """``make_perpass(**methods)``'s conv on ``conv``'s arguments (explicit pads from make_case)."""
  case = make_case(x.shape, w.shape, x.dtype, w.dtype, **kw)
  fn, _ = conv_perpass.make_perpass(**methods)
  return fn(x, w, stride=case.stride, pads=case.pads, dilation=case.dilation, groups=case.groups)


@st.composite
def conv_cases(draw, nd):
  """(x_shape, w_shape, conv kwargs, seed) of one conv; tiny sizes."""
  ints = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(nd))  # noqa: E731
  groups = draw(st.integers(1, 2))
  c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
  window, dilation, stride = ints(1, 3), ints(1, 2), ints(1, 3)
  padding = draw(st.one_of(st.integers(0, 2),
                           st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * nd)))
  eff = [d * (k - 1) + 1 for k, d in zip(window, dilation)]
  spatial = tuple(e + draw(st.integers(0, 6)) for e in eff)
  kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
  return ((draw(st.integers(1, 3)), *spatial, c_in), (*window, c_in // groups, c_out), kw,
          draw(st.integers(0, 2**31 - 1)))


def both(x, w, ct, *, kw, methods):
  """Forward and grads of the perpass conv (registered one if ``methods`` is None) and of the
  float32 reference."""
  kw, methods = dict(kw), methods and dict(methods)
  fn = (functools.partial(ops.conv, impl="perpass", **kw) if methods is None
        else functools.partial(perpass_conv, methods=methods, **kw))
  return (forward_and_grads(fn, x, w, ct),
          forward_and_grads(functools.partial(reference_conv, **kw),
                            *(a.astype(jnp.float32) for a in (x, w, ct))))


def assert_close(actual, desired, tol):
  scale = max(1.0, float(jnp.abs(desired).max()))
  np.testing.assert_allclose(np.asarray(actual, np.float32), np.asarray(desired, np.float32),
                             rtol=tol, atol=tol * scale)


def check_case(x_shape, w_shape, kw, seed, *, use_jit, methods=None, dtype=jnp.float32,
               tol=2e-5):
  x, w = arrays(seed, x_shape, w_shape, dtype=dtype)
  out = jax.eval_shape(functools.partial(reference_conv, **kw), x, w).shape
  ct, = arrays(seed + 1, out, dtype=dtype)
  fn = jax.jit(both, static_argnames=("kw", "methods")) if use_jit else both
  got, want = fn(x, w, ct, kw=tuple(kw.items()), methods=methods and tuple(methods.items()))
  for g, r, a in zip(got, want, (ct, x, w)):
    assert g.shape == r.shape and g.dtype == a.dtype
    assert_close(g, r, tol)


@pytest.mark.parametrize("nd", [1, 2])
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_registered_perpass_matches_lax_float32(nd, data):
  x_shape, w_shape, kw, seed = data.draw(conv_cases(nd))
  assert supports("perpass", x_shape, w_shape, **kw)
  check_case(x_shape, w_shape, kw, seed, use_jit=True)


@pytest.mark.parametrize("methods", MIXES[1:], ids=lambda m: "-".join(m.values()))
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_method_mixes_match_lax_float32(methods, data):
  x_shape, w_shape, kw, seed = data.draw(conv_cases(2))
  check_case(x_shape, w_shape, kw, seed, use_jit=True, methods=methods)


@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_bfloat16_close_to_float32_lax(data):
  # Same bfloat16-rounded inputs in float32: only output rounding and accumulation order differ.
  x_shape, w_shape, kw, seed = data.draw(conv_cases(2))
  check_case(x_shape, w_shape, kw, seed, use_jit=True, dtype=jnp.bfloat16, tol=2e-2)


# Stride, dilation, asymmetric padding and groups at once.
FIXED = ((2, 9, 8, 4), (3, 2, 2, 6), dict(stride=(2, 1), padding=((1, 2), (0, 1)),
                                          dilation=(1, 2), groups=2))


@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("methods", MIXES, ids=lambda m: "-".join(m.values()))
def test_fixed_case_eager_and_jit(methods, use_jit):
  check_case(*FIXED, seed=3, use_jit=use_jit, methods=methods)


def _compiled_weight_grad(dw):
  x, w = arrays(0, (2, 8, 8, 4), (3, 3, 4, 8))
  g, = arrays(1, (2, 8, 8, 8))
  conv = functools.partial(perpass_conv, methods=dict(dw=dw), padding=1)
  dw_only = lambda x, w, g: jax.vjp(lambda w_: conv(x, w_), w)[1](g)[0]  # noqa: E731
  return jax.jit(dw_only).lower(x, w, g).compile().as_text()


def test_weight_grad_by_im2col_compiles_to_a_dot_not_a_conv():
  assert " convolution(" in _compiled_weight_grad("lax")  # the check can see a conv
  hlo = _compiled_weight_grad("im2col")
  assert " convolution(" not in hlo and " dot(" in hlo


def test_limits_name_the_pass_the_method_and_the_option():
  _, limits = conv_perpass.make_perpass(dw="winograd")
  case = make_case((1, 8, 8, 2), (3, 3, 2, 4), jnp.float32, jnp.float32, stride=2)
  reason = limits(case)
  assert reason.startswith("dw by 'winograd'") and "stride" in reason
  assert reason.endswith(unsupported_reason("winograd", case))
  assert limits(make_case((1, 8, 8, 2), (3, 3, 2, 4), jnp.float32, jnp.float32)) is None
  with pytest.raises(ValueError, match=r"impl='nope' is not one of"):
    conv_perpass.make_perpass(fwd="nope")
