"""ImageNet ResNets (He et al. 2016), ResNeXt (Xie et al. 2017), Wide ResNet-50-2, torchvision
layout ("ResNet v1.5": the stride of a bottleneck is on its 3x3 conv).

Input ``(N, H, W, 3)`` -> logits ``(N, num_classes)``. Stem: 7x7/2 conv (pad 3), BN, ReLU,
3x3/2 max-pool (pad 1); four stages of blocks (64, 128, 256, 512 planes; stages 2-4 start with
stride 2); global average pool; dense. All paddings are explicit and symmetric, as in torch, so
outputs match torchvision given the same weights (conv kernels HWIO = OIHW transposed).
``small_stem=True``: a 3x3/1 conv and no max-pool, for 32x32 images. ``remat``: a policy of
``blocks.REMAT_POLICIES`` rematerialising every block ('' = none).

Module names follow torchvision (``conv1``, ``bn1``, ``layer{i}_{j}/conv1``,
``layer{i}_{j}/downsample_conv``, ``fc``). Initialisation as torchvision: convs kaiming-normal
fan_out, BN scale 1 / bias 0 (last BN of each block 0 with ``zero_init_residual``), dense
weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)). BN: torch momentum 0.1 (Flax 0.9), eps 1e-5.
Sown intermediates: ``stem``, ``stage1``...``stage4``, ``pre_logits``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import (BasicBlock, Model, ModuleDef, ResidualBlock, batch_norm,
                                  check_rates, classifier_head, kaiming_normal_fan_out, remat,
                                  torch_linear)
from cnnlab.models.registry import register


class Bottleneck(ResidualBlock):
  """1x1 reduce, 3x3 (stride, ``groups``), 1x1 expand to ``4*planes``, each + norm;
  ``width = planes * base_width / 64 * groups``."""
  groups: int = 1
  base_width: int = 64

  @nn.compact
  def __call__(self, x, train: bool = False):
    width = int(self.planes * (self.base_width / 64.0)) * self.groups
    y = nn.relu(self.norm(name="bn1")(self.conv(width, (1, 1), name="conv1")(x)))
    y = self.conv(width, (3, 3), self.strides, padding=((1, 1), (1, 1)),
                  feature_group_count=self.groups, name="conv2")(y)
    y = nn.relu(self.norm(name="bn2")(y))
    y = self.conv(self.planes * 4, (1, 1), name="conv3")(y)
    y = self.norm(name="bn3", scale_init=self.last_scale_init())(y)
    return self.residual(x, y, train)


class ResNet(Model):
  """ResNet / ResNeXt / Wide ResNet; ``block_cls`` and ``stage_sizes`` choose the variant."""
  stage_sizes: Sequence[int]
  block_cls: ModuleDef
  num_classes: int = 1000
  groups: int = 1
  width_per_group: int = 64
  small_stem: bool = False
  zero_init_residual: bool = False
  dropout_rate: float = 0.0
  drop_path_rate: float = 0.0
  remat: str = ""

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    block_cls = remat(self.block_cls, self.remat)
    check_rates("ResNet", dropout_rate=self.dropout_rate, drop_path_rate=self.drop_path_rate)
    if self.block_cls is BasicBlock and (self.groups, self.width_per_group) != (1, 64):
      raise ValueError("ResNet: BasicBlock supports only groups=1 and width_per_group=64 (as "
                       f"torchvision), got {self.groups} and {self.width_per_group}")
    conv = functools.partial(cnn.Conv, use_bias=False, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=kaiming_normal_fan_out)
    norm = batch_norm(train, self.dtype)
    if self.small_stem:
      x = conv(64, (3, 3), padding=((1, 1), (1, 1)), name="conv1")(x_BxHxWxC)
      x = nn.relu(norm(name="bn1")(x))
    else:
      x = conv(64, (7, 7), 2, padding=((3, 3), (3, 3)), name="conv1")(x_BxHxWxC)
      x = ops.max_pool(nn.relu(norm(name="bn1")(x)), 3, 2, 1)
    self.sow("intermediates", "stem", x)
    block_kw = ({} if self.block_cls is BasicBlock
                else dict(groups=self.groups, base_width=self.width_per_group))
    n_blocks, k = sum(self.stage_sizes), 0
    for i, n in enumerate(self.stage_sizes):
      for j in range(n):
        x = block_cls(64 * 2 ** i, 2 if i > 0 and j == 0 else 1, conv, norm,
                           self.drop_path_rate * k / max(n_blocks - 1, 1),
                           self.zero_init_residual, name=f"layer{i + 1}_{j}",
                           **block_kw)(x, train)
        k += 1
      self.sow("intermediates", f"stage{i + 1}", x)
    return classifier_head(self, x, torch_linear(x.shape[-1], self.dtype),
                           dropout_rate=self.dropout_rate, train=train)


_HE16 = "He, Zhang, Ren & Sun 2016, Deep residual learning for image recognition"
_XIE17 = "Xie, Girshick, Dollar, Tu & He 2017, Aggregated residual transformations (ResNeXt)"
_ZAG16 = "Zagoruyko & Komodakis 2016, Wide residual networks"
# Reference counts: torchvision's model docs (num_params, 1000 classes).
_VARIANTS = (
    ("resnet18", (2, 2, 2, 2), BasicBlock, {}, _HE16, 11_689_512),
    ("resnet34", (3, 4, 6, 3), BasicBlock, {}, _HE16, 21_797_672),
    ("resnet50", (3, 4, 6, 3), Bottleneck, {}, _HE16, 25_557_032),
    ("resnet101", (3, 4, 23, 3), Bottleneck, {}, _HE16, 44_549_160),
    ("resnet152", (3, 8, 36, 3), Bottleneck, {}, _HE16, 60_192_808),
    ("resnext50_32x4d", (3, 4, 6, 3), Bottleneck, dict(groups=32, width_per_group=4), _XIE17,
     25_028_904),
    ("resnext101_32x8d", (3, 4, 23, 3), Bottleneck, dict(groups=32, width_per_group=8), _XIE17,
     88_791_336),
    ("wide_resnet50_2", (3, 4, 6, 3), Bottleneck, dict(width_per_group=128), _ZAG16,
     68_883_240),
)
for _name, _stages, _block, _kw, _paper, _n in _VARIANTS:
  register(_name, functools.partial(ResNet, stage_sizes=_stages, block_cls=_block, **_kw),
           input_shape=(224, 224, 3), paper=_paper, num_params=_n, family="resnet",
           small_input_shape=(32, 32, 3))
