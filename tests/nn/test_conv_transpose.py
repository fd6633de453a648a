"""``cnnlab.nn.ConvTranspose`` against ``flax.linen.ConvTranspose`` (parameter tree, init values,
outputs with Flax's parameters, 1D/2D/3D, eager and jitted, every impl) and, for torch-style
explicit padding, against ``torch.nn.functional.conv_transpose1d``."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab import nn
from cnnlab.ops.transposed_conv import IMPLS

TOL = dict(rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("transpose_kernel", [False, True])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_module_params_and_outputs_match_flax(transpose_kernel, padding):
  x = np.random.default_rng(0).standard_normal((2, 6, 5, 3), np.float32)
  kw = dict(features=4, kernel_size=(3, 2), strides=(2, 1), padding=padding,
            transpose_kernel=transpose_kernel, bias_init=flax.linen.initializers.normal(1.0))
  ref_layer = flax.linen.ConvTranspose(**kw)
  params = ref_layer.init(jax.random.key(0), x)
  for impl in IMPLS:
    ours = nn.ConvTranspose(**kw, impl=impl)
    mine = ours.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, mine) == jax.tree.map(jnp.shape, params)
    np.testing.assert_allclose(ours.apply(params, x), ref_layer.apply(params, x), **TOL)
  # the same key gives the same init (same initialisers, same shapes)
  jax.tree.map(np.testing.assert_array_equal, mine, params)


def test_module_explicit_padding_follows_torch():
  x = np.random.default_rng(1).standard_normal((2, 5, 4), np.float32)
  layer = nn.ConvTranspose(6, (3,), strides=2, padding=1, output_padding=1,
                           feature_group_count=2, kernel_init=flax.linen.initializers.normal(1.0))
  params = layer.init(jax.random.key(0), x)
  kernel, bias = params["params"]["kernel"], params["params"]["bias"]
  assert kernel.shape == (3, 4, 3)
  ref = F.conv_transpose1d(torch.tensor(np.moveaxis(x, -1, 1)),
                           torch.tensor(np.moveaxis(np.flip(np.asarray(kernel), 0), (1, 2), (0, 1))
                                        .copy()),
                           torch.tensor(np.asarray(bias)), stride=2, padding=1, output_padding=1,
                           groups=2)
  np.testing.assert_allclose(layer.apply(params, x), np.moveaxis(ref.numpy(), 1, -1), **TOL)


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("x_shape,kw", [
    ((2, 7, 3), dict(features=2, kernel_size=(4,), strides=(3,), use_bias=False)),
    ((1, 3, 4, 3, 2), dict(features=3, kernel_size=(2, 3, 2), strides=(2, 1, 2), padding="VALID",
                           kernel_dilation=(1, 2, 1))),
])
def test_module_1d_3d_matches_flax(x_shape, kw, use_jit):
  x = np.random.default_rng(2).standard_normal(x_shape, np.float32)
  ref_layer = flax.linen.ConvTranspose(**kw)
  params = ref_layer.init(jax.random.key(0), x)
  mine = nn.ConvTranspose(**kw).init(jax.random.key(0), x)
  jax.tree.map(np.testing.assert_array_equal, mine, params)
  apply = nn.ConvTranspose(**kw).apply
  np.testing.assert_allclose((jax.jit(apply) if use_jit else apply)(params, x),
                             ref_layer.apply(params, x), **TOL)
