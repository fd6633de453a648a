"""``cols`` conv: output columns folded into channels (space-to-depth, last axis), then ``rows``.

Along the last spatial axis (stride ``t``, dilation ``d``, kernel ``K``) output column
``q*s + r`` (``r < s``) reads padded input column ``q*S + m`` with ``S = s*t`` and
``m = r*t + k*d``. So the input, cut into blocks of ``S`` columns, becomes
``(..., blocks, S*C_in)``, and the kernel ``(..., nb, S*C_in/groups, s*C_out)`` with
``nb = ((s-1)*t + (K-1)*d) // S + 1``: entry ``[j, (i, c), (r, o)]`` is ``w[..., k, c, o]``
where ``j*S + i = r*t + k*d``, else zero. That conv has stride and dilation 1 on the last axis
and yields ``s`` columns per output position; ``rows`` computes it (the first axis' kernel rows
stacked as channels, ``lax`` for the rest). Channels stay grouped: ``(group, i, c)`` in,
``(group, r, o)`` out. Gradients by autodiff.

``s = ceil(FOLD_CHANNELS / C_in)``: XLA's CPU conv is slow with few channels; LeNet-5's first conv
(1 channel, 5x5 -> 6) ran its fwd+bwd 2.4x faster than by ``rows`` with ``s = 4`` (one conv of
20 stacked input and 24 output channels), its forward 2.5x (docs/performance.md, "LeNet-5's
convs"). The kernel spends ``nb*S / K`` times the useful multiply-adds (1.6x there).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from cnnlab.ops.conv_case import output_spatial
from cnnlab.ops.conv_registry import register_impl
from cnnlab.ops.conv_rows import conv_rows

FOLD_CHANNELS = 4  # fold output columns until s * C_in reaches this


def fold_factor(c_in: int) -> int:
  """``s``: output columns per folded position."""
  return math.ceil(FOLD_CHANNELS / c_in)


def _fold_kernel(w, s, t, d, nb, groups):
  """``w`` ``(..., K, C_in/g, C_out)`` -> ``(..., nb, S*C_in/g, g*s*C_out/g)`` (module doc)."""
  k, cg, c_out = w.shape[-3:]
  S = s * t
  m = (np.arange(nb)[:, None, None] * S + np.arange(S)[None, :, None]
       - np.arange(s)[None, None, :] * t)  # (nb, S, s): k*d
  valid = (m % d == 0) & (m >= 0) & (m < k * d)
  taps = jnp.take(w, np.clip(m // d, 0, k - 1), axis=-3)  # (..., nb, S, s, cg, C_out)
  taps = jnp.where(valid[..., None, None], taps, 0)
  lead = w.shape[:-3]
  taps = taps.reshape(*lead, nb, S, s, cg, groups, c_out // groups)
  n = len(lead)
  taps = taps.transpose(*range(n), n, n + 1, n + 3, n + 4, n + 2, n + 5)  # (nb, S, cg, g, s, og)
  return taps.reshape(*lead, nb, S * cg, c_out * s)


@register_impl("cols")
def conv_cols(x, w, *, stride, pads, dilation, groups):
  c_in, c_out = x.shape[-1], w.shape[-1]
  s, t, d, k = fold_factor(c_in), stride[-1], dilation[-1], w.shape[-3]
  S = s * t
  if S == 1:
    return conv_rows(x, w, stride=stride, pads=pads, dilation=dilation, groups=groups)
  out = output_spatial(x.shape[-2:-1], (k,), (t,), (tuple(pads[-1]),), (d,))[0]
  q = -(-out // s)
  nb = ((s - 1) * t + (k - 1) * d) // S + 1
  width = (q + nb - 1) * S  # the last axis padded (or cropped: a negative high pad) to this
  lo = pads[-1][0]
  xp = lax.pad(x, jnp.zeros((), x.dtype),
               ((0, 0, 0),) * (x.ndim - 2) + ((lo, width - x.shape[-2] - lo, 0), (0, 0, 0)))
  lead = xp.shape[:-2]
  xf = xp.reshape(*lead, q + nb - 1, S, groups, c_in // groups)
  xf = jnp.swapaxes(xf, -3, -2).reshape(*lead, q + nb - 1, S * c_in)  # (group, i, c)
  wf = _fold_kernel(w, s, t, d, nb, groups)
  y = conv_rows(xf, wf, stride=(*stride[:-1], 1), pads=(*pads[:-1], (0, 0)),
                dilation=(*dilation[:-1], 1), groups=groups)  # (N, ..., q, (group, r, o))
  y = y.reshape(*y.shape[:-1], groups, s, c_out // groups)
  y = jnp.swapaxes(y, -3, -2).reshape(*y.shape[:-4], q * s, c_out)
  return y[..., :out, :]
