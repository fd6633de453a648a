"""VGG (Simonyan & Zisserman 2015), torchvision layout, on ``(N, H, W, 3)`` inputs, H, W >= 32.

Five stages of 3x3 convs (padding 1) with 64, 128, 256, 512, 512 filters, each closed by a 2x2
max pool; configs A/B/D/E (vgg11/13/16/19) have (1,1,2,2,2) / (2,2,2,2,2) / (2,2,3,3,3) /
(2,2,4,4,4) convs per stage; ``_bn`` variants put BatchNorm between each conv and its ReLU.
Head: ``AdaptiveAvgPool2d((7, 7))``, then Linear 4096 - ReLU - Dropout - Linear 4096 - ReLU -
Dropout - Linear ``num_classes`` (``hidden_features`` sets the 4096).

Flattening is NHWC (H, W, C order), torch's is (C, H, W): porting torchvision weights permutes the
first Linear's rows accordingly.

Initialisation (torchvision): convs ``kaiming_normal_(mode='fan_out', nonlinearity='relu')``,
biases 0; BatchNorm scale 1, bias 0; Linear ``normal(0, 0.01)``, bias 0. BatchNorm momentum 0.9
in Flax's convention (= torch's 0.1), eps 1e-5.

Intermediates: ``stage1`` ... ``stage5`` (after each max pool; the stages are modules ``block1`` ...
``block5``; VGG has no separate stem) and
``pre_logits`` (the 4096 features entering the last Linear).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import Model, ModuleDef, batch_norm, check_image, kaiming_normal_fan_out
from cnnlab.models.registry import register

STAGE_FEATURES = (64, 128, 256, 512, 512)
MIN_INPUT = 32  # five 2x2 max pools

dense_init = nn.initializers.normal(0.01)


class VGGStage(nn.Module):
  """``num_convs`` x (3x3 conv, [norm], ReLU), then a 2x2 max pool."""
  num_convs: int
  features: int
  conv: ModuleDef
  norm: ModuleDef | None = None

  @nn.compact
  def __call__(self, x):
    for i in range(self.num_convs):
      x = self.conv(self.features, (3, 3), padding=((1, 1), (1, 1)), name=f"conv{i}")(x)
      if self.norm is not None:
        x = self.norm(name=f"norm{i}")(x)
      x = nn.relu(x)
    return ops.max_pool(x, 2)


class VGG(Model):
  stage_sizes: Sequence[int]
  batch_norm: bool = False
  num_classes: int = 1000
  hidden_features: int = 4096
  dropout_rate: float = 0.5
  pool_size: int = 7

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    if len(self.stage_sizes) != len(STAGE_FEATURES):
      raise ValueError(f"VGG: stage_sizes needs {len(STAGE_FEATURES)} entries, "
                       f"got {self.stage_sizes!r}")
    check_image("VGG", x_BxHxWxC, MIN_INPUT)
    conv = functools.partial(cnn.Conv, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=kaiming_normal_fan_out)
    norm = batch_norm(train, self.dtype) if self.batch_norm else None
    dense = functools.partial(nn.Dense, dtype=self.dtype, kernel_init=dense_init)

    x = x_BxHxWxC
    for i, (n, f) in enumerate(zip(self.stage_sizes, STAGE_FEATURES)):
      x = VGGStage(n, f, conv, norm, name=f"block{i + 1}")(x)
      self.sow("intermediates", f"stage{i + 1}", x)
    x = ops.adaptive_avg_pool(x, self.pool_size)
    x = x.reshape(x.shape[0], -1)
    for i in range(2):
      x = nn.relu(dense(self.hidden_features, name=f"fc{i + 1}")(x))
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    self.sow("intermediates", "pre_logits", x)
    return dense(self.num_classes, name="head")(x)


_PAPER = ("Simonyan & Zisserman 2015, Very Deep Convolutional Networks for Large-Scale Image "
          "Recognition")
# torchvision's documented num_params (weights' meta), 1000 classes.
_CONFIGS = {
    "vgg11": ((1, 1, 2, 2, 2), 132_863_336, 132_868_840),
    "vgg13": ((2, 2, 2, 2, 2), 133_047_848, 133_053_736),
    "vgg16": ((2, 2, 3, 3, 3), 138_357_544, 138_365_992),
    "vgg19": ((2, 2, 4, 4, 4), 143_667_240, 143_678_248),
}
for _name, (_sizes, _n, _n_bn) in _CONFIGS.items():
  register(_name, functools.partial(VGG, stage_sizes=_sizes), input_shape=(224, 224, 3),
           paper=_PAPER, num_params=_n, family="vgg", small_input_shape=(32, 32, 3))
  register(f"{_name}_bn", functools.partial(VGG, stage_sizes=_sizes, batch_norm=True),
           input_shape=(224, 224, 3), paper=_PAPER, num_params=_n_bn, family="vgg",
           small_input_shape=(32, 32, 3))
