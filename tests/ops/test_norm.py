"""batch/layer/instance/group norm vs torch.nn.functional (forward, backward, running stats)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings, strategies as st

from cnnlab import ops
from cnnlab.ops import norm as norm_ops

TOL = dict(rtol=1e-4, atol=1e-4)  # atol: single-element groups normalise float noise


def to_torch(x):  # (N, *spatial, C) -> (N, C, *spatial)
  return torch.tensor(np.asarray(x)).movedim(-1, 1)


def from_torch(t):
  return t.detach().movedim(1, -1).numpy()


@st.composite
def norm_case(draw):
  """Channels-last shape of rank 3-5 (1-3 spatial dims), channels divisible by ``groups``."""
  groups = draw(st.sampled_from([1, 2, 3]))
  spatial = tuple(draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 3))))
  shape = (draw(st.integers(2, 3)), *spatial, groups * draw(st.integers(1, 2)))
  return shape, groups, draw(st.integers(0, 2**16))


def check_torch(ours, theirs, shape, seed, params_like, tol=TOL):
  """Forward and backward (w.r.t. x, scale, bias) of ``ours`` (channels-last, jitted) against
  ``theirs`` (torch, channels-first), which runs in float64 on the same float32 values: torch's
  own float32 rounding is not charged to ours (a layer norm over 2 close channels: torch float32
  1e-4 off the float64 gradient, ours 3e-6)."""
  rng = np.random.default_rng(seed)
  x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
  w, b = (rng.standard_normal(params_like).astype(np.float32) for _ in range(2))
  g = rng.standard_normal(shape).astype(np.float32)

  @jax.jit
  def run(x, w, b, g):
    y, vjp = jax.vjp(ours, x, w, b)
    return y, vjp(g)

  y, (dx, dw, db) = run(x, w, b, g)
  xt, wt, bt = (torch.tensor(a, dtype=torch.float64).requires_grad_() for a in (x, w, b))
  # theirs gets the channels-last tensors and does its own layout handling.
  yt = theirs(xt, wt, bt)
  yt.backward(torch.tensor(g, dtype=torch.float64))
  for ours_a, ref in ((y, yt), (dx, xt.grad), (dw, wt.grad), (db, bt.grad)):
    np.testing.assert_allclose(np.asarray(ours_a), ref.detach().numpy(), **tol)


def _cf(fn):
  """A torch fn on channels-first tensors as a fn on channels-last ones."""
  return lambda x, w, b: fn(x.movedim(-1, 1), w, b).movedim(1, -1)


@settings(max_examples=5, deadline=None)
@given(norm_case())
@example(case=((3, 1, 3), 3, 3))  # found by hypothesis: torch's dx 1.2e-4 where ours is exactly 0
def test_group_norm_matches_torch(case):
  shape, groups, seed = case
  # A single-element group normalises float noise, which 1/sqrt(eps) ~ 316 amplifies (the exact
  # output is the bias and the exact input gradient 0): torch's noise reaches ~1e-4 there.
  one = np.prod(shape[1:-1]) * shape[-1] // groups == 1
  check_torch(lambda x, w, b: ops.group_norm(x, groups, w, b),
              _cf(lambda x, w, b: F.group_norm(x, groups, w, b, eps=1e-5)), shape, seed, shape[-1],
              tol=dict(rtol=1e-4, atol=1e-3) if one else TOL)


@settings(max_examples=5, deadline=None)
@given(norm_case())
def test_instance_norm_matches_torch(case):
  shape, _, seed = case
  if np.prod(shape[1:-1]) == 1:
    shape = shape[:1] + (2,) + shape[2:]  # torch needs more than one value per channel
  check_torch(lambda x, w, b: ops.instance_norm(x, w, b),
              _cf(lambda x, w, b: F.instance_norm(x, weight=w, bias=b, eps=1e-5)), shape, seed,
              shape[-1])


@settings(max_examples=5, deadline=None)
@given(norm_case(), st.booleans())
@example(((3, 2, 2, 2), 1, 1), False)  # 2 channels, 0.14 apart: torch float32's gradient is off
def test_layer_norm_matches_torch(case, all_axes):
  # Over the channels (torch: normalized_shape=(C,) on the channels-last tensor) or over
  # (*spatial, C) (normalized_shape = x.shape[1:]).
  shape, _, seed = case
  axes = tuple(range(1, len(shape))) if all_axes else -1
  nshape = shape[1:] if all_axes else shape[-1:]
  check_torch(lambda x, w, b: ops.layer_norm(x, w, b, axes=axes),
              lambda x, w, b: F.layer_norm(x, nshape, w, b, eps=1e-5), shape, seed, nshape)


@settings(max_examples=5, deadline=None)
@given(norm_case())
def test_batch_norm_train_and_eval_match_torch(case):
  shape, _, seed = case
  c = shape[-1]
  rm = np.linspace(-1, 1, c).astype(np.float32)
  rv = np.linspace(0.5, 2, c).astype(np.float32)
  for train in (True, False):
    rm_t, rv_t = torch.tensor(rm, dtype=torch.float64), torch.tensor(rv, dtype=torch.float64)
    check_torch(lambda x, w, b: ops.batch_norm(x, rm, rv, w, b, train=train,
                                               convention="torch")[0],
                _cf(lambda x, w, b: F.batch_norm(x, rm_t, rv_t, w, b, training=train,
                                                 momentum=0.1, eps=1e-5)), shape, seed, c)
    new_m, new_v = ops.batch_norm(jnp.asarray(np.zeros(shape, np.float32)), rm, rv, train=False)[1]
    np.testing.assert_array_equal(new_m, rm)  # eval leaves the running stats alone


@pytest.mark.parametrize("nd,jit", [(1, True), (2, False), (2, True), (3, True)])
def test_batch_norm_torch_running_stats_over_steps(nd, jit):
  """convention='torch' keeps the running stats of torch.nn.BatchNorm{1,2,3}d (momentum 0.1,
  unbiased running variance) over several training steps, then evaluates like it."""
  c = 3
  bn_t = {1: torch.nn.BatchNorm1d, 2: torch.nn.BatchNorm2d, 3: torch.nn.BatchNorm3d}[nd](c)
  with torch.no_grad():
    bn_t.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
    bn_t.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
  w, b = bn_t.weight.detach().numpy(), bn_t.bias.detach().numpy()
  step = lambda x, m, v, train: ops.batch_norm(x, m, v, w, b, train=train, convention="torch")
  step = jax.jit(step, static_argnums=3) if jit else step
  m, v = jnp.zeros(c), jnp.ones(c)
  rng = np.random.default_rng(nd)
  for _ in range(4):
    x = (rng.standard_normal((4, *(3,) * nd, c)) * 3 + 2).astype(np.float32)
    y, (m, v) = step(x, m, v, True)
    np.testing.assert_allclose(y, from_torch(bn_t.train()(to_torch(x))), **TOL)
    np.testing.assert_allclose(m, bn_t.running_mean.numpy(), **TOL)
    np.testing.assert_allclose(v, bn_t.running_var.numpy(), **TOL)
  y, _ = step(x, m, v, False)
  np.testing.assert_allclose(y, from_torch(bn_t.eval()(to_torch(x))), **TOL)


def test_batch_norm_flax_convention_matches_flax_running_stats():
  import flax.linen as nn  # the reference for the Flax convention
  x_steps = np.random.default_rng(0).standard_normal((3, 8, 5, 5, 4)).astype(np.float32) * 2 + 1
  bn = nn.BatchNorm(use_running_average=False, momentum=0.9)
  variables = bn.init(jax.random.key(0), x_steps[0])
  m, v = jnp.zeros(4), jnp.ones(4)
  for x in x_steps:
    y_ref, upd = bn.apply(variables, x, mutable=["batch_stats"])
    variables = {**variables, **upd}
    y, (m, v) = ops.batch_norm(x, m, v, train=True, momentum=0.9, fast_variance=True)
    np.testing.assert_allclose(y, y_ref, **TOL)
  np.testing.assert_allclose(m, variables["batch_stats"]["mean"], **TOL)
  np.testing.assert_allclose(v, variables["batch_stats"]["var"], **TOL)


def test_batch_norm_axis_name_averages_over_the_mapped_axis():
  # vmap over 4 "devices" of 2 examples each with axis_name: same as one batch of 8.
  x = np.random.default_rng(1).standard_normal((8, 3, 2)).astype(np.float32)
  whole, (m, v) = ops.batch_norm(x, jnp.zeros(2), jnp.ones(2), train=True, convention="torch")
  per = jax.jit(jax.vmap(lambda xs: ops.batch_norm(xs, jnp.zeros(2), jnp.ones(2), train=True,
                                           convention="torch", axis_name="d"), axis_name="d"))
  y, (ms, vs) = per(x.reshape(4, 2, 3, 2))
  np.testing.assert_allclose(y.reshape(x.shape), whole, **TOL)
  np.testing.assert_allclose(ms[0], m, **TOL)
  np.testing.assert_allclose(vs[0], v, **TOL)


X = jnp.zeros((2, 3, 4))
BAD = [
    ("convention", lambda: ops.batch_norm(X, jnp.zeros(4), jnp.ones(4), train=True,
                                          convention="keras")),
    ("momentum", lambda: ops.batch_norm(X, jnp.zeros(4), jnp.ones(4), train=True, momentum=1.5)),
    ("running_mean", lambda: ops.batch_norm(X, jnp.zeros(3), jnp.ones(4), train=True)),
    ("scale", lambda: ops.batch_norm(X, jnp.zeros(4), jnp.ones(4), jnp.ones(3), train=True)),
    ("axis", lambda: ops.batch_norm(X, jnp.zeros(4), jnp.ones(4), train=True, axis=3)),
    ("axis", lambda: ops.batch_norm(X, jnp.zeros((2, 3, 4)), jnp.ones((2, 3, 4)), train=True,
                                    axis=(0, 1, 2))),
    ("num_groups", lambda: ops.group_norm(X, 3)),
    ("num_groups", lambda: ops.group_norm(X, 0)),
    ("bias", lambda: ops.group_norm(X, 2, None, jnp.ones(2))),
    ("axes", lambda: ops.layer_norm(X, axes=(1, 5))),
    ("scale", lambda: ops.layer_norm(X, jnp.ones(3), axes=(1, 2))),
    ("instance_norm", lambda: ops.instance_norm(jnp.zeros((2, 4)))),
    ("eps", lambda: ops.layer_norm(X, eps=0.0)),
]


@pytest.mark.parametrize("match,call", BAD, ids=[f"{m}-{n}" for n, (m, _) in enumerate(BAD)])
def test_invalid_arguments_raise_value_error(match, call):
  with pytest.raises(ValueError, match=match):
    call()


def test_fast_and_two_pass_variance_agree():
  x = jnp.asarray(np.random.default_rng(2).standard_normal((4, 5, 3)) + 3.0, jnp.float32)
  m1, v1 = norm_ops.moments(x, (0, 1), fast_variance=True)
  np.testing.assert_allclose(v1.ravel(), np.var(np.asarray(x), axis=(0, 1)), rtol=1e-4)
  np.testing.assert_allclose(m1.ravel(), np.mean(np.asarray(x), axis=(0, 1)), rtol=1e-5)
