"""``rows`` conv: the kernel's rows stacked as input channels, then ``lax``'s conv one row tall.

For each offset ``i`` of the first spatial axis (``K_0`` of them), the padded input's strided
slice under that offset (``conv_parts.window_slice`` on that axis alone) is stacked on the
channel axis: ``(N, out_0, *spatial[1:], K_0 * C_in)``, channels ordered ``(group, i, c)``. The
kernel ``(K_0, *window[1:], C_in/groups, C_out)`` becomes ``(1, *window[1:], K_0 * C_in/groups,
C_out)`` and ``lax``'s conv (``feature_group_count = groups``) computes the rest, the first axis
with stride and dilation 1. Gradients by autodiff: the stack's VJP sums the slices' gradients.

XLA's CPU convs are slow when few input channels feed them (LeNet-5's first conv, C_in = 1, ran
2.2x faster fwd+bwd this way; a 7x7 stem with C_in = 3 1.3x); from about 16 channels the
stacked copy costs more than it saves: docs/performance.md, "LeNet-5's convs". Grouped convs
are served, but a depthwise one (``groups == C_in``) inherits ``lax``'s slow grouped weight
gradient with ``K_0`` times the channels (10 s a fwd+bwd at 8x14x14x256): use ``depthwise``.
"""

from __future__ import annotations

import jax.numpy as jnp

from cnnlab.ops import padding as padlib
from cnnlab.ops.conv_case import output_spatial
from cnnlab.ops.conv_lax import conv_lax
from cnnlab.ops.conv_parts import window_slice
from cnnlab.ops.conv_registry import register_impl


@register_impl("rows")
def conv_rows(x, w, *, stride, pads, dilation, groups):
  nd, k0, c_in = x.ndim - 2, w.shape[0], x.shape[-1]
  rest = ((0, 0),) * (nd - 1)
  xp = padlib.pad_input(x, (pads[0], *rest), "zeros")
  out0 = output_spatial(xp.shape[1:2], w.shape[:1], stride[:1], ((0, 0),), dilation[:1])
  one = (1,) * (nd - 1)
  x_rows = jnp.stack([window_slice(xp, (i, *(0,) * (nd - 1)), (stride[0], *one),
                                   (dilation[0], *one), (*out0, *xp.shape[2:-1]))
                      for i in range(k0)], axis=-2)  # (N, out_0, *spatial[1:], K_0, C_in)
  x_rows = x_rows.reshape(*x_rows.shape[:-1], groups, c_in // groups)
  x_rows = jnp.swapaxes(x_rows, -3, -2).reshape(*x_rows.shape[:-3], k0 * c_in)
  w_rows = jnp.moveaxis(w, 0, -3).reshape(1, *w.shape[1:-2], k0 * w.shape[-2], w.shape[-1])
  return conv_lax(x_rows, w_rows, stride=(1, *stride[1:]), pads=((0, 0), *pads[1:]),
                  dilation=(1, *dilation[1:]), groups=groups)
