"""Pooling vs torch.nn.functional (forward and backward) and a brute-force numpy max pool."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings, strategies as st

from cnnlab import ops

TORCH_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
TORCH_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
TORCH_ADAPTIVE = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
TORCH_UNPOOL = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}
JIT = pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])


def to_torch(x):  # (N, *spatial, C) -> (N, C, *spatial)
  return torch.tensor(np.asarray(x)).movedim(-1, 1)


def from_torch(t):
  return t.detach().movedim(1, -1).numpy()


def fwd_bwd_jax(fn, x, g, jit=True):
  """``(fn(x), vjp of fn at x applied to g)``, as one jitted computation by default."""
  def both(x, g):
    y, vjp = jax.vjp(fn, x)
    return y, vjp(g)[0]
  y, dx = (jax.jit(both) if jit else both)(jnp.asarray(x), jnp.asarray(g))
  return np.asarray(y), np.asarray(dx)


def fwd_bwd_torch(fn, x, g):
  xt = to_torch(x).requires_grad_()
  yt = fn(xt)
  yt.backward(to_torch(g))
  return from_torch(yt), from_torch(xt.grad)


@st.composite
def pool_case(draw, dilation=True):
  """A valid torch pooling geometry: sizes, window, stride, padding <= window/2, dilation,
  ceil_mode, and a seed. Max pool (``dilation=True``) allows inputs smaller than the window
  when padded; avg pool keeps ``i >= window`` (torch's avg_pool3d insists)."""
  nd = draw(st.integers(1, 3))
  dims = []
  for _ in range(nd):
    k = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2)) if dilation else 1
    s = draw(st.integers(1, 3))
    eff = d * (k - 1) + 1
    p = draw(st.integers(0, k // 2))
    # i >= d: no window made only of padding (torch's backward crashes on those).
    lo = max(eff - 2 * p, d) if dilation else k
    i = draw(st.integers(lo, lo + 5))
    dims.append((i, k, s, p, d))
  i, k, s, p, d = map(tuple, zip(*dims))
  return nd, i, k, s, p, d, draw(st.booleans()), draw(st.integers(0, 2**16))


def _data(seed, shape, ties=False):
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 3, shape) if ties else rng.standard_normal(shape)
  return x.astype(np.float32)


@settings(max_examples=8, deadline=None)
@given(pool_case(), st.booleans())
@example((3, (3, 2, 4), (2, 3, 2), (2, 1, 3), (1, 1, 0), (2, 1, 2), True, 1), True)
@example((1, (5,), (3,), (2,), (1,), (2,), True, 2), False)
def test_max_pool_matches_torch(case, ties):
  nd, i, k, s, p, d, ceil, seed = case
  x = _data(seed, (2, *i, 3), ties)
  ours = lambda x: ops.max_pool(x, k, s, p, ceil_mode=ceil, dilation=d)
  y_t = TORCH_MAX[nd](to_torch(x), k, s, p, dilation=d, ceil_mode=ceil)
  g = _data(seed + 1, from_torch(y_t).shape)
  y, dx = fwd_bwd_jax(ours, x, g)
  y_ref, dx_ref = fwd_bwd_torch(
      lambda t: TORCH_MAX[nd](t, k, s, p, dilation=d, ceil_mode=ceil), x, g)
  np.testing.assert_array_equal(y, y_ref)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=1e-6)


@settings(max_examples=8, deadline=None)
@given(pool_case(dilation=False), st.booleans())
@example((3, (3, 4, 2), (2, 3, 2), (2, 2, 1), (1, 1, 1), (1, 1, 1), True, 1), False)
@example((2, (5, 6), (3, 2), (2, 2), (1, 1), (1, 1), True, 2), True)
def test_avg_pool_matches_torch(case, count_include_pad):
  nd, i, k, s, p, _, ceil, seed = case
  x = _data(seed, (2, *i, 3))
  kw = dict(ceil_mode=ceil, count_include_pad=count_include_pad)
  y_t = TORCH_AVG[nd](to_torch(x), k, s, p, **kw)
  g = _data(seed + 1, from_torch(y_t).shape)
  y, dx = fwd_bwd_jax(lambda x: ops.avg_pool(x, k, s, p, **kw), x, g)
  y_ref, dx_ref = fwd_bwd_torch(lambda t: TORCH_AVG[nd](t, k, s, p, **kw), x, g)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-6)


