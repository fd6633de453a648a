"""EfficientNet B0-B7 (Tan & Le 2019), NHWC, in torchvision's layout (same layers, channel
rounding, padding and parameter counts, e.g. B0 5,288,548 at 1,000 classes).

Stem 3x3 s2 conv (``make_divisible(32 * width, 8)``) -> SiLU; MBConv blocks from the B0 rows
``(expand, kernel, stride, C_in, C_out, repeats)`` with channels ``make_divisible(c * width, 8)``
and repeats ``ceil(n * depth)``; 1x1 head conv to ``4 * C_last`` -> SiLU; global average pool
(sown as ``pre_logits``) -> dropout -> Dense. MBConv: [1x1 expand to
``make_divisible(C_in * expand, 8)``] -> depthwise kxk -> SE (squeeze ``max(1, C_in // 4)``, SiLU,
sigmoid) -> 1x1 project, with stochastic depth on the residual branch at rate
``drop_path_rate * block_index / num_blocks`` (torchvision's ``stochastic_depth_prob``, 0.2).

BatchNorm as torchvision: B0-B4 use torch's defaults (momentum 0.1, eps 1e-5) = Flax
``bn_momentum=0.9, bn_epsilon=1e-5``; B5-B7 use torch momentum 0.01, eps 1e-3 = Flax
``bn_momentum=0.99, bn_epsilon=1e-3`` (the TF original's values, used for all variants by
TF/timm). Init as torchvision: convs ``kaiming_normal_(mode='fan_out')``, BN 1/0, classifier
weights ``U(-1/sqrt(num_classes), 1/sqrt(num_classes))``, biases 0. Padding symmetric
``(k-1)//2`` like torch (not TF's 'SAME').

Sown intermediates: ``stem``, ``stage1``...``stage5`` (maximal runs of blocks at one resolution:
output strides 2, 4, 8, 16, 32) and ``pre_logits``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import flax.linen as nn

from cnnlab import nn as cnn
from cnnlab.models.blocks import (ConvNormAct, InvertedResidual, Model, batch_norm, check_image,
                                  check_rates, classifier_head, kaiming_normal_fan_out,
                                  make_divisible, stage_ends)
from cnnlab.models.registry import register

# B0 rows (expand ratio, kernel, stride, C_in, C_out, repeats) (paper Table 1 / torchvision).
B0_ROWS = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
           (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
           (6, 3, 1, 192, 320, 1))

# name: (width, depth, dropout, input size, torch-style BN (momentum, eps) in Flax terms).
_TORCH_BN, _TF_BN = (0.9, 1e-5), (0.99, 1e-3)
VARIANTS = {
    "b0": (1.0, 1.0, 0.2, 224, _TORCH_BN), "b1": (1.0, 1.1, 0.2, 240, _TORCH_BN),
    "b2": (1.1, 1.2, 0.3, 288, _TORCH_BN), "b3": (1.2, 1.4, 0.3, 300, _TORCH_BN),
    "b4": (1.4, 1.8, 0.4, 380, _TORCH_BN), "b5": (1.6, 2.2, 0.4, 456, _TF_BN),
    "b6": (1.8, 2.6, 0.5, 528, _TF_BN), "b7": (2.0, 3.1, 0.5, 600, _TF_BN),
}
# torchvision's documented trainable-parameter counts (1,000 classes).
NUM_PARAMS = {"b0": 5_288_548, "b1": 7_794_184, "b2": 9_109_994, "b3": 12_233_232,
              "b4": 19_341_616, "b5": 30_389_784, "b6": 43_040_704, "b7": 66_347_960}


class MBConvSpec(NamedTuple):
  expand_ratio: int
  kernel: int
  stride: int
  in_features: int
  out_features: int
  drop_path_rate: float


def mbconv_specs(width: float, depth: float, drop_path_rate: float) -> list[MBConvSpec]:
  """The MBConv blocks of an EfficientNet scaled by ``width`` / ``depth``, in order."""
  rows = [(e, k, s, make_divisible(ci * width), make_divisible(co * width), math.ceil(n * depth))
          for e, k, s, ci, co, n in B0_ROWS]
  total = sum(r[-1] for r in rows)
  specs = []
  for e, k, s, ci, co, n in rows:
    for j in range(n):
      specs.append(MBConvSpec(e, k, s if j == 0 else 1, ci if j == 0 else co, co,
                              drop_path_rate * len(specs) / total))
  return specs


class EfficientNet(Model):
  """``(N, H, W, C) -> (N, num_classes)``; output stride 32. Defaults = B0."""
  width_multiplier: float = 1.0
  depth_multiplier: float = 1.0
  num_classes: int = 1000
  dropout_rate: float = 0.2
  drop_path_rate: float = 0.2
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, train: bool = False):
    check_image("EfficientNet", x)
    for name in ("width_multiplier", "depth_multiplier"):
      if not getattr(self, name) > 0:
        raise ValueError(f"EfficientNet: {name} must be > 0, got {getattr(self, name)!r}")
    check_rates("EfficientNet", dropout_rate=self.dropout_rate,
                drop_path_rate=self.drop_path_rate)
    conv = functools.partial(cnn.Conv, use_bias=False, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=kaiming_normal_fan_out)
    norm = batch_norm(train, self.dtype, self.bn_momentum, self.bn_epsilon)
    specs = mbconv_specs(self.width_multiplier, self.depth_multiplier, self.drop_path_rate)
    x = ConvNormAct(specs[0].in_features, 3, conv, norm, strides=2, act=nn.silu,
                    name="stem_conv")(x)
    self.sow("intermediates", "stem", x)
    ends = stage_ends(b.stride for b in specs)
    for i, b in enumerate(specs):
      x = InvertedResidual(b.out_features, make_divisible(b.in_features * b.expand_ratio),
                           b.kernel, b.stride, conv, norm, act=nn.silu,
                           se_features=max(1, b.in_features // 4),
                           se_conv=functools.partial(conv, use_bias=True), se_act=nn.silu,
                           se_gate=nn.sigmoid, drop_path_rate=b.drop_path_rate,
                           name=f"block{i}")(x, train)
      if i in ends:
        self.sow("intermediates", f"stage{ends.index(i) + 1}", x)
    x = ConvNormAct(4 * x.shape[-1], 1, conv, norm, act=nn.silu, name="head_conv")(x)
    # torchvision: U(-1/sqrt(fan_out), 1/sqrt(fan_out)) == variance_scaling(1/3, fan_out, uniform).
    init = nn.initializers.variance_scaling(1 / 3, "fan_out", "uniform")
    dense = functools.partial(nn.Dense, dtype=self.dtype, kernel_init=init)
    return classifier_head(self, x, dense, dropout_rate=self.dropout_rate, train=train,
                           name="classifier")


_PAPER = "Tan & Le 2019, EfficientNet: Rethinking Model Scaling for CNNs"
for _name, (_w, _d, _drop, _size, (_mom, _eps)) in VARIANTS.items():
  register(f"efficientnet_{_name}",
           functools.partial(EfficientNet, width_multiplier=_w, depth_multiplier=_d,
                             dropout_rate=_drop, bn_momentum=_mom, bn_epsilon=_eps),
           input_shape=(_size, _size, 3), paper=_PAPER, num_params=NUM_PARAMS[_name],
           family="efficientnet", small_input_shape=(32, 32, 3))
