"""ShuffleNet v1 (Zhang et al. 2018) and v2 (Ma et al. 2018), ``(N, 224, 224, 3)`` NHWC.

Both: 3x3/2 conv 24 + BN + ReLU -> 3x3/2 max pool (padding 1) -> three stages of units (the first
of each with stride 2; repeats 4, 8, 4) -> [v2: 1x1 conv] -> global average pool -> dense.

v1 unit (paper fig. 2b/c): 1x1 group conv to ``C_out/4`` + BN + ReLU -> channel shuffle -> 3x3
depthwise (stride s) + BN -> 1x1 group conv + BN; stride 1: ``relu(x + branch)``; stride 2: the
branch gives ``C_out - C_in`` channels, ``relu(concat(avg_pool_3x3/2(x), branch))``. The first 1x1
of stage 2 is not grouped (24 input channels). Stage widths are the paper's Table 1 (1x) for
``groups`` in 1, 2, 3, 4, 8. Concat order and the bias-free convs follow Megvii's reference code
(megvii-model/ShuffleNet-Series); the classifier has a bias.

v2 unit (torchvision layout, names mirror its ``nn.Sequential`` indices): stride 1 splits the
channels in halves, keeps the first and sends the second through 1x1 + BN + ReLU -> 3x3 depthwise
+ BN -> 1x1 + BN + ReLU; stride 2 sends the whole input through both a depthwise branch (3x3/2 dw
+ BN -> 1x1 + BN + ReLU) and that branch; the halves are concatenated and shuffled with 2 groups.

Channel shuffle (paper fig. 1, torchvision): view ``C`` as ``(groups, C/groups)``, transpose,
flatten. Initialisation: torch's layer defaults (kernels and dense biases U(+-1/sqrt(fan_in))),
as torchvision's ShuffleNetV2, used for v1 too (its paper gives none); BN scale 1, bias 0, momentum
as torch's 0.1, eps 1e-5. Sown: ``stem`` (after the max pool), ``stage1``..``stage3`` (torch's
``stage2``..``stage4``), ``pre_logits``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import (Model, ModuleDef, batch_norm, classifier_head,
                                  torch_default_kernel_init, torch_linear)
from cnnlab.models.registry import register

# Paper Table 1: output channels of stages 2-4 at 1x for each group count.
V1_STAGE_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                     4: (272, 544, 1088), 8: (384, 768, 1536)}
STAGE_REPEATS = (4, 8, 4)


def channel_shuffle(x_BxHxWxC, groups: int):
  """Channel ``g * (C/groups) + j`` moves to ``j * groups + g``."""
  *lead, c = x_BxHxWxC.shape
  return x_BxHxWxC.reshape(*lead, groups, c // groups).swapaxes(-1, -2).reshape(*lead, c)


class ShuffleV1Unit(nn.Module):
  features: int
  strides: int
  groups: int
  first_groups: int
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x):
    c_in, mid = x.shape[-1], self.features // 4
    out = self.features - c_in if self.strides == 2 else self.features
    y = self.conv(mid, (1, 1), feature_group_count=self.first_groups, name="pw1")(x)
    y = channel_shuffle(nn.relu(self.norm(name="pw1_bn")(y)), self.groups)
    y = self.conv(mid, (3, 3), strides=self.strides, padding=1, feature_group_count=mid,
                  name="dw")(y)
    y = self.conv(out, (1, 1), feature_group_count=self.groups, name="pw2")(
        self.norm(name="dw_bn")(y))
    y = self.norm(name="pw2_bn")(y)
    if self.strides == 1:
      return nn.relu(x + y)
    return nn.relu(jnp.concatenate([ops.avg_pool(x, 3, 2, 1), y], axis=-1))


class ShuffleV2Unit(nn.Module):
  features: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x):
    half, conv, norm = self.features // 2, self.conv, self.norm
    if self.strides == 1:
      x1, x2 = jnp.split(x, 2, axis=-1)
    else:
      c = x.shape[-1]
      x1 = conv(c, (3, 3), strides=2, padding=1, feature_group_count=c, name="branch1_0")(x)
      x1 = conv(half, (1, 1), name="branch1_2")(norm(name="branch1_1")(x1))
      x1, x2 = nn.relu(norm(name="branch1_3")(x1)), x
    y = nn.relu(norm(name="branch2_1")(conv(half, (1, 1), name="branch2_0")(x2)))
    y = conv(half, (3, 3), strides=self.strides, padding=1, feature_group_count=half,
             name="branch2_3")(y)
    y = conv(half, (1, 1), name="branch2_5")(norm(name="branch2_4")(y))
    y = nn.relu(norm(name="branch2_6")(y))
    return channel_shuffle(jnp.concatenate([x1, y], axis=-1), 2)


class ShuffleNet(Model):
  """What v1 and v2 share: options, the ``conv`` / ``norm`` ModuleDefs, the stem (3x3/2 conv 24
  + BN + ReLU -> 3x3/2 max pool, modules ``stem_names``) and the head (global average pool ->
  dropout -> dense ``fc``); a version defines ``check()`` and ``stages(x, conv, norm)``."""
  num_classes: int = 1000
  dropout_rate: float = 0.0
  stem_names = ("conv1", "conv1_bn")  # a class constant, not a field

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    self.check()
    conv = functools.partial(cnn.Conv, use_bias=False, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=torch_default_kernel_init)
    norm = batch_norm(train, self.dtype)
    x = conv(24, (3, 3), strides=2, padding=1, name=self.stem_names[0])(x_BxHxWxC)
    x = ops.max_pool(nn.relu(norm(name=self.stem_names[1])(x)), 3, 2, 1)
    self.sow("intermediates", "stem", x)
    x = self.stages(x, conv, norm)
    return classifier_head(self, x, torch_linear(x.shape[-1], self.dtype),
                           dropout_rate=self.dropout_rate, train=train)


class ShuffleNetV1(ShuffleNet):
  groups: int = 3

  def check(self):
    if self.groups not in V1_STAGE_CHANNELS:
      raise ValueError(f"ShuffleNetV1: groups must be one of {sorted(V1_STAGE_CHANNELS)}, "
                       f"got {self.groups!r}")

  def stages(self, x, conv, norm):
    for s, (repeats, features) in enumerate(zip(STAGE_REPEATS, V1_STAGE_CHANNELS[self.groups])):
      for i in range(repeats):
        x = ShuffleV1Unit(features, 2 if i == 0 else 1, self.groups,
                          1 if s == 0 and i == 0 else self.groups, conv, norm,
                          name=f"stage{s + 2}_{i}")(x)
      self.sow("intermediates", f"stage{s + 1}", x)
    return x


class ShuffleNetV2(ShuffleNet):
  stage_channels: Sequence[int] = (116, 232, 464, 1024)  # stages 2-4, conv5
  stem_names = ("conv1_0", "conv1_1")

  def check(self):
    if len(self.stage_channels) != 4 or any(c % 2 for c in self.stage_channels[:3]):
      raise ValueError("ShuffleNetV2: stage_channels must be 4 ints (stages 2-4 even, conv5), "
                       f"got {self.stage_channels!r}")

  def stages(self, x, conv, norm):
    for s, (repeats, features) in enumerate(zip(STAGE_REPEATS, self.stage_channels[:3])):
      for i in range(repeats):
        x = ShuffleV2Unit(features, 2 if i == 0 else 1, conv, norm, name=f"stage{s + 2}_{i}")(x)
      self.sow("intermediates", f"stage{s + 1}", x)
    x = conv(self.stage_channels[3], (1, 1), name="conv5_0")(x)
    return nn.relu(norm(name="conv5_1")(x))


_V1 = "Zhang et al. 2018, ShuffleNet: an extremely efficient CNN for mobile devices"
_V2 = "Ma et al. 2018, ShuffleNet V2: practical guidelines for efficient CNN architecture design"
for _g in V1_STAGE_CHANNELS:
  register(f"shufflenet_v1_g{_g}", functools.partial(ShuffleNetV1, groups=_g),
           input_shape=(224, 224, 3), paper=_V1, family="shufflenet",
           small_input_shape=(32, 32, 3))
# torchvision's documented trainable-parameter counts.
for _name, _channels, _count in (("x0_5", (48, 96, 192, 1024), 1_366_792),
                                 ("x1_0", (116, 232, 464, 1024), 2_278_604),
                                 ("x1_5", (176, 352, 704, 1024), 3_503_624),
                                 ("x2_0", (244, 488, 976, 2048), 7_393_996)):
  register(f"shufflenet_v2_{_name}", functools.partial(ShuffleNetV2, stage_channels=_channels),
           input_shape=(224, 224, 3), paper=_V2, num_params=_count, family="shufflenet",
           small_input_shape=(32, 32, 3))