def brute_max_pool_2d(x, k, s, p):
  """Loops over windows in row-major order; the first maximum wins. Returns y, idx, dy/dx."""
  n, h, w, c = x.shape
  oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
  y = np.zeros((n, oh, ow, c), x.dtype)
  idx = np.zeros((n, oh, ow, c), np.int64)
  grad = np.zeros_like(x)
  for b, oi, oj, ch in itertools.product(range(n), range(oh), range(ow), range(c)):
    best = None
    for di, dj in itertools.product(range(k), range(k)):
      r, q = oi * s - p + di, oj * s - p + dj
      inside = 0 <= r < h and 0 <= q < w
      if inside and (best is None or x[b, r, q, ch] > x[b, best[0], best[1], ch]):
        best = (r, q)
    y[b, oi, oj, ch] = x[b, best[0], best[1], ch]
    idx[b, oi, oj, ch] = best[0] * w + best[1]
    grad[b, best[0], best[1], ch] += 1.0
  return y, idx, grad


@JIT
def test_max_pool_ties_go_to_first_in_scan_order(jit):
  # Values in {0, 1, 2}: most windows hold tied maxima. The gradient of sum(y) counts, at each
  # input, the windows whose first maximum (row-major scan) it is.
  x = _data(3, (2, 7, 6, 2), ties=True)
  y_ref, idx_ref, grad_ref = brute_max_pool_2d(x, 3, 2, 1)
  f = lambda x: ops.max_pool_with_indices(x, 3, 2, 1)
  f = jax.jit(f) if jit else f
  y, idx = f(jnp.asarray(x))
  grad = jax.grad(lambda x: ops.max_pool(x, 3, 2, 1).sum())(jnp.asarray(x))
  np.testing.assert_array_equal(y, y_ref)
  np.testing.assert_array_equal(idx, idx_ref)
  np.testing.assert_array_equal(grad, grad_ref)
  _, idx_t = F.max_pool2d(to_torch(x), 3, 2, 1, return_indices=True)
  np.testing.assert_array_equal(idx, from_torch(idx_t))
  # The tie rule in words, on one window: [1, 2, 2] -> index 1.
  _, i1 = ops.max_pool_with_indices(jnp.array([1.0, 2.0, 2.0]).reshape(1, 3, 1), 3)
  assert int(i1.squeeze()) == 1


def test_max_pool_padding_never_wins_and_nan_propagates():
  x = jnp.full((1, 3, 1), -jnp.inf)
  y, idx = ops.max_pool_with_indices(x, 3, 1, 1)
  np.testing.assert_array_equal(idx.ravel(), [0, 0, 1])  # real -inf beats the -inf padding
  # Window 2, dilation 2, padding 1 on one element: the window sees positions -1 and 1 only.
  f = lambda x: ops.max_pool(x, 2, 1, 1, dilation=2)
  x1 = jnp.ones((1, 1, 1))
  assert f(x1).ravel().tolist() == [-np.inf]
  assert jax.grad(lambda x: jnp.where(jnp.isinf(f(x)), 0.0, f(x)).sum())(x1).ravel().tolist() == [0]
  y = ops.max_pool(jnp.array([1.0, jnp.nan, 3.0, 0.0]).reshape(1, 4, 1), 2)
  assert np.isnan(y[0, 0, 0]) and y[0, 1, 0] == 3.0


@settings(max_examples=8, deadline=None)
@given(pool_case())
@example((2, (5, 6), (3, 2), (2, 2), (1, 1), (1, 1), True, 4))
@example((3, (3, 4, 4), (2, 3, 2), (2, 1, 2), (1, 1, 0), (1, 2, 1), True, 3))
def test_indices_and_unpool_match_torch(case):
  nd, i, k, s, p, d, ceil, seed = case
  x = _data(seed, (2, *i, 3), ties=bool(seed % 3 == 0))
  y_t, idx_t = TORCH_MAX[nd](to_torch(x), k, s, p, dilation=d, ceil_mode=ceil,
                             return_indices=True)
  # Unpool into the input's size where torch allows it (within stride of its default size),
  # else the default; torch's max_unpool has no dilation and raises on indices beyond its output.
  default = tuple((o - 1) * s_ - 2 * p_ + k_ for o, s_, p_, k_ in zip(y_t.shape[2:], s, p, k))
  size = i if all(ds - ss < ii < ds + ss for ii, ds, ss in zip(i, default, s)) else None
  unpool = d == (1,) * nd and (size is not None or all(ii <= ds for ii, ds in zip(i, default)))
  g = _data(seed + 2, (2, *(size or default), 3))

  @jax.jit
  def run(x, g):
    y, idx = ops.max_pool_with_indices(x, k, s, p, ceil_mode=ceil, dilation=d)
    if not unpool:
      return y, idx, None, None
    u, vjp = jax.vjp(lambda v: ops.max_unpool(v, idx, k, s, p, output_size=size), y)
    return y, idx, u, vjp(g)[0]

  y, idx, u, dy = run(jnp.asarray(x), jnp.asarray(g))
  np.testing.assert_array_equal(y, from_torch(y_t))
  np.testing.assert_array_equal(idx, from_torch(idx_t))
  if unpool:
    yt = y_t.clone().requires_grad_()
    u_t = TORCH_UNPOOL[nd](yt, idx_t, k, s, p, output_size=size)
    u_t.backward(to_torch(g))
    np.testing.assert_array_equal(u, from_torch(u_t))
    np.testing.assert_allclose(dy, from_torch(yt.grad), rtol=1e-6)


