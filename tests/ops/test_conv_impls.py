"""Every conv impl against ``lax.conv_general_dilated``: forward, grads, jit/eager, vmap, bfloat16.

Reference: the input padded with ``jnp.pad`` (pads from ``lax.padtype_to_pads`` for 'SAME'), then
a 'VALID' ``lax.conv_general_dilated`` (this form avoids the jaxlib 0.10.2 grad crash).
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
from cnnlab.ops.conv_registry import impls_supporting, supports

IMPLS = ("lax", "fenced", "im2col", "shift", "fft", "matmul", "matmul_sparse", "rows", "cols",
         "winograd", "winograd_f4")
WINOGRAD = ("winograd", "winograd_f4")
TOL = {"winograd_f4": 2e-4, "fft": 5e-5}  # F(4x4,3x3) transforms amplify rounding; fft: log L


def reference_pads(padding, in_spatial, window, stride, dilation):
  eff = [d * (k - 1) + 1 for k, d in zip(window, dilation)]
  if padding == "SAME":
    return lax.padtype_to_pads(in_spatial, eff, stride, "SAME")
  if padding == "VALID":
    return [(0, 0)] * len(window)
  if padding == "FULL":
    return [(e - 1, e - 1) for e in eff]
  if padding == "CAUSAL":
    return [(eff[0] - 1, 0)]
  if isinstance(padding, int):
    return [(padding, padding)] * len(window)
  return list(padding)


def reference_conv(x, w, *, stride, padding, dilation, groups):
  nd = x.ndim - 2
  pads = reference_pads(padding, x.shape[1:-1], w.shape[:-2], stride, dilation)
  sp = "DHW"[-nd:]
  return lax.conv_general_dilated(
      jnp.pad(x, [(0, 0), *pads, (0, 0)]), w, stride, "VALID", rhs_dilation=dilation,
      dimension_numbers=(f"N{sp}C", f"{sp}IO", f"N{sp}C"), feature_group_count=groups)


@st.composite
def conv_cases(draw, winograd=False):
  """Keyword arguments of one valid conv plus shapes; tiny sizes."""
  nd = draw(st.integers(2, 3) if winograd else st.integers(1, 3))
  groups = draw(st.sampled_from((1, 2, 3)))
  c_in, c_out = (groups * draw(st.integers(1, 2)) for _ in range(2))
  ints = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(nd))
  window = (3,) * nd if winograd else ints(1, 3)
  stride = (1,) * nd if winograd else ints(1, 2 if nd == 3 else 3)
  dilation = (1,) * nd if winograd else ints(1, 2)
  pad_choices = [st.sampled_from(("VALID", "SAME", "FULL") + (("CAUSAL",) if nd == 1 else ())),
                 st.integers(0, 2),
                 st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * nd)]
  padding = draw(st.one_of(pad_choices))
  eff = [d * (k - 1) + 1 for k, d in zip(window, dilation)]
  spatial = tuple(e + draw(st.integers(0, 4 if nd == 3 else 6)) for e in eff)
  x_shape = (draw(st.integers(1, 2)), *spatial, c_in)
  w_shape = (*window, c_in // groups, c_out)
  kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
  return x_shape, w_shape, kw, draw(st.integers(0, 2**31 - 1))


def arrays(seed, *shapes, dtype=np.float32):
  rng = np.random.default_rng(seed)
  return [jnp.asarray(rng.standard_normal(s), dtype) for s in shapes]


def forward_and_grads(fn, x, w, ct):
  y, vjp = jax.vjp(fn, x, w)
  return (y, *vjp(ct))


def assert_close(actual, desired, tol):
  scale = max(1.0, float(jnp.abs(desired).max()))
  np.testing.assert_allclose(np.asarray(actual, np.float32), np.asarray(desired, np.float32),
                             rtol=tol, atol=tol * scale)


@functools.partial(jax.jit, static_argnames=("impl", "kw"))
def impl_and_reference(x, w, ct, *, impl, kw):
  """Forward and both grads of ``impl`` and of the reference, in one compile."""
  kw = dict(kw)
  return (forward_and_grads(functools.partial(ops.conv, impl=impl, **kw), x, w, ct),
          forward_and_grads(functools.partial(reference_conv, **kw), x, w, ct))


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_forward_and_grads_match_lax(impl, data):
  x_shape, w_shape, kw, seed = data.draw(conv_cases(winograd=impl in WINOGRAD))
  assert supports(impl, x_shape, w_shape, **kw)
  out_shape = jax.eval_shape(functools.partial(reference_conv, **kw),
                             jax.ShapeDtypeStruct(x_shape, jnp.float32),
                             jax.ShapeDtypeStruct(w_shape, jnp.float32)).shape
  x, w, ct = arrays(seed, x_shape, w_shape, out_shape)
  got, want = impl_and_reference(x, w, ct, impl=impl, kw=tuple(kw.items()))
  for g, r in zip(got, want):
    assert g.shape == r.shape
    assert_close(g, r, TOL.get(impl, 2e-5))


# One case per impl family that exercises stride, dilation, groups and asymmetric padding.
FIXED = {
    "generic": ((2, 9, 8, 4), (3, 2, 2, 6), dict(stride=(2, 1), padding=((1, 2), (0, 1)),
                                                 dilation=(1, 2), groups=2)),
    "winograd": ((2, 7, 6, 4), (3, 3, 2, 6), dict(stride=(1, 1), padding="SAME",
                                                  dilation=(1, 1), groups=2)),
}


def fixed_case(impl):
  return FIXED["winograd" if impl in WINOGRAD else "generic"]


@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("impl", IMPLS)
def test_eager_and_jit(impl, use_jit):
  """Forward and grads, op by op and under ``jax.jit``."""
  x_shape, w_shape, kw = fixed_case(impl)
  x, w = arrays(1, x_shape, w_shape)
  ct, = arrays(4, jax.eval_shape(functools.partial(reference_conv, **kw), x, w).shape)
  fn = functools.partial(ops.conv, impl=impl, **kw)
  got = (jax.jit(forward_and_grads, static_argnums=0) if use_jit else forward_and_grads)(
      fn, x, w, ct)
  want = forward_and_grads(functools.partial(reference_conv, **kw), x, w, ct)
  for g, r in zip(got, want):
    assert_close(g, r, TOL.get(impl, 2e-5))


@pytest.mark.parametrize("impl", IMPLS)
def test_vmap_over_inputs_and_kernels(impl):
  x_shape, w_shape, kw = fixed_case(impl)
  x, w = arrays(2, (3, *x_shape), (3, *w_shape))
  y = jax.vmap(functools.partial(ops.conv, impl=impl, **kw))(x, w)
  for b in range(3):
    assert_close(y[b], reference_conv(x[b], w[b], **kw), TOL.get(impl, 2e-5))


@pytest.mark.parametrize("impl", IMPLS)
def test_bfloat16_close_to_float32_lax(impl):
  x_shape, w_shape, kw = fixed_case(impl)
  x, w = arrays(3, x_shape, w_shape, dtype=jnp.bfloat16)
  y = jax.jit(functools.partial(ops.conv, impl=impl, **kw))(x, w)
  assert y.dtype == jnp.bfloat16
  # Same bfloat16-rounded inputs in float32: only the output rounding and accumulation differ.
  assert_close(y, reference_conv(x.astype(jnp.float32), w.astype(jnp.float32), **kw), 2e-2)


def test_capabilities():
  assert set(impls_supporting((1, 8, 8, 2), (3, 3, 2, 4), padding="SAME")) >= set(IMPLS)
  strided = impls_supporting((1, 8, 8, 2), (3, 3, 2, 4), stride=2)
  assert not set(WINOGRAD) & set(strided)
  assert {"lax", "im2col", "shift", "fft", "matmul", "matmul_sparse", "rows", "cols"} <= set(
      strided)
  assert not supports("winograd", (1, 8, 2), (3, 2, 4))        # 1D
  assert not supports("winograd_f4", (1, 8, 8, 2), (5, 5, 2, 4))  # 5x5
  assert not supports("matmul", (64, 32, 32, 64), (3, 3, 64, 64), padding="SAME")
  assert supports("matmul", (64, 28, 28, 1), (5, 5, 1, 6))      # LeNet conv1
