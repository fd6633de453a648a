"""MobileNet v1 (Howard et al. 2017), v2 (Sandler et al. 2018) and v3 (Howard et al. 2019),
NHWC. v2 and v3 follow torchvision's layout exactly (same layers, channel rounding, padding,
parameter counts: v2 3,504,872, v3-large 5,483,032, v3-small 2,542,856 at 1,000 classes).

- v1: 3x3 s2 conv stem, 13 depthwise-separable blocks (3x3 depthwise -> BN -> ReLU -> 1x1 ->
  BN -> ReLU), global average pool, linear. Channels ``make_divisible(c * width, 8)`` (equal
  to the paper's ``width * c`` for widths 1, 0.75, 0.5, 0.25). BN and init as v2 (the paper
  states neither); ``dropout_rate`` 0 by default (not in the paper).
- v2: ReLU6 inverted residuals; torchvision's rows ``(t, c, n, s)``; hidden width
  ``round(C_in * t)``; last conv ``1280 * max(1, width)``; dropout 0.2 before the classifier.
- v3: hard-swish / ReLU per block, SE with ``make_divisible(expanded / 4, 8)`` squeeze channels,
  ReLU and hard-sigmoid gate; head ``Dense(1280 | 1024) -> hard-swish -> dropout 0.2 -> Dense``.

Padding is symmetric ``(k-1)//2`` like torch (never 'SAME', which shifts stride-2 convs).
BatchNorm: torchvision v2 uses torch's defaults (momentum 0.1, eps 1e-5) = Flax ``momentum=0.9,
epsilon=1e-5``; v3 uses torch momentum 0.01, eps 1e-3 = Flax ``momentum=0.99, epsilon=1e-3``.
Init as torchvision: convs ``kaiming_normal_(mode='fan_out')``, BN scale 1 / bias 0, linear
weights N(0, 0.01), all biases 0.

Sown intermediates: ``stem``, ``stage1``...``stageK`` (each a maximal run of blocks at one
resolution, ending just before the next stride-2 block) and ``pre_logits`` (globally pooled
features before the classifier head). ``drop_path_rate`` (v2/v3, not in torchvision, default 0)
grows linearly with block index like EfficientNet's stochastic depth.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp

from cnnlab import nn as cnn
from cnnlab.models.blocks import (ConvNormAct, InvertedResidual, Model, batch_norm, check_image,
                                  check_rates, kaiming_normal_fan_out, make_divisible, stage_ends)
from cnnlab.models.registry import register

# (C_out, stride) of the 13 depthwise-separable blocks (paper Table 1).
V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
             (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))

# (expansion t, C_out, repeats n, first stride s) (torchvision / paper Table 2).
V2_ROWS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1))

# (C_in, kernel, expanded, C_out, SE, activation, stride) (torchvision / paper Tables 1-2).
V3_BLOCKS = {
    "large": ((16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2),
              (24, 3, 72, 24, False, "RE", 1), (24, 5, 72, 40, True, "RE", 2),
              (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
              (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1),
              (80, 3, 184, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
              (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
              (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1),
              (160, 5, 960, 160, True, "HS", 1)),
    "small": ((16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2),
              (24, 3, 88, 24, False, "RE", 1), (24, 5, 96, 40, True, "HS", 2),
              (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
              (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1),
              (48, 5, 288, 96, True, "HS", 2), (96, 5, 576, 96, True, "HS", 1),
              (96, 5, 576, 96, True, "HS", 1)),
}
V3_LAST_CHANNEL = {"large": 1280, "small": 1024}
_ACT = {"RE": nn.relu, "HS": nn.hard_swish}

_dense_init = nn.initializers.normal(0.01)  # torchvision: nn.init.normal_(w, 0, 0.01)


class MobileNet(Model):
  """What v1-v3 share: options, checks, the ``conv`` / ``norm`` ModuleDefs (torchvision's init;
  BN ``bn = (momentum, epsilon)`` in Flax's convention) and the classifier head."""
  num_classes: int = 1000
  width_multiplier: float = 1.0
  dropout_rate: float = 0.0
  bn = (0.9, 1e-5)  # torch's defaults (momentum 0.1); a class constant, not a field

  def layers(self, x, train: bool, **rates):
    """Checks ``x`` and the options (``rates``: beyond ``dropout_rate``); ``(conv, norm)``."""
    owner = type(self).__name__
    check_image(owner, x)
    if not self.width_multiplier > 0:
      raise ValueError(f"{owner}: width_multiplier must be > 0, got {self.width_multiplier!r}")
    check_rates(owner, dropout_rate=self.dropout_rate, **rates)
    conv = functools.partial(cnn.Conv, use_bias=False, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=kaiming_normal_fan_out)
    return conv, batch_norm(train, self.dtype, *self.bn)

  def head(self, x, train: bool, hidden: int | None = None):
    """Global average pool (sown as ``pre_logits``) -> [Dense hidden -> hard-swish] -> dropout
    -> Dense ``num_classes``."""
    x = jnp.mean(x, axis=(1, 2))
    self.sow("intermediates", "pre_logits", x)
    if hidden is not None:
      x = nn.hard_swish(nn.Dense(hidden, dtype=self.dtype, kernel_init=_dense_init,
                                 name="classifier_hidden")(x))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=_dense_init,
                    name="classifier")(x)


