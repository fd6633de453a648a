"""``fft`` conv via the convolution theorem ``F(w * x) = F(w) . F(x)``.

Cross-correlation is convolution with the flipped (and, for dilation ``d``, zero-stuffed) kernel.
On an FFT grid ``L >= padded input size`` (per dim, ``scipy.fft.next_fast_len``) the circular
convolution of the padded input with that kernel equals the linear one at indices
``>= e - 1`` (``e = d*(k-1) + 1``), so ``y[o] = circ[e - 1 + o*s]``: crop, then subsample by the
stride. Channels mix in the frequency domain (``einsum`` over ``C_in/groups`` per group).
Computes in float32 (``jnp.fft`` has no bfloat16) and casts back; cost independent of ``k``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from cnnlab.ops import padding as padlib
from cnnlab.ops.conv_case import output_spatial
from cnnlab.ops.conv_parts import accum_dtype, window_slice
from cnnlab.ops.conv_registry import register_impl


def circular_conv(x, w, shape, groups=1):
  """Circular convolution over the spatial dims on a ``shape`` grid, via ``rfftn``.

  ``x`` ``(N, *sx, C_in)``, ``w`` ``(*sw, C_in/groups, C_out)`` with ``sx, sw <= shape`` are
  zero-padded to ``shape``; returns ``(N, *shape, C_out)`` with
  ``y[n, p, o] = sum_{q, c} x[n, q, c] * w[(p - q) mod shape, c, o]`` (within each group).
  """
  nd = len(shape)
  xf = jnp.fft.rfftn(x, s=shape, axes=tuple(range(1, nd + 1)))
  wf = jnp.fft.rfftn(w, s=shape, axes=tuple(range(nd)))
  xf = xf.reshape(*xf.shape[:-1], groups, -1)
  wf = wf.reshape(*wf.shape[:-1], groups, -1)
  yf = jnp.einsum("n...gc,...cgo->n...go", xf, wf)
  yf = yf.reshape(*yf.shape[:-2], -1)
  return jnp.fft.irfftn(yf, s=shape, axes=tuple(range(1, nd + 1)))


def dilate_kernel(w, dilation):
  """``w`` ``(*window, I, O)`` with ``d - 1`` zeros between taps: ``(*(d*(k-1)+1), I, O)``."""
  if all(d == 1 for d in dilation):
    return w
  return lax.pad(w, jnp.zeros((), w.dtype),
                 [(0, 0, d - 1) for d in dilation] + [(0, 0, 0)] * 2)


@register_impl("fft")
def conv_fft(x, w, *, stride, pads, dilation, groups):
  nd = x.ndim - 2
  acc = accum_dtype(x.dtype)
  xp = padlib.pad_input(x.astype(acc), pads, "zeros")
  w_flip = jnp.flip(dilate_kernel(w.astype(acc), dilation), axis=tuple(range(nd)))
  eff = w_flip.shape[:nd]
  out = output_spatial(xp.shape[1:-1], eff, stride, ((0, 0),) * nd, (1,) * nd)
  import scipy.fft  # noqa: PLC0415 - 0.2 s to import; only an fft conv needs it
  shape = tuple(scipy.fft.next_fast_len(i, real=True) for i in xp.shape[1:-1])
  y = circular_conv(xp, w_flip, shape, groups)
  y = window_slice(y, tuple(e - 1 for e in eff), stride, (1,) * nd, out)  # y[o] = circ[e-1+o*s]
  return y.astype(x.dtype)
