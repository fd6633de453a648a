"""A small configurable CNN for experiments on digits (any input size >= 8, any channels).

Three 3x3 conv stages with ``width``, ``2*width``, ``4*width`` channels, each conv followed by a
normalisation and ReLU; the first two stages end with a 2x downsampling; then global average
pooling and a dense classifier.

- ``norm``: ``'batch'`` | ``'group'`` (``num_groups`` groups) | ``'layer'`` (GroupNorm with 1
  group: statistics over H, W and all channels, as Wu & He 2018 define LN for conv features) |
  ``'instance'`` (GroupNorm with 1 channel per group) | ``'none'``.
- ``downsample``: ``'maxpool'`` / ``'avgpool'`` (2x2 window, stride 2) | ``'stride'`` (the stage's
  conv has stride 2) | ``'none'`` (full resolution throughout).
"""

from __future__ import annotations

import functools

import flax.linen as nn

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import Model, classifier_head
from cnnlab.models.registry import register

NORMS = ("batch", "group", "layer", "instance", "none")
DOWNSAMPLES = ("maxpool", "avgpool", "stride", "none")


class SmallCNN(Model):
  num_classes: int = 10
  width: int = 32
  norm: str = "batch"
  num_groups: int = 8
  downsample: str = "maxpool"

  def _norm(self, name):
    if self.norm == "batch":
      return functools.partial(cnn.BatchNorm, momentum=0.9, dtype=self.dtype, name=name)
    groups = {"group": dict(num_groups=self.num_groups), "layer": dict(num_groups=1),
              "instance": dict(num_groups=None, group_size=1)}[self.norm]
    return functools.partial(cnn.GroupNorm, epsilon=1e-5, dtype=self.dtype, name=name, **groups)

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    if self.norm not in NORMS or self.downsample not in DOWNSAMPLES:
      raise ValueError(f"SmallCNN: norm must be one of {NORMS} and downsample one of "
                       f"{DOWNSAMPLES}; got norm={self.norm!r}, downsample={self.downsample!r}")
    conv = functools.partial(cnn.Conv, kernel_size=(3, 3), padding=((1, 1), (1, 1)),
                             use_bias=self.norm == "none", impl=self.conv_impl, dtype=self.dtype)
    x = x_BxHxWxC
    for i, c in enumerate((self.width, 2 * self.width, 4 * self.width)):
      down = i < 2 and self.downsample != "none"
      stride = 2 if down and self.downsample == "stride" else 1
      x = conv(c, strides=stride, name=f"conv{i}")(x)
      if self.norm == "batch":
        x = self._norm(f"norm{i}")()(x, use_running_average=not train)
      elif self.norm != "none":
        x = self._norm(f"norm{i}")()(x)
      x = nn.relu(x)
      if down and self.downsample in ("maxpool", "avgpool"):
        x = (ops.max_pool if self.downsample == "maxpool" else ops.avg_pool)(x, 2)
      self.sow("intermediates", f"stage{i + 1}", x)
    return classifier_head(self, x, functools.partial(nn.Dense, dtype=self.dtype), name="head")


register("small_cnn", functools.partial(SmallCNN), input_shape=(28, 28, 1), family="small_cnn",
         small_input_shape=(8, 8, 1))
