"""``few`` conv: few input channels (LeNet-5's, a stem's): on the CPU a C++ forward, the
gradients by ``cols`` (1-3 input channels) or ``rows``.

For 2D float32 convs with ``groups == 1`` and ``C_out`` a multiple of 8, on the CPU
(``cnnlab.ops.native``, ``few.cc``; docs/performance.md, "A native forward for few input
channels"): each output row in tiles of adjacent output columns x up to 32 output channels; per
tap and input channel, one kernel vector per 8 output channels and one broadcast input value per
column. XLA's CPU conv runs far below the machine's peak when few channels feed it, and
``rows``/``cols`` only partly make up for it in the forward; their input and weight gradients
run near torch's, so they stay: by autodiff of ``cols`` for 1-3 input channels, of ``rows``
for more (the impls ``auto`` picks for such convs without ``few``). Other cases, other
platforms and ``native.disabled()`` run that impl, selected per platform when lowering
(``lax.platform_dependent``).
"""

from __future__ import annotations

import functools

import jax
from jax import lax

from cnnlab.ops import native
from cnnlab.ops.conv_case import output_spatial
from cnnlab.ops.conv_cols import conv_cols
from cnnlab.ops.conv_registry import register_impl
from cnnlab.ops.conv_rows import conv_rows

NATIVE = ("CnnlabFewForward",)


def _limits(case):
  if case.nd != 2 or case.groups != 1:
    return (f"few serves 2D convs with groups=1, got {case.nd}D with groups={case.groups}; "
            "rows, cols or lax serve others")
  if case.w_shape[-1] % 8:
    return (f"channels: few needs C_out a multiple of 8, got {case.w_shape[-1]}; "
            "cols, rows or lax serve others")
  return None


def _xla(x, w, stride, pads, dilation):
  """``cols`` for 1-3 input channels, else ``rows``."""
  impl = conv_cols if x.shape[-1] <= 3 else conv_rows
  return impl(x, w, stride=stride, pads=pads, dilation=dilation, groups=1)


def _forward(x, w, stride, pads, dilation):
  out = (x.shape[0], *output_spatial(x.shape[1:3], w.shape[:2], stride, pads, dilation),
         w.shape[-1])
  return native.call(NATIVE[0], out, sh=stride[0], sw=stride[1], dh=dilation[0],
                     dw=dilation[1], ph=pads[0][0], pw=pads[1][0])(x, w)


def _few(stride, pads, dilation):
  """The conv ``(x, w) -> y``: the native forward on the CPU, :func:`_xla` elsewhere, and
  :func:`_xla`'s gradients everywhere."""
  xla = functools.partial(_xla, stride=stride, pads=pads, dilation=dilation)

  @jax.custom_vjp
  def conv(x, w):
    return lax.platform_dependent(
        x, w, cpu=lambda x, w: _forward(x, w, stride, pads, dilation), default=xla)

  conv.defvjp(lambda x, w: (conv(x, w), (x, w)), lambda res, g: jax.vjp(xla, *res)[1](g))
  return conv


@register_impl("few", limits=_limits)
def conv_few(x, w, *, stride, pads, dilation, groups):
  del groups  # 1, checked by _limits
  if not native.serves("few", NATIVE, x, w):
    return _xla(x, w, stride, pads, dilation)
  return _few(tuple(stride), tuple(map(tuple, pads)), tuple(dilation))(x, w)
