"""Padding specs for conv/pool: parse once into explicit ``(lo, hi)`` pairs per spatial dim.

Accepted ``padding``: ``'VALID'``, ``'SAME'`` (TF/Flax: ``out = ceil(in / stride)``, the odd
extra pad on the high side), ``'FULL'`` (``d*(k-1)`` on both sides), ``'CAUSAL'`` (1D only,
``d*(k-1)`` on the low side), an int (same on both sides of every dim), a sequence of ints (one
per dim, both sides) or a sequence of ``(lo, hi)`` pairs.
Accepted ``padding_mode``: ``'zeros'`` | ``'reflect'`` | ``'replicate'`` | ``'circular'``
(torch's names; the non-zero modes pad the input explicitly with ``jnp.pad``).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

PADDING_STRINGS = ("VALID", "SAME", "FULL", "CAUSAL")
PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}

Pairs = tuple[tuple[int, int], ...]


def as_tuple(value, n: int, name: str) -> tuple[int, ...]:
  """An int or a length-``n`` sequence of ints as a tuple of ``n`` positive ints."""
  out = (value,) * n if isinstance(value, int) else value
  if not isinstance(out, Sequence) or len(out) != n or not all(isinstance(v, int) for v in out):
    raise ValueError(f"{name} must be an int or {n} ints (one per spatial dim), got {value!r}")
  out = tuple(out)
  if any(v < 1 for v in out):
    raise ValueError(f"{name} must be >= 1, got {value!r}")
  return out


def explicit_padding(padding, in_sizes: Sequence[int], window: Sequence[int],
                     stride: Sequence[int], dilation: Sequence[int]) -> Pairs:
  """``padding`` (see module doc) as explicit ``((lo, hi), ...)`` pairs, one per spatial dim."""
  n = len(window)
  eff = [d * (k - 1) + 1 for k, d in zip(window, dilation)]
  if isinstance(padding, str):
    mode = padding.upper()
    if mode == "VALID":
      return ((0, 0),) * n
    if mode == "SAME":
      pads = []
      for i, e, s in zip(in_sizes, eff, stride):
        out = -(-i // s)
        total = max((out - 1) * s + e - i, 0)
        pads.append((total // 2, total - total // 2))
      return tuple(pads)
    if mode == "FULL":
      return tuple((e - 1, e - 1) for e in eff)
    if mode == "CAUSAL":
      if n != 1:
        raise ValueError(f"padding='CAUSAL' is for 1D convs only, got {n} spatial dims")
      return ((eff[0] - 1, 0),)
    raise ValueError(f"padding={padding!r} is not one of {PADDING_STRINGS}, an int, "
                     "ints per dim or (lo, hi) pairs per dim")
  if isinstance(padding, int):
    pairs = ((padding, padding),) * n
  else:
    if not isinstance(padding, Sequence) or len(padding) != n:
      raise ValueError(f"padding needs one entry per spatial dim ({n}), got {padding!r}")
    pairs = tuple(tuple(p) if isinstance(p, Sequence) else (p, p) for p in padding)
  if any(len(p) != 2 or not all(isinstance(v, int) and v >= 0 for v in p) for p in pairs):
    raise ValueError(f"padding must be non-negative ints or (lo, hi) pairs, got {padding!r}")
  return pairs


def pad_input(x, pads: Pairs, padding_mode: str):
  """Pads the spatial dims of channels-last ``x`` (batch first) with a torch-named mode."""
  if padding_mode not in PADDING_MODES:
    raise ValueError(f"padding_mode={padding_mode!r} is not one of {tuple(PADDING_MODES)}")
  widths = ((0, 0),) + tuple(pads) + ((0, 0),)
  return jnp.pad(x, widths, mode=PADDING_MODES[padding_mode])
