"""Pooling over the spatial dims of channels-last ``(N, *spatial, C)`` arrays, torch semantics.

``window``/``stride``/``padding``/``dilation`` are ints or per-dim tuples; ``stride`` defaults to
``window`` (as in torch). ``padding`` is symmetric (torch): ``p`` on both sides of each dim, at most
``window // 2``. ``ceil_mode``: output size uses ceil, but a last window that would start
inside the right padding is dropped (torch rule, see ``cnnlab.arith.pool_output_size`` and
docs/conventions.md, "Pooling").

Max-pool indices follow torch's ``return_indices``: for each ``(n, output position, c)`` the flat
row-major index into the *unpadded* input spatial dims (``h * W + w`` in 2D) of the window's max.
Tie rule (values and gradient): the first maximum in the window's row-major scan order, i.e. the
smallest flat index, as torch's CPU kernel (``val > maxval``). NaN wins over numbers. A dilated
window that holds only padding (input shorter than the dilation) gives ``-inf``, index
``2**31 - 1`` and no gradient (torch returns an arbitrary index there and its backward can crash).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cnnlab import arith
from cnnlab.ops import padding as padlib

_NO_INDEX = np.iinfo(np.int32).max  # index of padding: loses every tie against a real element


def pool_geometry(in_sizes, window, stride, padding, dilation, ceil_mode):
  """Per-dim ``(lo, hi)`` pads (``hi`` includes the ceil-mode extra) and the output sizes."""
  pads, outs = [], []
  for i, k, s, p, d in zip(in_sizes, window, stride, padding, dilation):
    o = arith.pool_output_size(i, k, s, p, d, ceil_mode)
    pads.append((p, max((o - 1) * s + d * (k - 1) + 1 - i - p, p)))
    outs.append(o)
  return tuple(pads), tuple(outs)


def _args(x, window, stride, padding, dilation=1):
  if getattr(x, "ndim", 0) < 3:
    raise ValueError(f"x must be (N, *spatial, C) with at least one spatial dim, got shape "
                     f"{getattr(x, 'shape', None)}")
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


def _lowest(dtype):
  """The padding value of max pooling: ``-inf``, or the smallest integer."""
  return jnp.array(-jnp.inf if jnp.issubdtype(dtype, jnp.inexact) else jnp.iinfo(dtype).min,
                   dtype)


def _argmax_pick(a, b):
  (va, ia), (vb, ib) = a, b
  nan_a, nan_b = jnp.isnan(va), jnp.isnan(vb)
  first = ib < ia
  take_b = jnp.where(nan_a | nan_b, nan_b & (~nan_a | first), (vb > va) | ((vb == va) & first))
  return jnp.where(take_b, vb, va), jnp.where(take_b, ib, ia)


def _window_argmax(x, window, stride, pads, dilation):
  """Flat spatial index (int32, shape of the pooled output) of each window's max."""
  spatial = x.shape[1:-1]
  idx = jnp.broadcast_to(jnp.arange(math.prod(spatial), dtype=jnp.int32).reshape(
      (1, *spatial, 1)), x.shape)
  init = (_lowest(x.dtype), jnp.array(_NO_INDEX, jnp.int32))
  _, arg = lax.reduce_window((x, idx), init, _argmax_pick, (1, *window, 1), (1, *stride, 1),
                             ((0, 0), *pads, (0, 0)), window_dilation=(1, *dilation, 1))
  return arg


def _scatter(values, indices, spatial, add):
  """``(N, *out, C)`` values put at flat spatial ``indices`` of a zero ``(N, *spatial, C)``."""
  n, c = values.shape[0], values.shape[-1]
  v, i = values.reshape(n, -1, c), indices.reshape(n, -1, c)
  at = jnp.zeros((n, math.prod(spatial), c), values.dtype).at[
      jnp.arange(n)[:, None, None], i, jnp.arange(c)[None, None, :]]
  out = at.add(v, mode="drop") if add else at.set(v, mode="drop")
  return out.reshape((n, *spatial, c))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _max_pool(x, window, stride, pads, dilation):
  """Max pool whose gradient goes to the arg-max only (pads: explicit ``(lo, hi)`` pairs)."""
  return _reduce(x, _lowest(x.dtype), lax.max, window, stride, pads, dilation)


def _max_pool_fwd(x, window, stride, pads, dilation):
  idx = _window_argmax(x, window, stride, pads, dilation)
  n, c = x.shape[0], x.shape[-1]
  y = jnp.take_along_axis(x.reshape(n, -1, c), idx.reshape(n, -1, c), axis=1)
  # The residual's shape carries x's (static) shape; it holds no data.
  return y.reshape(idx.shape), (idx, jnp.empty(x.shape[:-1] + (0,), x.dtype))


