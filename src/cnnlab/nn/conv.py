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


def kernel_and_bias(module: nn.Module, x, kernel_shape):
  """``module``'s ``kernel`` (``kernel_shape``) and ``bias`` (``(features,)``, None without
  ``use_bias``) params, promoted with ``x`` to ``module.dtype``: ``(x, kernel, bias)``."""
  kernel = module.param("kernel", module.kernel_init, kernel_shape, module.param_dtype)
  bias = (module.param("bias", module.bias_init, (module.features,), module.param_dtype)
          if module.use_bias else None)
  return nn.dtypes.promote_dtype(x, kernel, bias, dtype=module.dtype)


class Conv(nn.Module):
  """``flax.linen.Conv``'s fields in its order (no ``input_dilation``, ``mask``, ``precision``),
  then ``padding_mode`` (torch's names, see ``cnnlab.ops.padding``) and ``impl``."""
  features: int
  kernel_size: Sequence[int]
  strides: int | Sequence[int] = 1
  padding: Any = "SAME"
  kernel_dilation: int | Sequence[int] = 1
  feature_group_count: int = 1
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()
  padding_mode: str = "zeros"
  impl: str = "lax"

  @nn.compact
  def __call__(self, x):
    if x.shape[-1] % self.feature_group_count:
      raise ValueError(f"feature_group_count={self.feature_group_count} must divide the "
                       f"input channels {x.shape[-1]}")
    shape = (*self.kernel_size, x.shape[-1] // self.feature_group_count, self.features)
    x, kernel, bias = kernel_and_bias(self, x, shape)
    y = ops.conv(x, kernel, stride=self.strides, padding=self.padding,
                 dilation=self.kernel_dilation, groups=self.feature_group_count,
                 padding_mode=self.padding_mode, impl=self.impl)
    return y if bias is None else y + bias
