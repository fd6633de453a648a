"""GoogLeNet / Inception v1 (Szegedy et al. 2015), torchvision's layout, ``(N, 224, 224, 3)`` NHWC.

torchvision's variant: every conv is a ``blocks.ConvNormAct`` (torchvision's ``BasicConv2d``:
conv without bias -> BatchNorm eps 1e-3 -> ReLU), no LRN, max pools with ``ceil_mode=True``, and
the "5x5" branch uses a 3x3 kernel (a known torchvision bug, pytorch/vision#906, kept for weight
compatibility; ``kernel_5x5=5`` gives the paper's). ``inception_block='naive'`` uses the paper's
fig. 2a block (no 1x1 reductions; the pool branch passes its input through, so every block widens
the network).

Initialisation (torchvision's): conv and dense kernels N(0, 0.01) (torchvision's
``trunc_normal_(std=0.01, a=-2, b=2)`` truncates at +-2 absolute = 200 sigma, i.e. a plain
normal), dense biases U(+-1/sqrt(fan_in)) (torch's ``nn.Linear`` default), BN scale 1, bias 0.
BN running statistics use torch's momentum 0.1 (Flax ``momentum=0.9``).

Returns logits ``(N, num_classes)``; with ``aux_logits`` and ``train=True`` a
``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)`` as torchvision. The auxiliary heads'
parameters exist whatever ``train`` was at ``init``. Porting torch weights: conv kernels
``(O, I, kh, kw) -> (kh, kw, I, O)``, dense ``(O, I) -> (I, O)``; the aux ``fc1`` input is flattened
in ``(h, w, c)`` order here, ``(c, h, w)`` in torch.

Sown features: ``stem`` (after ``maxpool2``, stride 8), ``stage1`` (3b, stride 8), ``stage2`` (4e,
stride 16), ``stage3`` (5b, stride 32), ``pre_logits`` (pooled, ``(N, C)``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import (ConvNormAct, Model, ModuleDef, batch_norm, classifier_head,
                                  torch_default_bias_init)
from cnnlab.models.registry import register

# Output channels (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) of the 9 blocks (paper
# Table 1, torchvision). The first digit of the name is the stage: 3 -> 28x28, 4 -> 14x14, 5 -> 7x7
# at 224x224 input.
INCEPTION_CHANNELS = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}
INCEPTION_BLOCKS = ("naive", "reduced")


class GoogLeNetOutputs(NamedTuple):
  logits: jax.Array
  aux_logits2: jax.Array
  aux_logits1: jax.Array


class Inception(nn.Module):
  """Four branches concatenated on channels (torchvision's order).

  ``reduced`` (fig. 2b): 1x1 | 1x1 -> 3x3 | 1x1 -> kxk | 3x3 max pool -> 1x1 projection;
  ``C_out = ch1x1 + ch3x3 + ch5x5 + pool_proj``.
  ``naive`` (fig. 2a): 1x1 | 3x3 | kxk | 3x3 max pool; ``C_out = ch1x1 + ch3x3 + ch5x5 + C_in``.
  ``k = kernel_5x5``. ``channels``: ``(ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)``.
  """
  channels: Sequence[int]
  conv_block: ModuleDef
  block: str = "reduced"
  kernel_5x5: int = 3

  @nn.compact
  def __call__(self, x_BxHxWxC):
    c1, r3, c3, r5, c5, pool_proj = self.channels
    k, x = self.kernel_5x5, x_BxHxWxC
    pooled = ops.max_pool(x, 3, 1, 1, ceil_mode=True)
    b1 = self.conv_block(c1, (1, 1), name="branch1")(x)
    if self.block == "naive":
      b2 = self.conv_block(c3, (3, 3), padding=1, name="branch2")(x)
      b3 = self.conv_block(c5, (k, k), padding=k // 2, name="branch3")(x)
      return jnp.concatenate([b1, b2, b3, pooled], axis=-1)
    b2 = self.conv_block(r3, (1, 1), name="branch2_0")(x)
    b2 = self.conv_block(c3, (3, 3), padding=1, name="branch2_1")(b2)
    b3 = self.conv_block(r5, (1, 1), name="branch3_0")(x)
    b3 = self.conv_block(c5, (k, k), padding=k // 2, name="branch3_1")(b3)
    b4 = self.conv_block(pool_proj, (1, 1), name="branch4_1")(pooled)
    return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class InceptionAux(nn.Module):
  """Auxiliary head: adaptive avg pool 4x4 -> 1x1 conv 128 -> flatten -> dense 1024 + ReLU ->
  dropout -> dense ``num_classes``."""
  num_classes: int
  conv_block: ModuleDef
  dense: ModuleDef
  dropout_rate: float = 0.7

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool):
    x = self.conv_block(128, (1, 1), name="conv")(ops.adaptive_avg_pool(x_BxHxWxC, 4))
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(self.dense(1024, bias_init=torch_default_bias_init(x.shape[-1]), name="fc1")(x))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return self.dense(self.num_classes, bias_init=torch_default_bias_init(x.shape[-1]),
                      name="fc2")(x)


class GoogLeNet(Model):
  num_classes: int = 1000
  aux_logits: bool = False
  inception_block: str = "reduced"
  kernel_5x5: int = 3
  dropout_rate: float = 0.2
  aux_dropout_rate: float = 0.7

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    if self.inception_block not in INCEPTION_BLOCKS:
      raise ValueError(f"GoogLeNet: inception_block must be one of {INCEPTION_BLOCKS}, "
                       f"got {self.inception_block!r}")
    if self.kernel_5x5 not in (3, 5):
      raise ValueError(f"GoogLeNet: kernel_5x5 must be 3 (torchvision) or 5 (paper), "
                       f"got {self.kernel_5x5!r}")
    init = nn.initializers.normal(0.01)
    conv = functools.partial(cnn.Conv, use_bias=False, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=init)
    dense = functools.partial(nn.Dense, dtype=self.dtype, kernel_init=init)
    block = functools.partial(ConvNormAct, conv=conv, padding=0, act=nn.relu,
                              norm=batch_norm(train, self.dtype, epsilon=1e-3))
    inception = functools.partial(Inception, conv_block=block, block=self.inception_block,
                                  kernel_5x5=self.kernel_5x5)
    aux = functools.partial(InceptionAux, num_classes=self.num_classes, conv_block=block,
                            dense=dense, dropout_rate=self.aux_dropout_rate)
    with_aux = self.aux_logits and (train or self.is_initializing())

    x = block(64, (7, 7), strides=2, padding=3, name="conv1")(x_BxHxWxC)
    x = ops.max_pool(x, 3, 2, ceil_mode=True)
    x = block(64, (1, 1), name="conv2")(x)
    x = block(192, (3, 3), padding=1, name="conv3")(x)
    x = ops.max_pool(x, 3, 2, ceil_mode=True)
    self.sow("intermediates", "stem", x)
    x = inception(INCEPTION_CHANNELS["3a"], name="inception3a")(x)
    x = inception(INCEPTION_CHANNELS["3b"], name="inception3b")(x)
    self.sow("intermediates", "stage1", x)
    x = ops.max_pool(x, 3, 2, ceil_mode=True)
    x = inception(INCEPTION_CHANNELS["4a"], name="inception4a")(x)
    aux1 = aux(name="aux1")(x, train) if with_aux else None
    for b in ("4b", "4c", "4d"):
      x = inception(INCEPTION_CHANNELS[b], name=f"inception{b}")(x)
    aux2 = aux(name="aux2")(x, train) if with_aux else None
    x = inception(INCEPTION_CHANNELS["4e"], name="inception4e")(x)
    self.sow("intermediates", "stage2", x)
    x = ops.max_pool(x, 2, 2, ceil_mode=True)
    x = inception(INCEPTION_CHANNELS["5a"], name="inception5a")(x)
    x = inception(INCEPTION_CHANNELS["5b"], name="inception5b")(x)
    self.sow("intermediates", "stage3", x)
    fc = functools.partial(dense, bias_init=torch_default_bias_init(x.shape[-1]))
    logits = classifier_head(self, x, fc, dropout_rate=self.dropout_rate, train=train)
    if self.aux_logits and train:
      return GoogLeNetOutputs(logits, aux2, aux1)
    return logits


_GOOGLENET = "Szegedy et al. 2015, Going deeper with convolutions"
register("googlenet", functools.partial(GoogLeNet), input_shape=(224, 224, 3), paper=_GOOGLENET,
         num_params=6_624_904, family="inception", small_input_shape=(32, 32, 3))
