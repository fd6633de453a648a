"""``Conv``: a Linen module over ``cnnlab.ops.conv`` with ``flax.linen.Conv``'s parameters.

Parameters: ``kernel`` ``(*kernel_size, C_in/groups, features)`` and ``bias`` ``(features,)``,
same names, shapes and default initialisers as ``flax.linen.Conv``, so checkpoints move between
the two. ``impl`` is an attribute: switching it never changes the parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from cnnlab import ops

Initializer = Any


class Conv(nn.Module):
  features: int
  kernel_size: Sequence[int]
  strides: int | Sequence[int] = 1
  padding: Any = "SAME"
  kernel_dilation: int | Sequence[int] = 1
  feature_group_count: int = 1
  use_bias: bool = True
  padding_mode: str = "zeros"
  impl: str = "lax"
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x):
    ks = tuple(self.kernel_size)
    if x.shape[-1] % self.feature_group_count:
      raise ValueError(f"feature_group_count={self.feature_group_count} must divide the "
                       f"input channels {x.shape[-1]}")
    kernel = self.param("kernel", self.kernel_init,
                        ks + (x.shape[-1] // self.feature_group_count, self.features),
                        self.param_dtype)
    bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = ops.conv(x, kernel, stride=self.strides, padding=self.padding,
                 dilation=self.kernel_dilation, groups=self.feature_group_count,
                 padding_mode=self.padding_mode, impl=self.impl)
    return y if bias is None else y + bias
