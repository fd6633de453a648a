"""``shift`` conv: a sum over kernel offsets of (strided input slice) x (kernel slice) matmuls.

``y = sum_k x_pad[:, o*s + k*d, :] @ w[k]`` over the ``prod(window)`` offsets ``k``: no patch
matrix is materialised (peak memory ~ one output), each term is an ``(N*prod(out), C_in/groups)``
x ``(C_in/groups, C_out)`` matmul. Fast for few input channels (LeNet's 1-channel 5x5 conv);
the backward pass is ``K`` scatter-adds of slices, which is slower.
"""

from __future__ import annotations

import numpy as np

from cnnlab.ops import padding as padlib
from cnnlab.ops.conv_case import output_spatial
from cnnlab.ops.conv_parts import grouped_matmul, window_slice
from cnnlab.ops.conv_registry import register_impl


@register_impl("shift")
def conv_shift(x, w, *, stride, pads, dilation, groups):
  window = w.shape[:-2]
  out = output_spatial(x.shape[1:-1], window, stride, pads, dilation)
  xp = padlib.pad_input(x, pads, "zeros")
  y = 0
  for k in np.ndindex(*window):
    x_k = window_slice(xp, k, stride, dilation, out)
    y = y + grouped_matmul(x_k[..., None, :], w[k][None], groups)
  return y.astype(x.dtype)