def _max_pool_bwd(window, stride, pads, dilation, res, g):
  idx, x_shape = res
  return (_scatter(g, idx, x_shape.shape[1:-1], add=True),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool(x, window, stride=None, padding=0, *, ceil_mode=False, dilation=1):
  """Max over each window; padding never wins (pads with -inf, or the smallest integer).
  Gradient (a ``jax.custom_vjp``): all of an output's cotangent goes to its window's arg-max
  (first maximum in scan order, see module doc); forward-mode AD (``jax.jvp``) is not defined."""
  window, stride, padding, dilation = _args(x, window, stride, padding, dilation)
  pads, _ = pool_geometry(x.shape[1:-1], window, stride, padding, dilation, ceil_mode)
  return _max_pool(x, window, stride, pads, dilation)


def max_pool_with_indices(x, window, stride=None, padding=0, *, ceil_mode=False, dilation=1):
  """``(max_pool(x, ...), indices)``; ``indices`` int32 like the output, flat spatial index per
  channel (torch's ``return_indices``). The values are differentiable, the indices are not."""
  window, stride, padding, dilation = _args(x, window, stride, padding, dilation)
  pads, _ = pool_geometry(x.shape[1:-1], window, stride, padding, dilation, ceil_mode)
  idx = lax.stop_gradient(_window_argmax(x, window, stride, pads, dilation))
  return _max_pool(x, window, stride, pads, dilation), idx


def max_unpool(x, indices, window, stride=None, padding=0, output_size=None):
  """Inverse of :func:`max_pool_with_indices` (torch ``max_unpool``): zeros of spatial size
  ``output_size`` (default ``(i-1)*s - 2p + k`` per dim) with ``x`` written at ``indices``.
  Indices outside the output are dropped; duplicates keep one of their (equal) values."""
  window, stride, padding, _ = _args(x, window, stride, padding)
  if getattr(indices, "shape", None) != x.shape or not jnp.issubdtype(indices.dtype, jnp.integer):
    raise ValueError(f"indices must be an integer array of x's shape {x.shape}, got "
                     f"{getattr(indices, 'dtype', None)} {getattr(indices, 'shape', None)}")
  default = tuple((i - 1) * s - 2 * p + k
                  for i, k, s, p in zip(x.shape[1:-1], window, stride, padding))
  if output_size is None:
    output_size = default
  output_size = padlib.as_tuple(output_size, x.ndim - 2, "output_size")
  if any(not d - s < o < d + s for o, d, s in zip(output_size, default, stride)):
    raise ValueError(f"output_size={output_size} must be within stride {stride} of the "
                     f"default {default} in every dim (torch rule)")
  return _unpool(x, indices, output_size)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _unpool(x, indices, spatial):
  """Scatter with torch's gradient: each input gets the output cotangent at its index (also
  where indices repeat; plain autodiff of a scatter-set would credit only one of them)."""
  return _scatter(x, indices, spatial, add=False)


def _unpool_fwd(x, indices, spatial):
  return _unpool(x, indices, spatial), indices


def _unpool_bwd(spatial, indices, g):
  n, c = g.shape[0], g.shape[-1]
  flat = jnp.take_along_axis(g.reshape(n, -1, c), indices.reshape(n, -1, c), axis=1,
                             mode="fill", fill_value=0)
  return flat.reshape(indices.shape), None


_unpool.defvjp(_unpool_fwd, _unpool_bwd)


def avg_pool(x, window, stride=None, padding=0, *, ceil_mode=False, count_include_pad=True):
  """Mean over each window. The divisor counts the explicit padding iff ``count_include_pad``,
  never the ceil-mode overhang (torch)."""
  window, stride, padding, dilation = _args(x, window, stride, padding)
  pads, _ = pool_geometry(x.shape[1:-1], window, stride, padding, dilation, ceil_mode)
  total = _reduce(x, np.zeros((), x.dtype), lax.add, window, stride, pads, dilation)
  # Divisor: windows over a 0/1 mask of the positions that count (static, computed in numpy).
  inner = [(p if count_include_pad else 0, p if count_include_pad else 0) for p in padding]
  ones = np.pad(np.ones(x.shape[1:-1], np.float32), inner, constant_values=1.0)
  outer = [(lo - a, hi - b) for (lo, hi), (a, b) in zip(pads, inner)]
  count = _reduce(ones[None, ..., None], np.float32(0), lax.add, window, stride, outer, dilation)
  return total / jnp.asarray(count, total.dtype)


def _check_rank(x, name):
  if getattr(x, "ndim", 0) < 3:
    raise ValueError(f"{name}: x must be (N, *spatial, C), got shape {getattr(x, 'shape', None)}")


def global_avg_pool(x, keepdims=False):
  """Mean over all spatial dims: ``(N, *spatial, C) -> (N, C)``."""
  _check_rank(x, "global_avg_pool")
  return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)), keepdims=keepdims)


def global_max_pool(x, keepdims=False):
  """Max over all spatial dims: ``(N, *spatial, C) -> (N, C)``."""
  _check_rank(x, "global_max_pool")
  return jnp.max(x, axis=tuple(range(1, x.ndim - 1)), keepdims=keepdims)


def adaptive_avg_pool(x, output_size):
  """Mean over torch's adaptive bins: bin ``j`` of a dim of size ``i`` covers
  ``[floor(j*i/o), ceil((j+1)*i/o))``. ``output_size``: int or per-dim tuple."""
  _check_rank(x, "adaptive_avg_pool")
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
