"""cnnlab.nn norm modules vs flax.linen's (variable trees, outputs, batch_stats), pooling modules
vs torch."""

import functools

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab import nn as cnn

X = np.random.default_rng(0).standard_normal((4, 5, 3, 6)).astype(np.float32) * 2 + 0.5
TOL = dict(rtol=1e-5, atol=1e-5)

# (ours, flax's, constructor kwargs): the same kwargs go to both.
CASES = [
    (cnn.BatchNorm, fnn.BatchNorm, dict(use_running_average=False)),
    (cnn.BatchNorm, fnn.BatchNorm, dict(use_running_average=False, momentum=0.9, epsilon=1e-3,
                                        use_fast_variance=False)),
    (cnn.BatchNorm, fnn.BatchNorm, dict(use_running_average=False, axis=(2, 3), use_bias=False)),
    (cnn.BatchNorm, fnn.BatchNorm, dict(use_running_average=False, use_scale=False,
                                        param_dtype=jnp.bfloat16)),
    (cnn.LayerNorm, fnn.LayerNorm, {}),
    (cnn.LayerNorm, fnn.LayerNorm, dict(reduction_axes=(1, 2, 3), feature_axes=-1)),
    (cnn.LayerNorm, fnn.LayerNorm, dict(reduction_axes=(2, 3), feature_axes=(2, 3),
                                        use_fast_variance=False)),
    (cnn.GroupNorm, fnn.GroupNorm, dict(num_groups=3)),
    (cnn.GroupNorm, fnn.GroupNorm, dict(num_groups=None, group_size=3, epsilon=1e-5)),
    (cnn.GroupNorm, fnn.GroupNorm, dict(num_groups=2, reduction_axes=(2, 3), use_bias=False)),
    (cnn.InstanceNorm, fnn.InstanceNorm, {}),
    (cnn.InstanceNorm, fnn.InstanceNorm, dict(feature_axes=(2, 3), use_scale=False)),
]
IDS = [f"{ours.__name__}-{i}" for i, (ours, _, _) in enumerate(CASES)]


def test_constructor_arguments_are_flaxs():
  for ours, theirs in ((cnn.BatchNorm, fnn.BatchNorm), (cnn.LayerNorm, fnn.LayerNorm),
                       (cnn.GroupNorm, fnn.GroupNorm), (cnn.InstanceNorm, fnn.InstanceNorm)):
    ours_f = {f: getattr(ours, f, None) for f in ours.__dataclass_fields__}
    theirs_f = {f: getattr(theirs, f, None) for f in theirs.__dataclass_fields__}
    assert list(ours_f) == list(theirs_f), ours.__name__
    for f in ("momentum", "epsilon", "axis", "num_groups", "group_size", "use_fast_variance",
              "reduction_axes", "feature_axes", "use_running_average"):
      assert ours_f.get(f) == theirs_f.get(f), (ours.__name__, f)


@pytest.mark.parametrize("ours,theirs,kw", CASES, ids=IDS)
def test_variables_and_outputs_equal_flax(ours, theirs, kw):
  a, b = ours(**kw), theirs(**kw)
  va, vb = a.init(jax.random.key(1), X), b.init(jax.random.key(1), X)
  shapes = lambda v: jax.tree.map(lambda t: (t.shape, t.dtype), v)
  assert shapes(va) == shapes(vb)
  # Random params so scale/bias matter; the same for both.
  vb = jax.tree.map(lambda t: t + jnp.asarray(
      np.random.default_rng(t.size).standard_normal(t.shape), t.dtype), vb)
  apply_a = jax.jit(functools.partial(a.apply, mutable=["batch_stats"]))
  for step in range(3):
    x = X * (step + 1) - step
    ya, upd_a = apply_a(vb, x) if step != 1 else a.apply(vb, x, mutable=["batch_stats"])
    yb, upd_b = b.apply(vb, x, mutable=["batch_stats"])
    assert ya.dtype == yb.dtype
    np.testing.assert_allclose(np.asarray(ya, np.float32), np.asarray(yb, np.float32), **TOL)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, **TOL), upd_a, upd_b)
    vb = {**vb, **upd_b}
  if ours is cnn.BatchNorm:  # evaluation with the accumulated running stats
    kw_eval = {**kw, "use_running_average": None}
    np.testing.assert_allclose(ours(**kw_eval).apply(vb, X, use_running_average=True),
                               theirs(**kw_eval).apply(vb, X, use_running_average=True), **TOL)


