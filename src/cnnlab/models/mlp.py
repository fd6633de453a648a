"""Multi-layer perceptron on flattened inputs of any shape ``(N, ...)`` -> ``(N, num_classes)``.

It has no conv; ``conv_impl`` is accepted (and checked) so that every registered model takes it.
"""

from __future__ import annotations

from collections.abc import Sequence
import functools

import flax.linen as nn

from cnnlab import ops
from cnnlab.models.blocks import Model
from cnnlab.models.registry import register


class MLP(Model):
  num_classes: int = 10
  hidden: Sequence[int] = (256, 128)
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.conv_impl not in ops.list_impls():
      raise ValueError(f"MLP: conv_impl={self.conv_impl!r} is not one of {ops.list_impls()}")
    x = x.reshape(x.shape[0], -1)
    for i, h in enumerate(self.hidden):
      x = nn.relu(nn.Dense(h, dtype=self.dtype, name=f"dense{i}")(x))
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)


register("mlp", functools.partial(MLP), input_shape=(32, 32, 1), family="mlp")
