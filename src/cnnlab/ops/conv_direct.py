"""``direct`` conv: loops over register tiles in C++ on the CPU, ``fenced`` (``lax``'s numbers)
elsewhere.

For 2D float32 convs with ``groups == 1`` and ``C_in``, ``C_out`` multiples of 8, on the CPU
(``cnnlab.ops.native``, ``dense.cc``; docs/performance.md, "A native dense conv"). Tiles are
6 pixels x 16 channels with AVX2, 14 x 32 with AVX-512 (``-march=native``). Padding is read as
zeros inside the kernels: no padded copy of the input or cotangent is made.

- forward: ``CnnlabDenseForward``, one tile of output pixels x output channels summed over taps
  and input channels; with AVX-512, ``ROW_TILE_CHANNELS`` input channels, output channels a
  multiple of 32, column stride 1 or 2 and padding read by the first and last output column
  only, tiles of 1-3 output rows x 4-14 adjacent columns (docs/performance.md, "Row tiles in
  the dense conv");
- input gradient: for stride 1 ``CnnlabDenseInputGrad``, the same loops over the cotangent with
  low padding ``(K-1)*d - lo`` (negative: a crop) and the kernel flipped in space and its
  channel axes swapped as it is packed (the transposed conv as a correlation, Dumoulin & Visin
  2016); for other strides with dilation 1, one ``CnnlabDenseForward`` per output phase over
  the cotangent with that phase's taps, interleaved; else ``lax``'s;
- weight gradient: ``CnnlabDenseWeightGrad``, tiles of input x output channels summed over the
  output pixels whose input is not padding, in per-chunk partials added in order (no dependence
  on threads).

The kernels read the stored input and cotangent in their own layout, so XLA makes no
transposed copies for them; the input stands behind ``conv_parts.fusion_fence``, as in
``fenced``, so that XLA computes its producers once. Other cases, other platforms and
``native.disabled()`` run ``fenced``, selected per platform when lowering
(``lax.platform_dependent``). ``auto`` picks it on CPUs with AVX-512 for ResNet-style convs
(``cnnlab.ops.conv_auto``, step 2).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from cnnlab.ops import native
from cnnlab.ops.conv_case import output_spatial
from cnnlab.ops.conv_fenced import conv_fenced
from cnnlab.ops.conv_lax import conv_lax
from cnnlab.ops.conv_parts import fusion_fence
from cnnlab.ops.conv_registry import register_impl

# The C++ handlers of native/dense.cc: forward, input grad (stride 1), weight grad.
NATIVE = ("CnnlabDenseForward", "CnnlabDenseInputGrad", "CnnlabDenseWeightGrad")
# Input channel counts of the forward's and input gradient's row tiles (with AVX-512).
ROW_TILE_CHANNELS = (64, 128, 256, 512)


def _limits(case):
  if case.nd != 2 or case.groups != 1:
    return (f"direct serves 2D convs with groups=1, got {case.nd}D with groups={case.groups}; "
            "lax, depthwise or im2col serve others")
  channels = (case.x_shape[-1], case.w_shape[-1])
  if any(c % 8 for c in channels):
    return (f"channels: direct needs C_in and C_out multiples of 8, got {channels}; "
            "cols, rows or lax serve others")
  return None


def _call(target, out_shape, stride, dilation, low):
  return native.call(target, out_shape, sh=stride[0], sw=stride[1], dh=dilation[0],
                     dw=dilation[1], ph=low[0], pw=low[1])


def _lax(x, w, stride, pads, dilation):
  return conv_lax(x, w, stride=stride, pads=pads, dilation=dilation, groups=1)


def _forward(x, w, stride, pads, dilation):
  out = (x.shape[0], *output_spatial(x.shape[1:3], w.shape[:2], stride, pads, dilation),
         w.shape[-1])
  return _call(NATIVE[0], out, stride, dilation, [lo for lo, _ in pads])(x, w)


def _input_grad(g, w, x_shape, pads, dilation):
  """Stride 1: the forward's loops over the cotangent, low-padded by ``(K-1)*d - lo``, the
  kernel flipped in space and its channel axes swapped as ``CnnlabDenseInputGrad`` packs it."""
  low = [(k - 1) * d - lo for k, d, (lo, _) in zip(w.shape[:2], dilation, pads)]
  return _call(NATIVE[1], x_shape, (1, 1), dilation, low)(g, w)


def _phase_taps(k, s, lo):
  """Per output phase r < s of a stride-s input gradient (1D, dilation 1): the taps k' whose
  input positions are r mod s, in the order the phase's correlation over g uses them, and its
  low padding. dx[s*m + r] = sum over those taps of g[m + (r + lo - k') / s] * w[k']."""
  phases = []
  for r in range(s):
    taps = [t for t in range(k) if (r + lo - t) % s == 0][::-1]  # ascending offsets
    phases.append((taps, -((r + lo - taps[0]) // s) if taps else 0))
  return phases


def _strided_input_grad(g, w, x_shape, stride, pads):
  """Stride > 1, dilation 1: dx as s_h * s_w stride-1 correlations of the cotangent with the
  kernel's taps of each output phase (``CnnlabDenseForward`` each, kernel channels swapped),
  interleaved; a phase no tap reaches is zero. Replaces XLA's conv over the cotangent dilated
  by the stride (docs/performance.md, "Strided input gradients")."""
  n, h, wd, ci = x_shape
  rows, cols = (_phase_taps(w.shape[a], stride[a], pads[a][0]) for a in (0, 1))
  mh, mw = -(-h // stride[0]), -(-wd // stride[1])  # phase rows and columns, padded to equal
  grid = []
  for r, (taps_h, low_h) in enumerate(rows):
    line = []
    for c, (taps_w, low_w) in enumerate(cols):
      size = (n, len(range(r, h, stride[0])), len(range(c, wd, stride[1])), ci)
      if taps_h and taps_w:
        v = w[jnp.array(taps_h)][:, jnp.array(taps_w)].swapaxes(2, 3)
        part = _call(NATIVE[0], size, (1, 1), (1, 1), (low_h, low_w))(g, v)
      else:
        part = jnp.zeros(size, g.dtype)
      line.append(jnp.pad(part, ((0, 0), (0, mh - size[1]), (0, mw - size[2]), (0, 0))))
    grid.append(jnp.stack(line, axis=3))  # (n, mh, mw, s_w, ci)
  dx = jnp.stack(grid, axis=2)  # (n, mh, s_h, mw, s_w, ci)
  return dx.reshape(n, mh * stride[0], mw * stride[1], ci)[:, :h, :wd]


def _weight_grad(x, g, w_shape, stride, pads, dilation):
  return _call(NATIVE[2], w_shape, stride, dilation, [lo for lo, _ in pads])(x, g)


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
  xla_dx = lambda g, w: lax_grads(x, w, g)[0]  # noqa: E731
  if stride == (1, 1):
    cpu_dx = lambda g, w: _input_grad(g, w, x.shape, pads, dilation)  # noqa: E731
  elif dilation == (1, 1):
    cpu_dx = lambda g, w: _strided_input_grad(g, w, x.shape, stride, pads)  # noqa: E731
  else:
    cpu_dx = xla_dx
  dx = lax.platform_dependent(g, w, cpu=cpu_dx, default=xla_dx)
  dw = lax.platform_dependent(
      x, g, cpu=lambda x, g: _weight_grad(x, g, w.shape, stride, pads, dilation),
      default=lambda x, g: lax_grads(x, w, g)[1])
  return dx, dw


_direct.defvjp(_direct_fwd, _direct_bwd)


@register_impl("direct", limits=_limits)
def conv_direct(x, w, *, stride, pads, dilation, groups):
  if not native.serves("dense", NATIVE, x, w):
    return conv_fenced(x, w, stride=stride, pads=pads, dilation=dilation, groups=groups)
  return _direct(fusion_fence(x, w), w, tuple(stride), tuple(map(tuple, pads)), tuple(dilation))
