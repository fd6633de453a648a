"""U-Net: logits the input's size for both decoders (odd / even, eager / jitted, pad-then-crop),
finite train gradients, the parameter count by hand at the defaults and the paper's widths, the
skip concatenation's channel counts, bad options."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import models
from models import dense


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.fixture(scope="module")
def unet():
  model = models.create("unet")
  return model, dense.init(model)


def test_output_sizes(unet):
  dense.check_output_sizes(*unet)


def test_pad_then_crop(unet):
  dense.check_pad_then_crop(*unet, 31, 32)


def test_train_step_gradients_finite(unet):
  dense.check_train_step(*unet)


@pytest.mark.parametrize("kw,train", [(dict(decoder="resize"), True),
                                      (dict(decoder="resize", resize_method="bilinear"), False),
                                      (dict(up_kernel_size=3), True),
                                      (dict(up_kernel_size=4), False)])
def test_decoders(kw, train):
  """Resize-conv decoders and transposed convs with kernels 3 / 4 (not only the paper's 2):
  sizes, and for two of them a finite train step (at depth 2, with dropout, to keep it cheap)."""
  model = models.create("unet", depth=2, dropout_rate=0.5, **kw)
  variables = dense.init(model, 8, 8)
  dense.check_output_sizes(model, variables, sizes=((13, 13), (16, 19)), computed=(13, 13))
  if train:
    dense.check_train_step(model, variables, size=9)


def _conv(k, c_in, c_out):
  return k * k * c_in * c_out + c_out


def _unet_count(c_in, features, depth, classes, up_kernel=2):
  """By hand: per level two 3x3 convs; up-conv ``k x k x 2c x c`` with bias; decoder convs take
  ``2c`` channels (skip ++ upsampled); 1x1 head."""
  n, c = 0, c_in
  for i in range(depth + 1):
    f = features * 2 ** i
    n, c = n + _conv(3, c, f) + _conv(3, f, f), f
  for i in reversed(range(depth)):
    f = features * 2 ** i
    n += _conv(up_kernel, 2 * f, f) + _conv(3, 2 * f, f) + _conv(3, f, f)
  return n + _conv(1, features, classes)


@pytest.mark.parametrize("kw,c_in,classes", [({}, 1, 11), (dict(features=64), 1, 2)])
def test_parameter_count(kw, c_in, classes):
  """Defaults: 485,763 (64x64x1, 11 classes); the paper's widths (64 .. 1024, depth 4, 2 classes,
  1 input channel): 31,030,658 (the paper states no count)."""
  model = models.create("unet", num_classes=classes, **kw)
  shapes = jax.eval_shape(functools.partial(model.init, dense.key(0)),
                          jnp.zeros((1, 32, 32, c_in)))
  assert _count(shapes["params"]) == _unet_count(c_in, model.features, 4, classes)
  assert _count(shapes["params"]) == {11: 485_763, 2: 31_030_658}[classes]
  assert shapes["params"]["dec0"]["conv0"]["kernel"].shape == (3, 3, 2 * model.features,
                                                               model.features)


def test_bad_options():
  x = jnp.zeros((1, 16, 16, 1))
  with pytest.raises(ValueError, match="decoder='bilinear' is not one of"):
    jax.eval_shape(models.create("unet", decoder="bilinear").init, dense.key(0), x)
  with pytest.raises(ValueError, match="depth must be >= 1"):
    jax.eval_shape(models.create("unet", depth=0).init, dense.key(0), x)