def test_batch_norm_mask_and_bf16_like_flax():
  mask = np.random.default_rng(3).random(X.shape[:-1] + (1,)) > 0.3
  for kw in (dict(), dict(dtype=jnp.bfloat16)):
    a, b = cnn.BatchNorm(False, **kw), fnn.BatchNorm(False, **kw)
    v = b.init(jax.random.key(0), X)
    ya, sa = a.apply(v, X, mask=mask, mutable=["batch_stats"])
    yb, sb = b.apply(v, X, mask=mask, mutable=["batch_stats"])
    assert ya.dtype == yb.dtype
    np.testing.assert_allclose(np.asarray(ya, np.float32), np.asarray(yb, np.float32),
                               rtol=1e-2, atol=1e-2)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, **TOL), sa, sb)


def test_batch_norm_axis_name_like_flax():
  """Under vmap with an axis name (what pmap/shard_map provide), both average over it."""
  xs = X.reshape(2, 2, *X.shape[1:])
  a, b = cnn.BatchNorm(False, axis_name="d"), fnn.BatchNorm(False, axis_name="d")
  v = b.init(jax.random.key(0), X)
  run = lambda m: jax.vmap(lambda x: m.apply(v, x, mutable=["batch_stats"]), axis_name="d")(xs)
  (ya, sa), (yb, sb) = run(a), run(b)
  np.testing.assert_allclose(ya, yb, **TOL)
  jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, **TOL), sa, sb)


def test_use_running_average_is_merged_like_flax():
  with pytest.raises(ValueError, match="use_running_average"):
    cnn.BatchNorm().init(jax.random.key(0), X)
  with pytest.raises(ValueError):
    fnn.BatchNorm().init(jax.random.key(0), X)  # the same contract in Flax


@pytest.mark.parametrize("module,match", [
    (cnn.GroupNorm(num_groups=4), "num_groups"),
    (cnn.GroupNorm(num_groups=None), "exactly one"),
    (cnn.GroupNorm(num_groups=2, group_size=3), "exactly one"),
    (cnn.GroupNorm(num_groups=None, group_size=4), "group_size"),
    (cnn.GroupNorm(num_groups=2, reduction_axes=(1, 2)), "reduction_axes"),
    (cnn.LayerNorm(reduction_axes=7), "reduction_axes"),
    (cnn.InstanceNorm(feature_axes=(0, 3)), "feature_axes"),
    (cnn.BatchNorm(True, axis=4), "axis"),
])
def test_invalid_settings_raise_value_error(module, match):
  with pytest.raises(ValueError, match=match):
    module.init(jax.random.key(0), X)


def test_pool_modules_match_torch():
  xt = torch.tensor(X).movedim(-1, 1)
  cases = [
      (cnn.MaxPool(3, 2, 1, ceil_mode=True), F.max_pool2d(xt, 3, 2, 1, ceil_mode=True)),
      (cnn.AvgPool((2, 3), 1, (1, 1), count_include_pad=False),
       F.avg_pool2d(xt, (2, 3), 1, (1, 1), count_include_pad=False)),
      (cnn.AdaptiveAvgPool((2, 2)), F.adaptive_avg_pool2d(xt, (2, 2))),
      (cnn.GlobalAvgPool(keepdims=True), F.adaptive_avg_pool2d(xt, 1)),
      (cnn.GlobalMaxPool(keepdims=True), F.adaptive_max_pool2d(xt, 1)),
  ]
  seq = fnn.Sequential([cnn.MaxPool(2), cnn.GlobalAvgPool()])
  assert seq.init(jax.random.key(0), X) == {}
  for module, ref in cases:
    np.testing.assert_allclose(module.apply({}, X), ref.movedim(1, -1).numpy(), **TOL)
