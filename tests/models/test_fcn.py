"""FCN-8s: logits the input's size (odd / even, eager / jitted, pad-then-crop), finite train
gradients, the paper's layer names and deconv shapes (caffe's upscore2 4x4/2, upscore8 16x16/8),
the parameter count by hand, fewer pools, and both impl switches reaching every conv."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import models
from cnnlab import nn as cnn
from models import dense


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.fixture(scope="module")
def fcn():
  model = models.create("fcn8s")
  return model, dense.init(model)


def test_output_sizes(fcn):
  dense.check_output_sizes(*fcn)


def test_pad_then_crop(fcn):
  dense.check_pad_then_crop(*fcn, 31, 32)


def test_train_step_gradients_finite(fcn):
  dense.check_train_step(*fcn)


def test_layers_and_parameter_count():
  """Defaults (64x64x1, 11 classes) by hand: 3x3 convs ``9*c_in*c_out + c_out``, fc6 3x3,
  fc7 / scores 1x1 with bias, three bias-free ``k x k x 11 x 11`` deconvs (k = 4, 4, 16)."""
  shapes = jax.eval_shape(lambda: models.create("fcn8s").init(
      jax.random.key(0), jnp.zeros((1, 64, 64, 1))))["params"]
  assert shapes["upscore2"]["up"]["kernel"].shape == (4, 4, 11, 11)
  assert shapes["upscore_pool4"]["up"]["kernel"].shape == (4, 4, 11, 11)
  assert shapes["upscore8"]["up"]["kernel"].shape == (16, 16, 11, 11)
  assert "bias" not in shapes["upscore8"]["up"]
  c, n = 1, 0
  for f, convs in zip((8, 16, 32, 64, 64), (2, 2, 3, 3, 3)):
    for _ in range(convs):
      n, c = n + 9 * c * f + f, f
  n += 9 * 64 * 128 + 128 + 128 * 128 + 128 + 128 * 11 + 11  # fc6, fc7, score_fr
  n += (64 * 11 + 11) + (32 * 11 + 11)  # score_pool4 (on pool4), score_pool3 (pool3)
  n += (16 + 16 + 256) * 11 * 11  # upscore2, upscore_pool4, upscore8
  assert _count(shapes) == n == 358_137


def test_three_pools():
  """``P = 3``: skips from the first two pools, a final x2 (kernel 4) upsampling."""
  model = models.create("fcn8s", stage_features=(8, 16, 16), stage_convs=(1, 1, 1))
  variables = dense.init(model, 8, 8)
  dense.check_output_sizes(model, variables, sizes=((13, 13), (16, 19)), computed=(13, 13))
  assert variables["params"]["upscore8"]["up"]["kernel"].shape == (4, 4, 11, 11)
  with pytest.raises(ValueError, match="stage_features needs >= 3"):
    jax.eval_shape(models.create("fcn8s", stage_features=(8, 16), stage_convs=(1, 1)).init,
                   dense.key(0), jnp.zeros((1, 8, 8, 1)))


def test_impls_reach_every_conv_and_agree(fcn):
  """``conv_impl`` reaches every ``cnn.Conv``, ``transpose_impl`` every ``cnn.ConvTranspose``; the
  logits match the lax/lax ones."""
  x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 21, 19, 1)), jnp.float32)
  base, variables = fcn
  other = models.create("fcn8s", conv_impl="im2col", transpose_impl="zero_insert")
  seen = set()

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, (cnn.Conv, cnn.ConvTranspose)):
      seen.add((type(context.module).__name__, context.module.impl))
    return next_fun(*args, **kwargs)

  with flax.linen.intercept_methods(record):
    jax.eval_shape(other.apply, variables, x)
  y = jax.jit(other.apply)(variables, x)
  assert seen == {("Conv", "im2col"), ("ConvTranspose", "zero_insert")}
  np.testing.assert_allclose(y, jax.jit(base.apply)(variables, x), rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match="transpose_impl='fft' is not one of"):
    jax.eval_shape(models.create("fcn8s", transpose_impl="fft").apply, variables, x)
