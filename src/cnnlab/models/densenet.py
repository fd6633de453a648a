"""DenseNet-BC (Huang et al. 2017): torchvision's ImageNet models and the CIFAR DenseNet-BC-100.

Dense layer (bottleneck, "B"): BN-ReLU-Conv1x1 (``bn_size * k``) - BN-ReLU-Conv3x3 (``k``, pad 1),
[Dropout]; its ``k`` new maps are concatenated to its input. Transition ("C", compression 0.5):
BN-ReLU-Conv1x1 (``floor(c * compression)``) - AvgPool 2x2/2. After the last block: BN-ReLU,
global average pool, Linear. Convs have no bias.
- ``stem='imagenet'`` (torchvision): Conv 7x7/2 pad 3 (``num_init_features``) - BN - ReLU -
  MaxPool 3x3/2 pad 1; inputs H, W >= 29. densenet121/169/201: k=32, 64 initial features,
  blocks (6,12,24,16) / (6,12,32,32) / (6,12,48,32); densenet161: k=48, 96, (6,12,36,24).
- ``stem='cifar'`` (the paper's CIFAR nets): Conv 3x3 pad 1 (``2k`` features) only.
  densenet_bc_100: k=12, three blocks of (100 - 4) / 6 = 16 layers, ~0.8M parameters (paper).

Initialisation (torchvision): convs ``kaiming_normal_`` (``N(0, 2 / fan_in)``); BN scale 1,
bias 0; Linear kernel torch's default ``U(+-1/sqrt(fan_in))``, bias 0. BatchNorm momentum 0.9 in
Flax's convention (= torch's 0.1), eps 1e-5.

Intermediates: ``stem``, ``stage1`` ... ``stageK`` (each dense block's output, before its
transition) and ``pre_logits`` (pooled features).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import (Model, ModuleDef, batch_norm, check_image, classifier_head,
                                  kaiming_normal_fan_in, torch_default_kernel_init)
from cnnlab.models.registry import register

STEMS = ("imagenet", "cifar")
MIN_INPUT = {"imagenet": 29, "cifar": 4}


class DenseLayer(nn.Module):
  """Bottleneck layer: ``(N, H, W, C) -> (N, H, W, growth_rate)`` new features."""
  growth_rate: int
  bn_size: int
  dropout_rate: float
  conv: ModuleDef
  norm: ModuleDef
  train: bool = False

  @nn.compact
  def __call__(self, x):
    x = self.conv(self.bn_size * self.growth_rate, (1, 1), padding="VALID", name="conv1")(
        nn.relu(self.norm(name="norm1")(x)))
    x = self.conv(self.growth_rate, (3, 3), padding=((1, 1), (1, 1)), name="conv2")(
        nn.relu(self.norm(name="norm2")(x)))
    return nn.Dropout(self.dropout_rate, deterministic=not self.train)(x)


class Transition(nn.Module):
  features: int
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x):
    x = self.conv(self.features, (1, 1), padding="VALID", name="conv")(
        nn.relu(self.norm(name="norm")(x)))
    return ops.avg_pool(x, 2)


class DenseNet(Model):
  block_sizes: Sequence[int] = (6, 12, 24, 16)
  growth_rate: int = 32
  num_init_features: int = 64
  bn_size: int = 4
  compression: float = 0.5
  stem: str = "imagenet"
  num_classes: int = 1000
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    if self.stem not in STEMS:
      raise ValueError(f"DenseNet: stem must be one of {STEMS}, got {self.stem!r}")
    if not 0.0 < self.compression <= 1.0:
      raise ValueError(f"DenseNet: compression must be in (0, 1], got {self.compression}")
    check_image("DenseNet", x_BxHxWxC, MIN_INPUT[self.stem], f" (stem={self.stem!r})")
    conv = functools.partial(cnn.Conv, use_bias=False, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=kaiming_normal_fan_in)
    norm = batch_norm(train, self.dtype)

    if self.stem == "imagenet":
      x = conv(self.num_init_features, (7, 7), strides=2, padding=((3, 3), (3, 3)),
               name="conv0")(x_BxHxWxC)
      x = ops.max_pool(nn.relu(norm(name="norm0")(x)), 3, 2, 1)
    else:
      x = conv(self.num_init_features, (3, 3), padding=((1, 1), (1, 1)), name="conv0")(x_BxHxWxC)
    self.sow("intermediates", "stem", x)

    for i, n in enumerate(self.block_sizes):
      for j in range(n):
        y = DenseLayer(self.growth_rate, self.bn_size, self.dropout_rate, conv, norm, train,
                       name=f"denseblock{i + 1}_layer{j + 1}")(x)
        x = jnp.concatenate([x, y], axis=-1)
      self.sow("intermediates", f"stage{i + 1}", x)
      if i < len(self.block_sizes) - 1:
        x = Transition(int(x.shape[-1] * self.compression), conv, norm,
                       name=f"transition{i + 1}")(x)

    dense = functools.partial(nn.Dense, dtype=self.dtype, kernel_init=torch_default_kernel_init)
    return classifier_head(self, nn.relu(norm(name="norm5")(x)), dense, name="classifier")


_PAPER = "Huang et al. 2017, Densely Connected Convolutional Networks"
# torchvision's documented num_params, 1000 classes.
_IMAGENET = {
    "densenet121": (32, 64, (6, 12, 24, 16), 7_978_856),
    "densenet161": (48, 96, (6, 12, 36, 24), 28_681_000),
    "densenet169": (32, 64, (6, 12, 32, 32), 14_149_480),
    "densenet201": (32, 64, (6, 12, 48, 32), 20_013_928),
}
for _name, (_k, _init, _blocks, _n) in _IMAGENET.items():
  register(_name, functools.partial(DenseNet, growth_rate=_k, num_init_features=_init,
                                    block_sizes=_blocks),
           input_shape=(224, 224, 3), paper=_PAPER, num_params=_n, family="densenet",
           small_input_shape=(32, 32, 3))
# CIFAR DenseNet-BC (L=100, k=12), 10 classes: the exact count of the layer table above (the
# paper rounds it to 0.8M); tests derive it in closed form.
register("densenet_bc_100",
         functools.partial(DenseNet, growth_rate=12, num_init_features=24, block_sizes=(16,) * 3,
                           stem="cifar", num_classes=10),
         input_shape=(32, 32, 3), paper=_PAPER + " (DenseNet-BC, L=100, k=12)",
         num_params=769_162, family="densenet", small_input_shape=(8, 8, 3))
