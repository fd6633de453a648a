"""``direct`` conv: loops over register tiles in C++ on the CPU, ``lax``'s conv elsewhere.

For 2D float32 convs with ``groups == 1`` and ``C_in``, ``C_out`` multiples of 8, on the CPU
(``cnnlab.ops.native``, ``dense.cc``; docs/performance.md, "A native dense conv"):

- forward: ``CnnlabDenseForward`` on the zero-padded input, 6 output pixels x 16 output
  channels per register tile, summed over taps and input channels;
- input gradient: for stride 1 ``CnnlabDenseInputGrad``, the same loops on the cotangent padded
  by ``(K-1)*d - lo`` low (negative: cropped), with the kernel flipped in space and its channel
  axes swapped as it is packed (the transposed conv as a correlation, Dumoulin & Visin 2016);
  other strides ``lax``'s;
- weight gradient: ``CnnlabDenseWeightGrad``, 6 input x 16 output channels per tile, summed
  over the padded input's pixels, in per-chunk partials added in order (no dependence on
  threads).

The kernels read the stored input and cotangent in their own layout, so XLA makes no
transposed copies for them; the input stands behind ``conv_parts.fusion_fence``, as in
``fenced``, so that XLA does not recompute its producers inside the pad. Other cases, other
platforms and ``native.disabled()`` run ``lax``, selected per platform when lowering
(``lax.platform_dependent``). ``auto``'s rules never pick it: near XLA's speed at a batch of 64,
it made ResNet-18 CIFAR's train step slower; the conv cache picks it where it was timed fastest
(docs/performance.md).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from cnnlab.ops import native
from cnnlab.ops.conv_case import output_spatial
from cnnlab.ops.conv_lax import conv_lax
from cnnlab.ops.conv_parts import fusion_fence
from cnnlab.ops.conv_registry import register_impl

# The C++ handlers of native/dense.cc: forward, input grad (stride 1), weight grad.
NATIVE = ("CnnlabDenseForward", "CnnlabDenseInputGrad", "CnnlabDenseWeightGrad")


def _limits(case):
  if case.nd != 2 or case.groups != 1:
    return (f"direct serves 2D convs with groups=1, got {case.nd}D with groups={case.groups}; "
            "lax, depthwise or im2col serve others")
  channels = (case.x_shape[-1], case.w_shape[-1])
  if any(c % 8 for c in channels):
    return (f"channels: direct needs C_in and C_out multiples of 8, got {channels}; "
            "cols, rows or lax serve others")
  return None


def _pad(x, pads):
  """``x`` (N, H, W, C) zero-padded by ``pads`` ((lo, hi) per spatial dim; negative crops)."""
  return lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), *((lo, hi, 0) for lo, hi in pads),
                                             (0, 0, 0)])


def _call(target, out_shape, stride, dilation):
  return native.call(target, out_shape, sh=stride[0], sw=stride[1], dh=dilation[0],
                     dw=dilation[1])


def _lax(x, w, stride, pads, dilation):
  return conv_lax(x, w, stride=stride, pads=pads, dilation=dilation, groups=1)


def _forward(x, w, stride, pads, dilation):
  out = (x.shape[0], *output_spatial(x.shape[1:3], w.shape[:2], stride, pads, dilation),
         w.shape[-1])
  return _call(NATIVE[0], out, stride, dilation)(_pad(x, pads), w)


def _input_grad(g, w, x_shape, pads, dilation):
  """Stride 1: the forward's loops over the padded cotangent, the kernel flipped in space and
  its channel axes swapped as ``CnnlabDenseInputGrad`` packs it."""
  span = [(k - 1) * d for k, d in zip(w.shape[:2], dilation)]
  lo = [s - p for s, (p, _) in zip(span, pads)]
  hi = [h + s - o - l for h, s, o, l in zip(x_shape[1:3], span, g.shape[1:3], lo)]
  return _call(NATIVE[1], x_shape, (1, 1), dilation)(_pad(g, list(zip(lo, hi))), w)


def _weight_grad(x, g, w_shape, stride, pads, dilation):
  return _call(NATIVE[2], w_shape, stride, dilation)(_pad(x, pads), g)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _direct(x, w, stride, pads, dilation):
  return lax.platform_dependent(
      x, w, cpu=lambda x, w: _forward(x, w, stride, pads, dilation),
      default=lambda x, w: _lax(x, w, stride, pads, dilation))


def _direct_fwd(x, w, stride, pads, dilation):
  return _direct(x, w, stride, pads, dilation), (x, w)


def _direct_bwd(stride, pads, dilation, res, g):
  x, w = res
  lax_grads = lambda x, w, g: jax.vjp(  # noqa: E731
      lambda x, w: _lax(x, w, stride, pads, dilation), x, w)[1](g)
  if stride == (1, 1):
    dx = lax.platform_dependent(g, w, cpu=lambda g, w: _input_grad(g, w, x.shape, pads, dilation),
                                default=lambda g, w: lax_grads(x, w, g)[0])
  else:
    dx = lax_grads(x, w, g)[0]
  dw = lax.platform_dependent(
      x, g, cpu=lambda x, g: _weight_grad(x, g, w.shape, stride, pads, dilation),
      default=lambda x, g: lax_grads(x, w, g)[1])
  return dx, dw


_direct.defvjp(_direct_fwd, _direct_bwd)


@register_impl("direct", limits=_limits)
def conv_direct(x, w, *, stride, pads, dilation, groups):
  if not native.serves("dense", NATIVE, x, w):
    return conv_lax(x, w, stride=stride, pads=pads, dilation=dilation, groups=groups)
  return _direct(fusion_fence(x, w), w, tuple(stride), tuple(map(tuple, pads)), tuple(dilation))
