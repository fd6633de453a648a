"""``cnnlab.nn.Conv`` against ``flax.linen.Conv``: the same parameter tree (names, shapes, dtypes;
init values from the same key), and the same outputs with one set of random parameters, for
1D/2D/3D, strides, dilation, groups, padding and bias; with the default impl eagerly and jitted,
and with every impl that ``supports`` the case."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import nn as cnn
from cnnlab.ops.conv_auto import CACHE_ENV
from cnnlab.ops.conv_registry import impls_supporting

# name: (input shape, Conv kwargs). Flax's int padding is symmetric, like ours.
CASES = {
    "1d_valid": ((2, 11, 3), dict(features=4, kernel_size=(3,), padding="VALID")),
    "1d_causal_dilated": ((2, 12, 2), dict(features=3, kernel_size=(3,), padding="CAUSAL",
                                           kernel_dilation=2)),
    "1d_same_stride_groups": ((2, 10, 4), dict(features=6, kernel_size=(4,), strides=2,
                                               feature_group_count=2)),
    "2d_same": ((2, 7, 6, 3), dict(features=5, kernel_size=(3, 3))),
    "2d_same_stride2_even": ((2, 8, 8, 3), dict(features=4, kernel_size=(3, 3), strides=2)),
    "2d_pairs_nobias": ((2, 7, 5, 2), dict(features=4, kernel_size=(3, 2), strides=(2, 1),
                                           padding=((1, 0), (2, 1)), use_bias=False)),
    "2d_int_dilation": ((1, 9, 9, 2), dict(features=2, kernel_size=(3, 3), padding=2,
                                           kernel_dilation=(2, 1))),
    "2d_depthwise": ((2, 6, 6, 4), dict(features=4, kernel_size=(3, 3), feature_group_count=4)),
    "3d_valid_stride": ((1, 6, 5, 5, 2), dict(features=3, kernel_size=(2, 3, 2), strides=(1, 2, 2),
                                              padding="VALID")),
    "3d_same_groups_nobias": ((1, 4, 4, 4, 4), dict(features=2, kernel_size=(3, 3, 3),
                                                    feature_group_count=2, use_bias=False)),
}
# The impl sweep on fewer cases (each impl against lax: tests/ops/test_conv_impls.py).
IMPL_CASES = ("1d_causal_dilated", "1d_same_stride_groups", "2d_same", "2d_pairs_nobias",
              "2d_depthwise", "3d_valid_stride")
TOL = dict(rtol=1e-4, atol=1e-4)


def _setup(name):
  """Input, kwargs, the Flax layer and random parameters of its (abstract) tree."""
  x_shape, kw = CASES[name]
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
  ref = fnn.Conv(**kw)
  tree = jax.eval_shape(ref.init, jax.random.key(0), x)
  params = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape), a.dtype), tree)
  return x, kw, ref, params


def _abstract(tree):
  return jax.tree.map(lambda a: (a.shape, a.dtype), tree)


@pytest.mark.parametrize("name", CASES)
def test_params_and_outputs_match_flax(name):
  x, kw, ref, params = _setup(name)
  ours = cnn.Conv(**kw)
  got = jax.eval_shape(ours.init, jax.random.key(0), x)
  assert jax.tree.structure(got) == jax.tree.structure(params)  # names
  assert _abstract(got) == _abstract(params)  # shapes, dtypes
  want = ref.apply(params, x)
  for apply in (ours.apply, jax.jit(ours.apply)):
    y = apply(params, x)
    assert y.shape == want.shape and y.dtype == want.dtype
    np.testing.assert_allclose(y, want, **TOL)


def test_init_values_match_flax():
  """Flax's default initialisers and the same key: the same values."""
  x = jnp.zeros((1, 6, 6, 3))
  want = fnn.Conv(4, (3, 3)).init(jax.random.key(0), x)
  got = cnn.Conv(4, (3, 3)).init(jax.random.key(0), x)
  jax.tree.map(np.testing.assert_array_equal, got, want)


@pytest.mark.parametrize("name", IMPL_CASES)
def test_every_supporting_impl_matches_flax(name, monkeypatch, tmp_path):
  monkeypatch.setenv(CACHE_ENV, str(tmp_path / "none.json"))  # impl='auto': heuristic only
  x, kw, ref, params = _setup(name)
  want = ref.apply(params, x)
  groups = kw.get("feature_group_count", 1)
  w_shape = (*kw["kernel_size"], x.shape[-1] // groups, kw["features"])
  impls = impls_supporting(x.shape, w_shape, stride=kw.get("strides", 1),
                           padding=kw.get("padding", "SAME"),
                           dilation=kw.get("kernel_dilation", 1), groups=groups)
  assert "lax" in impls and len(impls) >= 5, impls
  # One compilation for all impls of the case.
  got = jax.jit(lambda p, x: {i: cnn.Conv(**kw, impl=i).apply(p, x) for i in impls})(params, x)
  for impl, y in got.items():
    np.testing.assert_allclose(y, want, err_msg=impl, **TOL)
