"""The conv as a matrix (vs lax and lax's Jacobian) and the FFT identity (vs numpy brute force)."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from cnnlab import ops
from cnnlab.ops.conv_fft import circular_conv
from cnnlab.ops.conv_matmul import conv_matrix


def lax_conv(x, w, stride, pads, dilation, groups):
  sp = "DHW"[-(x.ndim - 2):]
  return lax.conv_general_dilated(x, w, stride, pads, rhs_dilation=dilation,
                                  dimension_numbers=(f"N{sp}C", f"{sp}IO", f"N{sp}C"),
                                  feature_group_count=groups)


@st.composite
def matrix_cases(draw):
  nd = draw(st.integers(1, 3))
  groups = draw(st.sampled_from((1, 2)))
  c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
  ints = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(nd))
  window, stride, dilation = ints(1, 3), ints(1, 2), ints(1, 2)
  pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
  spatial = tuple(d * (k - 1) + 1 + draw(st.integers(0, 3)) for k, d in zip(window, dilation))
  return (2, *spatial, c_in), (*window, c_in // groups, c_out), stride, pads, dilation, groups


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def matrices_and_references(x, w, stride, pads, dilation, groups):
  """Dense and densified-BCOO ``conv_matrix``, lax's conv and lax's Jacobian w.r.t. ``x[0]``."""
  kw = dict(stride=stride, padding=pads, dilation=dilation, groups=groups)
  t = conv_matrix(w, x.shape[1:-1], **kw)
  t_sparse = conv_matrix(w, x.shape[1:-1], sparse_format=True, **kw).todense()
  flat_conv = lambda v: lax_conv(v.reshape(1, *x.shape[1:]), w, stride, pads, dilation,
                                 groups).ravel()
  return t, t_sparse, lax_conv(x, w, stride, pads, dilation, groups), jax.jacfwd(flat_conv)(
      x[0].ravel())


@settings(max_examples=8, deadline=None)
@given(case=matrix_cases(), seed=st.integers(0, 2**31 - 1))
def test_conv_matrix_times_flat_input_is_the_conv(case, seed):
  x_shape, w_shape, stride, pads, dilation, groups = case
  rng = np.random.default_rng(seed)
  x, w = (jnp.asarray(rng.standard_normal(s), jnp.float32) for s in (x_shape, w_shape))
  t, t_sparse, y, jac = matrices_and_references(x, w, stride, pads, dilation, groups)
  np.testing.assert_allclose(x.reshape(2, -1) @ t.T, y.reshape(2, -1), rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(t_sparse, t)
  # The conv is linear in x, so its Jacobian w.r.t. the flat input is exactly the matrix.
  np.testing.assert_allclose(jac, t, rtol=1e-6, atol=1e-6)


def test_conv_matrix_1d_is_toeplitz():
  """One channel, stride 1: ``T[o, i] = w[i - o + lo]`` (zero outside the kernel)."""
  w = jnp.arange(1.0, 4.0).reshape(3, 1, 1)
  t = np.asarray(conv_matrix(w, (6,), padding=((1, 1),)))
  want = np.zeros((6, 6))
  for o, i in itertools.product(range(6), range(6)):
    if 0 <= i - o + 1 < 3:
      want[o, i] = i - o + 2
  np.testing.assert_array_equal(t, want)


def test_conv_matrix_is_differentiable_in_w():
  w = jnp.ones((3, 3, 1, 2))
  x = jnp.ones((1, 5, 5, 1))
  grad = jax.grad(lambda w: (x.reshape(1, -1) @ conv_matrix(w, (5, 5)).T).sum())(w)
  np.testing.assert_allclose(grad, jax.grad(lambda w: lax_conv(x, w, (1, 1), "VALID", (1, 1),
                                                               1).sum())(w))


def brute_circular_conv(x, w, shape, groups):
  """``y[n, p, o] = sum_{q, c} x[n, q, c] w[(p - q) mod shape, c, o]`` by explicit loops."""
  nd = len(shape)
  cg, c_out = w.shape[-2:]
  og = c_out // groups
  y = np.zeros((x.shape[0], *shape, c_out))
  for p in np.ndindex(*shape):
    for q in np.ndindex(*x.shape[1:-1]):
      k = tuple((pi - qi) % s for pi, qi, s in zip(p, q, shape))
      if all(ki < wi for ki, wi in zip(k, w.shape[:nd])):
        for g in range(groups):
          y[(slice(None), *p, slice(g * og, (g + 1) * og))] += (
              x[(slice(None), *q, slice(g * cg, (g + 1) * cg))] @ w[(*k, slice(None),
                                                                     slice(g * og, (g + 1) * og))])
  return y


@pytest.mark.parametrize("shape,x_sp,w_sp,groups", [
    ((8,), (8,), (3,), 1), ((7,), (5,), (7,), 2), ((5, 6), (5, 6), (2, 3), 1),
    ((4, 5), (3, 5), (4, 2), 2), ((3, 4, 3), (3, 4, 3), (2, 2, 3), 1)])
def test_fft_circular_conv_identity_matches_brute_force(shape, x_sp, w_sp, groups):
  """``irfftn(rfftn(x) * rfftn(w))`` (``F(w*x) = F(w)F(x)``) equals the circular convolution."""
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, *x_sp, 2 * groups))
  w = rng.standard_normal((*w_sp, 2, 3 * groups))
  got = circular_conv(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), shape, groups)
  np.testing.assert_allclose(got, brute_circular_conv(x, w, shape, groups), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("x_shape,w_shape,kw", [
    ((2, 64, 3), (15, 3, 4), dict(padding="SAME")),
    ((2, 64, 3), (15, 3, 4), dict(stride=3, dilation=2, padding=((5, 2),))),
    ((1, 20, 18, 2), (7, 5, 2, 4), dict(stride=(2, 3), dilation=(1, 2), padding="FULL"))])
def test_fft_large_kernels_match_lax(x_shape, w_shape, kw):
  rng = np.random.default_rng(1)
  x, w = (jnp.asarray(rng.standard_normal(s), jnp.float32) for s in (x_shape, w_shape))
  want = ops.conv(x, w, impl="lax", **kw)
  np.testing.assert_allclose(ops.conv(x, w, impl="fft", **kw), want, rtol=1e-4, atol=1e-4)
