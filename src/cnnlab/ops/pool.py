"""Pooling over the spatial dims of channels-last ``(N, *spatial, C)`` arrays, torch semantics.

``window``/``stride``/``padding`` are ints or per-dim tuples; ``stride`` defaults to ``window``
(as in torch). ``padding`` is symmetric (torch): ``p`` on both sides of each dim.
``ceil_mode``: output size uses ceil, but a last window that would start inside the right padding
is dropped (torch rule).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from cnnlab.ops import padding as padlib


def pool_geometry(in_sizes, window, stride, padding, dilation, ceil_mode):
  """Per-dim ``(lo, hi)`` pads (``hi`` includes the ceil-mode extra) and the output sizes."""
  pads, outs = [], []
  for i, k, s, p, d in zip(in_sizes, window, stride, padding, dilation):
    if p > (d * (k - 1) + 1) // 2:
      raise ValueError(f"padding={p} must be at most half the effective window "
                       f"{d * (k - 1) + 1} (torch rule)")
    span = i + 2 * p - d * (k - 1) - 1
    if span < 0:
      raise ValueError(f"window {k} (dilation {d}) is larger than the padded input {i + 2 * p}")
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= i + p:
      o -= 1
    pads.append((p, max((o - 1) * s + d * (k - 1) + 1 - i - p, p)))
    outs.append(o)
  return tuple(pads), tuple(outs)


def _args(x, window, stride, padding, dilation=1):
  nd = x.ndim - 2
  window = padlib.as_tuple(window, nd, "window")
  stride = window if stride is None else padlib.as_tuple(stride, nd, "stride")
  dilation = padlib.as_tuple(dilation, nd, "dilation")
  padding = (padding,) * nd if isinstance(padding, int) else tuple(padding)
  if len(padding) != nd or any(not isinstance(p, int) or p < 0 for p in padding):
    raise ValueError(f"padding must be a non-negative int or {nd} of them, got {padding!r}")
  return window, stride, padding, dilation


def _reduce(x, init, op, window, stride, pads, dilation):
  return lax.reduce_window(x, init, op, (1, *window, 1), (1, *stride, 1),
                           ((0, 0), *pads, (0, 0)), window_dilation=(1, *dilation, 1))


def max_pool(x, window, stride=None, padding=0, *, ceil_mode=False, dilation=1):
  """Max over each window; padding never wins (pads with -inf)."""
  window, stride, padding, dilation = _args(x, window, stride, padding, dilation)
  pads, _ = pool_geometry(x.shape[1:-1], window, stride, padding, dilation, ceil_mode)
  return _reduce(x, -jnp.inf, lax.max, window, stride, pads, dilation)


def avg_pool(x, window, stride=None, padding=0, *, ceil_mode=False, count_include_pad=True):
  """Mean over each window. The divisor counts the explicit padding iff ``count_include_pad``,
  never the ceil-mode overhang (torch)."""
  window, stride, padding, dilation = _args(x, window, stride, padding)
  pads, _ = pool_geometry(x.shape[1:-1], window, stride, padding, dilation, ceil_mode)
  total = _reduce(x, 0.0, lax.add, window, stride, pads, dilation)
  # Divisor: windows over a 0/1 mask of the positions that count (static, computed in numpy).
  inner = [(p if count_include_pad else 0, p if count_include_pad else 0) for p in padding]
  ones = np.pad(np.ones(x.shape[1:-1], np.float32), inner, constant_values=1.0)
  outer = [(lo - a, hi - b) for (lo, hi), (a, b) in zip(pads, inner)]
  count = _reduce(jnp.asarray(ones)[None, ..., None], 0.0, lax.add, window, stride, outer,
                  dilation)
  return total / count.astype(total.dtype)


def global_avg_pool(x, keepdims=False):
  """Mean over all spatial dims: ``(N, *spatial, C) -> (N, C)``."""
  return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)), keepdims=keepdims)


def global_max_pool(x, keepdims=False):
  """Max over all spatial dims: ``(N, *spatial, C) -> (N, C)``."""
  return jnp.max(x, axis=tuple(range(1, x.ndim - 1)), keepdims=keepdims)


def adaptive_avg_pool(x, output_size):
  """Mean over torch's adaptive bins: bin ``j`` of a dim of size ``i`` covers
  ``[floor(j*i/o), ceil((j+1)*i/o))``. ``output_size``: int or per-dim tuple."""
  nd = x.ndim - 2
  output_size = padlib.as_tuple(output_size, nd, "output_size")
  for axis, (i, o) in enumerate(zip(x.shape[1:-1], output_size), start=1):
    starts = [(j * i) // o for j in range(o)]
    ends = [-(-((j + 1) * i) // o) for j in range(o)]
    # (o, i) averaging matrix: static, built in numpy, applied as one contraction per dim.
    m = np.zeros((o, i), np.float32)
    for j, (a, b) in enumerate(zip(starts, ends)):
      m[j, a:b] = 1.0 / (b - a)
    x = jnp.moveaxis(jnp.tensordot(x, jnp.asarray(m, x.dtype), axes=((axis,), (1,))), -1, axis)
  return x
