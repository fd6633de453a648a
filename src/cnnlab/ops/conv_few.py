"""``few`` conv: few input channels (LeNet-5's, a stem's): on the CPU C++ kernels for the
forward and the weight gradient, the input gradient by ``cols`` (1-3 input channels) or ``rows``.

For 2D float32 convs with ``groups == 1``, on the CPU (``cnnlab.ops.native``, ``few.cc``;
docs/performance.md, "A native forward for few input channels", "Few-channel weight
gradients"): the forward sums each output row in tiles of adjacent output columns x up to 32
output channels (per tap and input channel, one kernel vector per 8 output channels and one
broadcast input value per column); the weight gradient sums, per output row and tap row, tiles
of (kernel column, input channel) pairs x output channels over the row's columns. Output
channels not a multiple of 8 are padded to one inside the kernels (LeNet-5's C1 has 6). XLA's
CPU conv runs far below the machine's peak when few channels feed it. The input gradient (an
image's is never needed) is autodiff of ``cols`` for 1-3 input channels, of ``rows`` for more
(the impls ``auto`` picks for such convs without ``few``): as the forward over the cotangent its
output channels are the few ones, and it ran slower in C++ (LeNet-5's C3: 1.4 against 1.0 ms).
Other cases, other platforms and ``native.disabled()`` run that impl, selected per platform when
lowering (``lax.platform_dependent``).
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

NATIVE = ("CnnlabFewForward", "CnnlabFewWeightGrad")


def _limits(case):
  if case.nd != 2 or case.groups != 1:
    return (f"few serves 2D convs with groups=1, got {case.nd}D with groups={case.groups}; "
            "rows, cols or lax serve others")
  return None


def _xla(x, w, stride, pads, dilation):
  """``cols`` for 1-3 input channels, else ``rows``."""
  impl = conv_cols if x.shape[-1] <= 3 else conv_rows
  return impl(x, w, stride=stride, pads=pads, dilation=dilation, groups=1)


def _call(target, out_shape, stride, pads, dilation):
  return native.call(target, out_shape, sh=stride[0], sw=stride[1], dh=dilation[0],
                     dw=dilation[1], ph=pads[0][0], pw=pads[1][0])


def _forward(x, w, stride, pads, dilation):
  out = (x.shape[0], *output_spatial(x.shape[1:3], w.shape[:2], stride, pads, dilation),
         w.shape[-1])
  return _call(NATIVE[0], out, stride, pads, dilation)(x, w)


def _few(stride, pads, dilation):
  """The conv ``(x, w) -> y``: the native kernels on the CPU where they serve, :func:`_xla`
  elsewhere."""
  xla = functools.partial(_xla, stride=stride, pads=pads, dilation=dilation)

  @jax.custom_vjp
  def conv(x, w):
    return lax.platform_dependent(
        x, w, cpu=lambda x, w: _forward(x, w, stride, pads, dilation), default=xla)

  def bwd(res, g):
    x, w = res
    xla_grads = lambda x, g: jax.vjp(xla, x, w)[1](g)  # noqa: E731
    dw = lax.platform_dependent(
        x, g, cpu=lambda x, g: _call(NATIVE[1], w.shape, stride, pads, dilation)(x, g),
        default=lambda x, g: xla_grads(x, g)[1])
    return xla_grads(x, g)[0], dw

  conv.defvjp(lambda x, w: (conv(x, w), (x, w)), bwd)
  return conv


@register_impl("few", limits=_limits)
def conv_few(x, w, *, stride, pads, dilation, groups):
  del groups  # 1, checked by _limits
  if not native.serves("few", NATIVE, x, w):
    return _xla(x, w, stride, pads, dilation)
  return _few(tuple(stride), tuple(map(tuple, pads)), tuple(dilation))(x, w)
