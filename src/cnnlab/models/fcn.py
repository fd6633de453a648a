"""FCN-8s (Long, Shelhamer & Darrell 2015, "Fully convolutional networks for semantic
segmentation"): ``(N, H, W, C) -> (N, H, W, num_classes)`` per-pixel logits, any ``H, W``.

Backbone: VGG-like stages (``stage_convs[i]`` x [3x3 conv, padding 1, ReLU] with
``stage_features[i]`` filters, modules ``stage{i}``), each closed by a 2x2 max pool (``P =
len(stage_features) >= 3`` pools); ``fc6`` (``fc_kernel`` conv, ReLU, dropout), ``fc7`` (1x1,
ReLU, dropout), ``score_fr`` (1x1 -> classes). Decoder (the paper's 8s net for ``P = 5``):
``upscore2`` (x2) of the scores + ``score_pool4`` (1x1 on the pool before the last) ->
``upscore_pool4`` (x2) + ``score_pool3`` (1x1 on the pool two before the last) -> ``upscore8``
(x``2**(P-2)``, 8 for ``P = 5``). Every upsampling is a ``cnn.ConvTranspose`` (kernel
``2f - f%2``, stride ``f``, no bias) initialised to bilinear upsampling (``upsample.
bilinear_init``) and learned; the paper keeps the last one fixed (freeze ``upscore8`` to match).

Odd sizes: the input is zero-padded on the high side to a multiple of ``2**P`` (every pool exact,
every skip the size of its upsampled partner), the logits cropped back to ``[:H, :W]`` (the
paper pads by 100 and crops with offsets instead). ``fc6`` pads ``(k-1)//2`` low, ``k//2`` high.

Widths default small (64x64x1 digit canvases on a CPU): stages ``(8, 16, 32, 64, 64)``, convs
``(2, 2, 3, 3, 3)`` (VGG-16's pattern), ``fc 128``, ``fc_kernel 3``. The paper (VGG-16): stages
``(64, 128, 256, 512, 512)``, fc ``4096``, ``fc_kernel 7``. Convs are He-initialised
(``kaiming_normal_fan_in``), biases 0. Parameters: 358,137 at the defaults (1 input channel, 11
classes); 134,489,759 at the paper's sizes (3 channels, 21 classes; this code's count).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import (ConvReLUStack, Model, check_image, check_rates,
                                  kaiming_normal_fan_in, pad_to_multiple)
from cnnlab.models.registry import register
from cnnlab.models.upsample import Upsample, bilinear_init, conv_transpose_def


class FCN8s(Model):
  num_classes: int = 11
  stage_features: Sequence[int] = (8, 16, 32, 64, 64)
  stage_convs: Sequence[int] = (2, 2, 3, 3, 3)
  fc_features: int = 128
  fc_kernel: int = 3
  dropout_rate: float = 0.5
  transpose_impl: str = "lax"

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    check_image("FCN8s", x_BxHxWxC)
    check_rates("FCN8s", dropout_rate=self.dropout_rate)
    num_pools = len(self.stage_features)
    if num_pools < 3 or len(self.stage_convs) != num_pools:
      raise ValueError(f"FCN8s: stage_features needs >= 3 entries and stage_convs as many, got "
                       f"{self.stage_features!r}, {self.stage_convs!r}")
    conv = functools.partial(cnn.Conv, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=kaiming_normal_fan_in)
    up = functools.partial(Upsample, conv_transpose=conv_transpose_def(
        "FCN8s", self.transpose_impl, self.dtype, kernel_init=bilinear_init, use_bias=False))
    drop = nn.Dropout(self.dropout_rate, deterministic=not train)
    h, w = x_BxHxWxC.shape[1:3]

    x = pad_to_multiple(x_BxHxWxC, 2 ** num_pools)
    pools = []
    for i, (f, n) in enumerate(zip(self.stage_features, self.stage_convs)):
      x = ops.max_pool(ConvReLUStack(f, conv, n, name=f"stage{i}")(x), 2)
      pools.append(x)
    k = self.fc_kernel
    x = conv(self.fc_features, (k, k), padding=(((k - 1) // 2, k // 2),) * 2, name="fc6")(x)
    x = drop(nn.relu(x))
    x = drop(nn.relu(conv(self.fc_features, (1, 1), name="fc7")(x)))
    score = conv(self.num_classes, (1, 1), name="score_fr")(x)

    c = self.num_classes
    score = up(c, name="upscore2")(score) + conv(c, (1, 1), name="score_pool4")(pools[-2])
    score = up(c, name="upscore_pool4")(score) + conv(c, (1, 1), name="score_pool3")(pools[-3])
    f = 2 ** (num_pools - 2)
    score = up(c, factor=f, kernel_size=2 * f - f % 2, name="upscore8")(score)
    return score[:, :h, :w]


register("fcn8s", functools.partial(FCN8s), input_shape=(64, 64, 1), family="dense",
         paper="Long, Shelhamer & Darrell 2015, Fully convolutional networks for semantic "
               "segmentation (FCN-8s)", small_input_shape=(32, 32, 1))
