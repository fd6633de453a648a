"""Inception-v3 (Szegedy et al. 2016) in torchvision's layout, ``(N, 299, 299, 3)`` NHWC.

Module names follow torchvision (``Conv2d_1a_3x3`` ... ``Mixed_7c``, ``AuxLogits``, ``fc``); every
conv is a ``blocks.ConvNormAct`` (torchvision's ``BasicConv2d``: conv without bias -> BN eps 1e-3
-> ReLU). Pools are torch's: max 3x3 stride
2 without padding, branch avg pools 3x3 stride 1 padding 1 counting the padding. Smallest input
75x75 in eval mode; the auxiliary head (after ``Mixed_6e``: avg pool 5/3 -> 1x1 conv 128 -> 5x5 conv
768 -> dense) needs a 17x17 ``Mixed_6e`` map, i.e. 299x299 input, when ``train=True``. Its
parameters exist whatever the input size at ``init`` (as torch's modules do).

Initialisation (torchvision's): kernels N(0, 0.1), aux ``conv1`` N(0, 0.01), aux ``fc`` N(0, 0.001)
(torch's ``trunc_normal_(a=-2, b=2)`` truncates >= 20 sigma out: a plain normal), dense biases
U(+-1/sqrt(fan_in)), BN scale 1, bias 0; BN momentum as torch's 0.1.

Returns logits; with ``aux_logits`` and ``train=True`` an ``InceptionOutputs(logits, aux_logits)``.
Sown features: ``stem`` (after ``maxpool2``, 35x35), ``stage1`` (``Mixed_5d``, 35x35), ``stage2``
(``Mixed_6e``, 17x17), ``stage3`` (``Mixed_7c``, 8x8), ``pre_logits``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import (ConvNormAct, Model, ModuleDef, batch_norm, check_image,
                                  classifier_head, torch_default_bias_init)
from cnnlab.models.registry import register

AUX_MIN_SIZE = 17  # Mixed_6e map size the auxiliary head needs (5/3 avg pool then a 5x5 conv).


class InceptionOutputs(NamedTuple):
  logits: jax.Array
  aux_logits: jax.Array


def _avg3(x):
  return ops.avg_pool(x, 3, 1, 1)


class InceptionA(nn.Module):
  """35x35: 1x1 64 | 1x1 48 -> 5x5 64 | 1x1 64 -> 3x3 96 -> 3x3 96 | avg -> 1x1 pool_features."""
  pool_features: int
  conv_block: ModuleDef

  @nn.compact
  def __call__(self, x):
    c = self.conv_block
    b1 = c(64, (1, 1), name="branch1x1")(x)
    b5 = c(64, (5, 5), padding=2, name="branch5x5_2")(c(48, (1, 1), name="branch5x5_1")(x))
    b3 = c(64, (1, 1), name="branch3x3dbl_1")(x)
    b3 = c(96, (3, 3), padding=1, name="branch3x3dbl_3")(
        c(96, (3, 3), padding=1, name="branch3x3dbl_2")(b3))
    bp = c(self.pool_features, (1, 1), name="branch_pool")(_avg3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """35 -> 17: 3x3/2 384 | 1x1 64 -> 3x3 96 -> 3x3/2 96 | max pool 3x3/2."""
  conv_block: ModuleDef

  @nn.compact
  def __call__(self, x):
    c = self.conv_block
    b3 = c(384, (3, 3), strides=2, name="branch3x3")(x)
    bd = c(96, (3, 3), padding=1, name="branch3x3dbl_2")(c(64, (1, 1), name="branch3x3dbl_1")(x))
    bd = c(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, ops.max_pool(x, 3, 2)], axis=-1)


class InceptionC(nn.Module):
  """17x17 with factorised 7x7: 1x1 192 | 1x1 c7 -> 1x7 -> 7x1 192 |
  1x1 c7 -> 7x1 -> 1x7 -> 7x1 -> 1x7 192 | avg -> 1x1 192."""
  channels_7x7: int
  conv_block: ModuleDef

  @nn.compact
  def __call__(self, x):
    c, c7 = self.conv_block, self.channels_7x7
    row = lambda f, name: c(f, (1, 7), padding=(0, 3), name=name)
    col = lambda f, name: c(f, (7, 1), padding=(3, 0), name=name)
    b1 = c(192, (1, 1), name="branch1x1")(x)
    b7 = col(192, "branch7x7_3")(row(c7, "branch7x7_2")(c(c7, (1, 1), name="branch7x7_1")(x)))
    bd = c(c7, (1, 1), name="branch7x7dbl_1")(x)
    bd = row(c7, "branch7x7dbl_3")(col(c7, "branch7x7dbl_2")(bd))
    bd = row(192, "branch7x7dbl_5")(col(c7, "branch7x7dbl_4")(bd))
    bp = c(192, (1, 1), name="branch_pool")(_avg3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """17 -> 8: 1x1 192 -> 3x3/2 320 | 1x1 192 -> 1x7 -> 7x1 -> 3x3/2 192 | max pool 3x3/2."""
  conv_block: ModuleDef

  @nn.compact
  def __call__(self, x):
    c = self.conv_block
    b3 = c(320, (3, 3), strides=2, name="branch3x3_2")(c(192, (1, 1), name="branch3x3_1")(x))
    b7 = c(192, (1, 1), name="branch7x7x3_1")(x)
    b7 = c(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = c(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = c(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, ops.max_pool(x, 3, 2)], axis=-1)


class InceptionE(nn.Module):
  """8x8 with split 3x3s: 1x1 320 | 1x1 384 -> (1x3 | 3x1) 384 each |
  1x1 448 -> 3x3 384 -> (1x3 | 3x1) 384 each | avg -> 1x1 192."""
  conv_block: ModuleDef

  @nn.compact
  def __call__(self, x):
    c = self.conv_block
    split = lambda y, prefix: [c(384, (1, 3), padding=(0, 1), name=f"{prefix}a")(y),
                               c(384, (3, 1), padding=(1, 0), name=f"{prefix}b")(y)]
    b1 = c(320, (1, 1), name="branch1x1")(x)
    b3 = split(c(384, (1, 1), name="branch3x3_1")(x), "branch3x3_2")
    bd = c(384, (3, 3), padding=1, name="branch3x3dbl_2")(c(448, (1, 1), name="branch3x3dbl_1")(x))
    bd = split(bd, "branch3x3dbl_3")
    bp = c(192, (1, 1), name="branch_pool")(_avg3(x))
    return jnp.concatenate([b1, *b3, *bd, bp], axis=-1)


class InceptionAux(nn.Module):
  """avg pool 5x5/3 -> 1x1 128 -> 5x5 768 (N(0, 0.01)) -> global avg -> dense (N(0, 0.001))."""
  num_classes: int
  conv: ModuleDef
  norm: ModuleDef
  dense: ModuleDef

  @nn.compact
  def __call__(self, x):
    cna = functools.partial(ConvNormAct, norm=self.norm, padding=0, act=nn.relu)
    x = cna(128, (1, 1), self.conv, name="conv0")(ops.avg_pool(x, 5, 3))
    conv1 = functools.partial(self.conv, kernel_init=nn.initializers.normal(0.01))
    x = ops.global_avg_pool(cna(768, (5, 5), conv1, name="conv1")(x))
    return self.dense(self.num_classes, kernel_init=nn.initializers.normal(0.001),
                      bias_init=torch_default_bias_init(x.shape[-1]), name="fc")(x)


class InceptionV3(Model):
  num_classes: int = 1000
  aux_logits: bool = True
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    check_image("InceptionV3", x_BxHxWxC, 75)
    init = nn.initializers.normal(0.1)
    conv = functools.partial(cnn.Conv, use_bias=False, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=init)
    norm = batch_norm(train, self.dtype, epsilon=1e-3)
    dense = functools.partial(nn.Dense, dtype=self.dtype, kernel_init=init)
    c = functools.partial(ConvNormAct, conv=conv, norm=norm, padding=0, act=nn.relu)

    x = c(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x_BxHxWxC)
    x = c(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = c(64, (3, 3), padding=1, name="Conv2d_2b_3x3")(x)
    x = ops.max_pool(x, 3, 2)
    x = c(80, (1, 1), name="Conv2d_3b_1x1")(x)
    x = c(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = ops.max_pool(x, 3, 2)
    self.sow("intermediates", "stem", x)
    for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
      x = InceptionA(pool_features, c, name=name)(x)
    self.sow("intermediates", "stage1", x)
    x = InceptionB(c, name="Mixed_6a")(x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(c7, c, name=name)(x)
    self.sow("intermediates", "stage2", x)
    aux = None
    if self.aux_logits and (train or self.is_initializing()):
      if train and min(x.shape[1:3]) < AUX_MIN_SIZE:
        raise ValueError(f"InceptionV3: aux_logits in training needs a {AUX_MIN_SIZE}x"
                         f"{AUX_MIN_SIZE} Mixed_6e map (299x299 input); input was "
                         f"{x_BxHxWxC.shape}. Use aux_logits=False for smaller inputs.")
      # At init with a small (eval) input, build the head's parameters on a map of its size.
      aux_in = x if min(x.shape[1:3]) >= AUX_MIN_SIZE else jnp.zeros(
          (x.shape[0], AUX_MIN_SIZE, AUX_MIN_SIZE, x.shape[-1]), x.dtype)
      aux = InceptionAux(self.num_classes, conv, norm, dense, name="AuxLogits")(aux_in)
    x = InceptionD(c, name="Mixed_7a")(x)
    x = InceptionE(c, name="Mixed_7b")(x)
    x = InceptionE(c, name="Mixed_7c")(x)
    self.sow("intermediates", "stage3", x)
    fc = functools.partial(dense, bias_init=torch_default_bias_init(x.shape[-1]))
    logits = classifier_head(self, x, fc, dropout_rate=self.dropout_rate, train=train)
    if self.aux_logits and train:
      return InceptionOutputs(logits, aux)
    return logits


register("inception_v3", functools.partial(InceptionV3), input_shape=(299, 299, 3),
         paper="Szegedy et al. 2016, Rethinking the Inception architecture for computer vision",
         num_params=27_161_264, family="inception", small_input_shape=(75, 75, 3))
