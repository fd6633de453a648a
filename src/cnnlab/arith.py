"""Convolution arithmetic (Dumoulin & Visin, "A guide to convolution arithmetic"), one spatial dim.

Every dim of a conv/pool is independent, so each function takes the numbers of one dim
(call it per dim for N-d). ``padding`` is an int (both sides) or a ``(lo, hi)`` pair.

- conv: ``o = floor((i + lo + hi - d*(k-1) - 1) / s) + 1``.
- pool, ``ceil_mode=True`` (torch): ceil instead of floor, then drop the last window if it would
  start inside the right padding (``(o-1)*s >= i + lo``).
- transposed conv (torch): ``o = (i-1)*s - lo - hi + d*(k-1) + output_padding + 1``,
  ``output_padding < max(s, d)``.
- receptive field of a stack: ``r_out = r_in + (k-1)*d*j_in``, ``j_out = j_in*s``,
  ``start_out = start_in + ((k-1)*d/2 - lo)*j_in`` (``start``: input coordinate of the centre of
  the first output unit's field; pixel ``n`` is at coordinate ``n``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def _pos(name, v):
  if not isinstance(v, int) or isinstance(v, bool) or v < 1:
    raise ValueError(f"{name} must be an int >= 1, got {v!r}")
  return v


def _pads(padding):
  pair = (padding, padding) if isinstance(padding, int) else tuple(padding)
  if len(pair) != 2 or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0
                               for p in pair):
    raise ValueError(f"padding must be an int >= 0 or a (lo, hi) pair of them, got {padding!r}")
  return pair


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1):
  """Output length of a conv (or a floor-mode pool) along one dim."""
  i, k, s, d = (_pos(n, v) for n, v in
                (("size", size), ("kernel", kernel), ("stride", stride), ("dilation", dilation)))
  lo, hi = _pads(padding)
  span = i + lo + hi - d * (k - 1) - 1
  if span < 0:
    raise ValueError(f"kernel {k} (dilation {d}, effective {d * (k - 1) + 1}) is larger than "
                     f"the padded input {i + lo + hi}")
  return span // s + 1


def pool_output_size(size, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
  """Output length of a torch pool along one dim; ``stride`` defaults to ``kernel``.

  ``padding`` is symmetric and at most ``kernel // 2`` (torch's rule, which ignores dilation)."""
  stride = kernel if stride is None else stride
  if not ceil_mode:
    o = conv_output_size(size, kernel, stride, padding, dilation)
  if not isinstance(padding, int) or padding > kernel // 2:
    raise ValueError(f"padding={padding!r} must be an int at most half the window "
                     f"(kernel // 2 = {kernel // 2}; torch rule)")
  if ceil_mode:  # the last window may hang over the end, even past a short input (as torch)
    i, k, s, d = (_pos(n, v) for n, v in (("size", size), ("kernel", kernel),
                                          ("stride", stride), ("dilation", dilation)))
    o = -(-(i + 2 * padding - d * (k - 1) - 1) // s) + 1
    if (o - 1) * s >= i + padding:
      o -= 1
    if o < 1:
      raise ValueError(f"kernel {k} (dilation {d}) leaves no output on an input of {i} with "
                       f"padding {padding} and stride {s}, even in ceil mode")
  return o


def conv_transpose_output_size(size, kernel, stride=1, padding=0, dilation=1,
                               output_padding=0):
  """Output length of a torch ``ConvTranspose`` along one dim."""
  i, k, s, d = (_pos(n, v) for n, v in
                (("size", size), ("kernel", kernel), ("stride", stride), ("dilation", dilation)))
  lo, hi = _pads(padding)
  if not isinstance(output_padding, int) or not 0 <= output_padding < max(s, d):
    raise ValueError(f"output_padding={output_padding!r} must be an int in [0, max(stride, "
                     f"dilation)) = [0, {max(s, d)})")
  o = (i - 1) * s - lo - hi + d * (k - 1) + output_padding + 1
  if o < 1:
    raise ValueError(f"transposed conv output size {o} < 1: padding {padding!r} is too large")
  return o


class Layer(NamedTuple):
  """One conv or pool layer along one dim (a pool's field is that of a conv with its window)."""
  kernel: int
  stride: int = 1
  padding: int | tuple[int, int] = 0
  dilation: int = 1


class Field(NamedTuple):
  """After a layer: receptive field ``size``, ``jump`` (input distance between neighbouring
  outputs) and ``start`` (centre of output 0's field, in input coordinates)."""
  size: int
  jump: int
  start: float


def receptive_fields(layers) -> list[Field]:
  """The :class:`Field` after each of ``layers`` (``Layer`` or ``(k, s, p, d)`` tuples)."""
  r, j, start, out = 1, 1, 0.0, []
  for layer in layers:
    k, s, p, d = Layer(*layer)
    _pos("kernel", k), _pos("stride", s), _pos("dilation", d)
    lo, _ = _pads(p)
    start += ((k - 1) * d / 2 - lo) * j
    r += (k - 1) * d * j
    j *= s
    out.append(Field(r, j, start))
  return out


def receptive_field_bounds(layers, unit=0) -> tuple[int, int]:
  """Inclusive input index range seen by output ``unit`` of the stack (may reach into the
  padding: below 0 or beyond the input)."""
  f = receptive_fields(layers)[-1]
  centre = f.start + unit * f.jump
  return int(math.floor(centre - (f.size - 1) / 2)), int(math.floor(centre + (f.size - 1) / 2))


def empirical_receptive_field(layers, size, unit=0) -> tuple[int, int] | None:
  """Inclusive range of input indices where the gradient of output ``unit`` is nonzero, for the
  stack of linear convs with all-ones kernels on a length-``size`` input (clipped to the input,
  unlike :func:`receptive_field_bounds`); ``None`` for a unit that sees only padding.
  Each layer pads with ``jnp.pad`` and runs a VALID conv (the jaxlib 0.10.2 crash of
  docs/conventions.md, "Upstream crash", needs stride, dilation and conv padding in one conv)."""
  layers = [Layer(*layer) for layer in layers]
  n = size
  for k, s, p, d in layers:
    n = conv_output_size(n, k, s, p, d)
  if not isinstance(unit, int) or not 0 <= unit < n:
    raise ValueError(f"unit={unit!r} must be an int in [0, {n}) (the stack's output length)")

  def unit_out(x_1xWx1):
    for k, s, p, d in layers:
      x_1xWx1 = jnp.pad(x_1xWx1, ((0, 0), _pads(p), (0, 0)))
      x_1xWx1 = lax.conv_general_dilated(x_1xWx1, jnp.ones((k, 1, 1), x_1xWx1.dtype), (s,),
                                         "VALID", rhs_dilation=(d,),
                                         dimension_numbers=("NWC", "WIO", "NWC"))
    return x_1xWx1[0, unit, 0]

  g = np.asarray(jax.jit(jax.grad(unit_out))(jnp.ones((1, size, 1), jnp.float32)))[0, :, 0]
  nz = np.flatnonzero(g)
  return (int(nz[0]), int(nz[-1])) if nz.size else None
