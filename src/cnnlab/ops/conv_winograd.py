"""``winograd`` conv, F(m x m, 3 x 3) minimal filtering (Lavin & Gray 2016, arXiv:1509.09308).

Output tiles ``m x m`` read input tiles ``a x a`` (``a = m + 2``) at stride ``m``:
``Y = A^T [(G g G^T) . (B^T d B)] A`` per tile and channel pair, the product summed over input
channels (an ``(N*tiles, C_in/groups) x (C_in/groups, C_out)`` matmul per each of the ``a*a``
transform points). ``winograd``: F(2x2,3x3), 16 multiplies per 4 outputs instead of 36;
``winograd_f4``: F(4x4,3x3), 36 per 16 instead of 144, larger rounding error.
2D, 3x3 kernels, stride 1, no dilation; any padding and groups. Computes in float32. 3D
(3x3x3): the sum over the kernel's three temporal taps of the 2D conv over the frames each tap
reads (Winograd in space, direct in time: 48 multiplies per 2x2 output tile and channel pair
where a direct 3x3x3 conv needs 108).

On the CPU, ``winograd`` runs float32 convs with ``groups == 1`` and C_in, C_out multiples of 16
by C++ kernels (``cnnlab.ops.native``, ``winograd.cc``; docs/performance.md, "A native Winograd
conv"): blocks of tiles transformed into per-thread buffers, then per transform point one matmul
over the input channels in register tiles. All three passes: the input gradient is the forward
over the cotangent with the kernel flipped in space and its channel axes swapped (low padding
``2 - lo``), the weight gradient the adjoint, ``GT [sum over tiles of (BT d B) . (A g AT)] G``
(one matmul per point over the tiles). As ``direct``, the input stands behind
``conv_parts.fusion_fence``. Other cases, other platforms and ``native.disabled()`` run the XLA
form below, selected per platform when lowering (``lax.platform_dependent``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cnnlab.ops import native
from cnnlab.ops import padding as padlib
from cnnlab.ops.conv_case import output_spatial
from cnnlab.ops.conv_parts import accum_dtype, fusion_fence
from cnnlab.ops.conv_registry import register_impl

# The C++ handlers of native/winograd.cc, F(2x2, 3x3): forward, input grad, weight grad.
NATIVE = ("CnnlabWinogradForward", "CnnlabWinogradInputGrad", "CnnlabWinogradWeightGrad")

# F(2, 3): points 0, 1, -1 (and infinity).
F2 = dict(
    BT=[[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    G=[[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
    AT=[[1, 1, 1, 0], [0, 1, -1, -1]])
# F(4, 3): points 0, 1, -1, 2, -2 (and infinity).
F4 = dict(
    BT=[[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    G=[[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
       [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
    AT=[[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]])


def _limits(case):
  if case.nd not in (2, 3):
    return f"spatial dims: winograd is 2D (3D per temporal tap), got {case.nd}D"
  if case.window != (3,) * case.nd:
    return f"window: winograd needs a {'x'.join('3' * case.nd)} kernel, got {case.window}"
  if case.stride != (1,) * case.nd:
    return f"stride: winograd needs stride 1, got {case.stride}"
  if case.dilation != (1,) * case.nd:
    return f"dilation: winograd needs dilation 1, got {case.dilation}"
  return None


def _tiles(xp, axis, tiles, m, a):
  """Overlapping length-``a`` windows at stride ``m`` along ``axis`` (length ``(tiles+1)*m``).

  Returns ``xp`` with ``axis`` split into ``(tiles, a)``: tile ``t`` is rows ``t*m .. t*m+a-1``,
  i.e. the ``m`` rows of block ``t`` followed by the first ``a - m`` rows of block ``t + 1``.
  """
  blocks = xp.reshape(*xp.shape[:axis], tiles + 1, m, *xp.shape[axis + 1:])
  body = lax.slice_in_dim(blocks, 0, tiles, axis=axis)
  halo = lax.slice_in_dim(lax.slice_in_dim(blocks, 1, tiles + 1, axis=axis), 0, a - m,
                          axis=axis + 1)
  return jnp.concatenate([body, halo], axis=axis + 1)


def winograd_conv(x, w, *, pads, groups, transforms):
  """Stride-1 3x3 correlation: ``x`` ``(N, H, W, C_in)``, ``w`` ``(3, 3, C_in/groups, C_out)``."""
  acc = accum_dtype(x.dtype)
  bt, g, at = (jnp.asarray(np.array(transforms[k]), acc) for k in ("BT", "G", "AT"))
  m, a = at.shape
  out = output_spatial(x.shape[1:3], (3, 3), (1, 1), pads, (1, 1))
  tiles = [-(-o // m) for o in out]
  # Pad the high side to (tiles + 1) * m rows/cols: the tiles cover the output, blocks reshape.
  pads = [(lo, (t + 1) * m - i - lo) for (lo, _), t, i in zip(pads, tiles, x.shape[1:3])]
  xp = padlib.pad_input(x.astype(acc), pads, "zeros")
  d = _tiles(_tiles(xp, 1, tiles[0], m, a), 3, tiles[1], m, a)        # (N, Th, a, Tw, a, C_in)
  # Transform points (a, b) lead: they are the batch dims of the channel matmul.
  v = jnp.einsum("ai,nhiwjc,bj->abnhwc", bt, d, bt)                   # (a, a, N, Th, Tw, C_in)
  u = jnp.einsum("ai,ijco,bj->abco", g, w.astype(acc), g)             # (a, a, C_in/groups, C_out)
  v = v.reshape(*v.shape[:-1], groups, -1)
  u = u.reshape(*u.shape[:-1], groups, -1)
  mm = jnp.einsum("abnhwgc,abcgo->abnhwgo", v, u)
  mm = mm.reshape(*mm.shape[:-2], -1)
  y = jnp.einsum("ia,abnhwo,jb->nhiwjo", at, mm, at)                  # (N, Th, m, Tw, m, C_out)
  y = y.reshape(y.shape[0], tiles[0] * m, tiles[1] * m, y.shape[-1])
  return y[:, :out[0], :out[1]].astype(x.dtype)


def _call(target, out_shape, low):
  return native.call(target, out_shape, sh=1, sw=1, dh=1, dw=1, ph=low[0], pw=low[1])


def _xla(x, w, pads):
  return winograd_conv(x, w, pads=pads, groups=1, transforms=F2)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _native(x, w, pads):
  out = (x.shape[0], *output_spatial(x.shape[1:3], (3, 3), (1, 1), pads, (1, 1)), w.shape[-1])
  return lax.platform_dependent(
      x, w, cpu=lambda x, w: _call(NATIVE[0], out, [lo for lo, _ in pads])(x, w),
      default=lambda x, w: _xla(x, w, pads))


def _native_fwd(x, w, pads):
  return _native(x, w, pads), (x, w)


def _native_bwd(pads, res, g):
  x, w = res
  xla_grads = lambda x, w, g: jax.vjp(lambda x, w: _xla(x, w, pads), x, w)[1](g)  # noqa: E731
  dx = lax.platform_dependent(
      g, w, cpu=lambda g, w: _call(NATIVE[1], x.shape, [2 - lo for lo, _ in pads])(g, w),
      default=lambda g, w: xla_grads(x, w, g)[0])
  dw = lax.platform_dependent(
      x, g, cpu=lambda x, g: _call(NATIVE[2], w.shape, [lo for lo, _ in pads])(x, g),
      default=lambda x, g: xla_grads(x, w, g)[1])
  return dx, dw


_native.defvjp(_native_fwd, _native_bwd)


def native_serves(c_in, c_out, groups):
  """Whether the C++ kernels take these channels (where the platform and dtype allow)."""
  return groups == 1 and c_in % 16 == 0 and c_out % 16 == 0


def _per_temporal_tap(x, w, pads, conv_2d):
  """3D ``(N, T, H, W, C)``: the sum over the kernel's 3 temporal taps of ``conv_2d`` over every
  frame the tap reads (frames as a batch of images)."""
  xp = padlib.pad_input(x, [pads[0], (0, 0), (0, 0)], "zeros")
  t_out = xp.shape[1] - 2
  y = sum(conv_2d(lax.slice_in_dim(xp, k, k + t_out, axis=1).reshape(-1, *x.shape[2:]), w[k],
                  pads[1:]) for k in range(3))
  return y.reshape(x.shape[0], t_out, *y.shape[1:])


def _impl(transforms):
  def conv_2d(x, w, pads, groups):
    if (transforms is F2 and native_serves(x.shape[-1], w.shape[-1], groups)
        and native.serves("winograd", NATIVE, x, w)):
      return _native(fusion_fence(x, w), w, pads)
    return winograd_conv(x, w, pads=pads, groups=groups, transforms=transforms)

  def conv_winograd(x, w, *, stride, pads, dilation, groups):
    del stride, dilation  # checked by _limits: 1
    pads = tuple(map(tuple, pads))
    if x.ndim == 5:
      return _per_temporal_tap(x, w, pads, lambda x, w, pads: conv_2d(x, w, pads, groups))
    return conv_2d(x, w, pads, groups)
  return conv_winograd


register_impl("winograd", limits=_limits)(_impl(F2))
register_impl("winograd_f4", limits=_limits)(_impl(F4))