@settings(max_examples=6, deadline=None)
@given(st.integers(1, 3), st.data())
def test_adaptive_and_global_pools_match_torch(nd, data):
  i = tuple(data.draw(st.integers(1, 7)) for _ in range(nd))
  o = tuple(data.draw(st.integers(1, 5)) for _ in range(nd))
  x = _data(data.draw(st.integers(0, 999)), (2, *i, 3))
  g = _data(7, (2, *o, 3))
  y, dx = fwd_bwd_jax(lambda x: ops.adaptive_avg_pool(x, o), x, g)
  y_ref, dx_ref = fwd_bwd_torch(lambda t: TORCH_ADAPTIVE[nd](t, o), x, g)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-6)
  xt = to_torch(x)
  np.testing.assert_allclose(ops.global_avg_pool(jnp.asarray(x)),
                             TORCH_ADAPTIVE[nd](xt, 1).flatten(1).numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(ops.global_max_pool(jnp.asarray(x), keepdims=True),
                                from_torch(xt.amax(dim=tuple(range(2, nd + 2)), keepdim=True)))


X2 = jnp.zeros((1, 5, 5, 2))
BAD = [
    ("window", lambda: ops.max_pool(X2, 0)),
    ("window", lambda: ops.max_pool(X2, (2, 2, 2))),
    ("stride", lambda: ops.avg_pool(X2, 2, (1,))),
    ("dilation", lambda: ops.max_pool(X2, 2, dilation=0)),
    ("padding", lambda: ops.max_pool(X2, 2, padding=-1)),
    ("padding", lambda: ops.max_pool(X2, 3, padding=2)),  # more than half the window
    ("padding", lambda: ops.max_pool(X2, 3, padding=2, dilation=2)),  # torch ignores dilation
    ("padding", lambda: ops.avg_pool(X2, 2, padding=(1, 1, 1))),
    ("larger than the padded input", lambda: ops.max_pool(X2, 6)),
    ("x must be", lambda: ops.max_pool(jnp.zeros((5, 5)), 2)),
    ("x must be", lambda: ops.global_avg_pool(jnp.zeros((5, 5)))),
    ("output_size", lambda: ops.adaptive_avg_pool(X2, 0)),
    ("indices", lambda: ops.max_unpool(X2, jnp.zeros((1, 5, 5, 2)), 2)),
    ("indices", lambda: ops.max_unpool(X2, jnp.zeros((1, 4, 5, 2), jnp.int32), 2)),
    ("output_size", lambda: ops.max_unpool(X2, jnp.zeros((1, 5, 5, 2), jnp.int32), 2,
                                           output_size=(5, 10))),
]


@pytest.mark.parametrize("match,call", BAD, ids=[f"{m}-{n}" for n, (m, _) in enumerate(BAD)])
def test_invalid_arguments_raise_value_error(match, call):
  with pytest.raises(ValueError, match=match):
    call()


@pytest.mark.parametrize("i,k,s,p", [(2, 3, 2, 0), (1, 3, 2, 1), (4, 5, 3, 0)])
def test_ceil_mode_window_larger_than_input_matches_torch(i, k, s, p):
  """torch's ceil mode keeps a window hanging past a short input (SqueezeNet at 17x17 needs it)."""
  x = np.random.default_rng(0).random((1, i, i, 2)).astype(np.float32)
  xt = torch.from_numpy(x).permute(0, 3, 1, 2)
  for ours, theirs in ((ops.max_pool, torch.nn.functional.max_pool2d),
                       (ops.avg_pool, torch.nn.functional.avg_pool2d)):
    want = theirs(xt, k, s, p, ceil_mode=True).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours(jnp.asarray(x), k, s, p, ceil_mode=True), want, atol=1e-6)
