"""``ConvTranspose``: a Linen module over ``cnnlab.ops.conv_transpose`` with Flax's parameters.

Parameters ``kernel`` and ``bias`` have the names, shapes, default initialisers and meaning of
``flax.linen.ConvTranspose``: with ``transpose_kernel=False`` the kernel ``(*kernel_size, C_in,
features)`` is applied unflipped to the stride-dilated input (``lax.conv_transpose``), i.e. it is
``flip(w)`` for the torch-style ``w`` of ``ops.conv_transpose``; with ``transpose_kernel=True``
it is the forward-conv kernel ``(*kernel_size, features, C_in)`` whose input-vjp this computes.
``feature_group_count`` (not in Flax; 1 gives Flax's shapes) divides the output-channel axis:
``(*kernel_size, C_in, features/groups)``, transposed ``(*kernel_size, features/groups, C_in)``.
Not supported: Flax's ``mask``, ``precision``, ``'CIRCULAR'`` padding, extra batch dims.

``padding``: ``'SAME'`` / ``'VALID'`` as in Flax; ints or ``(lo, hi)`` pairs follow torch
``ConvTranspose`` (the crop of the full output, with ``output_padding``), NOT Flax's meaning (the
padding of the dilated input). ``impl`` is an attribute: switching it never changes parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from cnnlab import ops
from cnnlab.nn.conv import kernel_and_bias

Initializer = Any


class ConvTranspose(nn.Module):
  """``flax.linen.ConvTranspose``'s fields in its order (no ``mask``, ``precision``), then
  ``output_padding`` (torch's), ``feature_group_count`` and ``impl``."""
  features: int
  kernel_size: int | Sequence[int]
  strides: int | Sequence[int] | None = None
  padding: Any = "SAME"
  kernel_dilation: int | Sequence[int] | None = None
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()
  transpose_kernel: bool = False
  output_padding: int | Sequence[int] = 0
  feature_group_count: int = 1
  impl: str = "lax"

  @nn.compact
  def __call__(self, x):
    ks = (self.kernel_size,) if isinstance(self.kernel_size, int) else tuple(self.kernel_size)
    groups = self.feature_group_count
    if self.features % groups:
      raise ValueError(f"feature_group_count={groups} must divide features={self.features}")
    io = (x.shape[-1], self.features // groups)
    x, kernel, bias = kernel_and_bias(self, x, ks + (io[::-1] if self.transpose_kernel else io))
    if self.transpose_kernel:
      w = jnp.swapaxes(kernel, -1, -2)
    else:
      w = jnp.flip(kernel, axis=tuple(range(len(ks))))
    y = ops.conv_transpose(x, w, stride=self.strides or 1, padding=self.padding,
                           output_padding=self.output_padding,
                           dilation=self.kernel_dilation or 1, groups=groups, impl=self.impl)
    return y if bias is None else y + bias