class MobileNetV1(MobileNet):
  """``(N, H, W, C) -> (N, num_classes)``; output stride 32."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    conv, norm = self.layers(x, train)
    ch = lambda c: make_divisible(c * self.width_multiplier, 8)
    cna = functools.partial(ConvNormAct, conv=conv, norm=norm, act=nn.relu)
    x = cna(ch(32), 3, strides=2, name="stem_conv")(x)
    self.sow("intermediates", "stem", x)
    ends = stage_ends(s for _, s in V1_BLOCKS)
    for i, (c, s) in enumerate(V1_BLOCKS):
      x = cna(x.shape[-1], 3, strides=s, groups=x.shape[-1], name=f"block{i}_depthwise")(x)
      x = cna(ch(c), 1, name=f"block{i}_pointwise")(x)
      if i in ends:
        self.sow("intermediates", f"stage{ends.index(i) + 1}", x)
    return self.head(x, train)


class MobileNetV2(MobileNet):
  """torchvision ``mobilenet_v2``: ``(N, H, W, C) -> (N, num_classes)``; output stride 32."""
  dropout_rate: float = 0.2
  drop_path_rate: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    conv, norm = self.layers(x, train, drop_path_rate=self.drop_path_rate)
    w = self.width_multiplier
    x = ConvNormAct(make_divisible(32 * w), 3, conv, norm, strides=2, act=nn.relu6,
                    name="stem_conv")(x)
    self.sow("intermediates", "stem", x)
    blocks = [(make_divisible(c * w), s if j == 0 else 1, t)
              for t, c, n, s in V2_ROWS for j in range(n)]
    ends = stage_ends(s for _, s, _ in blocks)
    for i, (c, s, t) in enumerate(blocks):
      x = InvertedResidual(c, int(round(x.shape[-1] * t)), 3, s, conv, norm, act=nn.relu6,
                           drop_path_rate=self.drop_path_rate * i / len(blocks),
                           name=f"block{i}")(x, train)
      if i in ends:
        self.sow("intermediates", f"stage{ends.index(i) + 1}", x)
    x = ConvNormAct(make_divisible(1280 * max(1.0, w)), 1, conv, norm, act=nn.relu6,
                    name="head_conv")(x)
    return self.head(x, train)


class MobileNetV3(MobileNet):
  """torchvision ``mobilenet_v3_{large,small}``: ``(N, H, W, C) -> (N, num_classes)``."""
  variant: str = "large"
  dropout_rate: float = 0.2
  drop_path_rate: float = 0.0
  bn = (0.99, 1e-3)  # torch momentum 0.01, eps 1e-3 (torchvision)

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.variant not in V3_BLOCKS:
      raise ValueError(f"MobileNetV3: variant must be one of {sorted(V3_BLOCKS)}, "
                       f"got {self.variant!r}")
    conv, norm = self.layers(x, train, drop_path_rate=self.drop_path_rate)
    ch = lambda c: make_divisible(c * self.width_multiplier)
    rows = V3_BLOCKS[self.variant]
    x = ConvNormAct(ch(rows[0][0]), 3, conv, norm, strides=2, act=nn.hard_swish,
                    name="stem_conv")(x)
    self.sow("intermediates", "stem", x)
    ends = stage_ends(r[-1] for r in rows)
    for i, (_, k, e, c, se, act, s) in enumerate(rows):
      x = InvertedResidual(ch(c), ch(e), k, s, conv, norm, act=_ACT[act],
                           se_features=make_divisible(ch(e) // 4) if se else 0,
                           se_conv=functools.partial(conv, use_bias=True), se_act=nn.relu,
                           se_gate=nn.hard_sigmoid,
                           drop_path_rate=self.drop_path_rate * i / len(rows),
                           name=f"block{i}")(x, train)
      if i in ends:
        self.sow("intermediates", f"stage{ends.index(i) + 1}", x)
    x = ConvNormAct(6 * x.shape[-1], 1, conv, norm, act=nn.hard_swish, name="head_conv")(x)
    return self.head(x, train, hidden=ch(V3_LAST_CHANNEL[self.variant]))


_V1 = "Howard et al. 2017, MobileNets: Efficient CNNs for Mobile Vision Applications"
_V2 = "Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks"
_V3 = "Howard et al. 2019, Searching for MobileNetV3"
_kw = dict(input_shape=(224, 224, 3), family="mobilenet", small_input_shape=(32, 32, 3))
# v1: the paper publishes only a rounded count (4.2M), so no exact reference is registered.
register("mobilenet_v1", functools.partial(MobileNetV1), paper=_V1, **_kw)
register("mobilenet_v2", functools.partial(MobileNetV2), paper=_V2, num_params=3_504_872, **_kw)
register("mobilenet_v3_large", functools.partial(MobileNetV3, variant="large"), paper=_V3,
         num_params=5_483_032, **_kw)
register("mobilenet_v3_small", functools.partial(MobileNetV3, variant="small"), paper=_V3,
         num_params=2_542_856, **_kw)
