"""``im2col`` conv: an explicit patch matrix built by strided slicing, then one matmul.

``patches(x)`` stacks, for each of the ``K = prod(window)`` kernel offsets (row-major), the strided
slice of the padded input under that offset: ``(N, *out, K, C_in)``. Flattened to
``(N*prod(out), K*C_in)`` it multiplies ``w.reshape(K*C_in, C_out)``. The patch matrix holds
``K`` copies of the input (the memory cost ``shift`` avoids). Plain jnp slicing rather than
``lax.conv_general_dilated_patches``: building the matrix is the point of this impl.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from cnnlab.ops import padding as padlib
from cnnlab.ops.conv_case import output_spatial
from cnnlab.ops.conv_parts import grouped_matmul, window_slice
from cnnlab.ops.conv_registry import register_impl


def patches(x, window, *, stride, pads, dilation):
  """``x`` ``(N, *spatial, C)`` -> ``(N, *out_spatial, K, C)``, ``K`` offsets in row-major order."""
  out = output_spatial(x.shape[1:-1], window, stride, pads, dilation)
  xp = padlib.pad_input(x, pads, "zeros")
  return jnp.stack([window_slice(xp, k, stride, dilation, out)
                    for k in np.ndindex(*window)], axis=-2)


@register_impl("im2col")
def conv_im2col(x, w, *, stride, pads, dilation, groups):
  window = w.shape[:-2]
  p_NxOxKxC = patches(x, window, stride=stride, pads=pads, dilation=dilation)
  w_KxCgxO = w.reshape(-1, *w.shape[-2:])
  return grouped_matmul(p_NxOxKxC, w_KxCgxO, groups).astype(x.dtype)
