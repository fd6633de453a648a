"""Argument parsing for ``conv``: shapes and options in, one validated ``ConvCase`` out.

``make_case(x_shape, w_shape, x_dtype, w_dtype, *, stride, padding, dilation, groups,
padding_mode)`` checks everything on shapes alone (before any compilation) and raises one
``ValueError`` naming the argument and the allowed values. The case holds what an impl sees:
explicit ``(lo, hi)`` zero pads; a non-zero ``padding_mode`` is already applied (the case's
``x_shape`` is the padded input's, its pads are zero).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from cnnlab.ops import padding as padlib


@dataclasses.dataclass(frozen=True)
class ConvCase:
  """One conv after argument parsing, as the impl sees it (non-zero padding modes applied)."""
  x_shape: tuple[int, ...]
  w_shape: tuple[int, ...]
  stride: tuple[int, ...]
  pads: padlib.Pairs
  dilation: tuple[int, ...]
  groups: int
  dtype: np.dtype

  @property
  def nd(self) -> int:
    return len(self.w_shape) - 2

  @property
  def window(self) -> tuple[int, ...]:
    return self.w_shape[:-2]

  @property
  def out_spatial(self) -> tuple[int, ...]:
    return output_spatial(self.x_shape[1:-1], self.window, self.stride, self.pads, self.dilation)


def output_spatial(in_spatial, window, stride, pads, dilation) -> tuple[int, ...]:
  """``floor((i + lo + hi - d*(k-1) - 1) / s) + 1`` per spatial dim."""
  return tuple((i + lo + hi - d * (k - 1) - 1) // s + 1
               for i, k, s, (lo, hi), d in zip(in_spatial, window, stride, pads, dilation))


def spatial_dims(x_shape, w_shape, *, op: str, kernel: str, channels: str) -> int:
  """The number of spatial dims (1-3) of a conv-like ``op``; checks the ranks of x and w.

  ``kernel`` / ``channels`` describe the expected kernel and input layouts in the message."""
  nd = len(w_shape) - 2
  if not 1 <= nd <= 3:
    raise ValueError(f"w has shape {w_shape}; {op} needs a kernel {kernel} with 1, 2 or 3 "
                     "spatial dims")
  if len(x_shape) != nd + 2:
    raise ValueError(f"x has shape {x_shape}; a kernel of shape {w_shape} needs rank {nd + 2} "
                     f"input (N, *spatial, {channels})")
  return nd


def _check_padding_mode(padding_mode, in_spatial, pads):
  if padding_mode not in padlib.PADDING_MODES:
    raise ValueError(f"padding_mode={padding_mode!r} is not one of {tuple(padlib.PADDING_MODES)}")
  # torch: reflect needs pad < size, circular pad <= size (jnp.pad would silently wrap again).
  bound = {"reflect": lambda i: i - 1, "circular": lambda i: i}.get(padding_mode)
  if bound and any(max(p) > bound(i) for i, p in zip(in_spatial, pads)):
    raise ValueError(f"padding_mode={padding_mode!r} needs padding < input size (reflect) or "
                     f"<= input size (circular), as in torch; got padding {pads} for spatial "
                     f"size {tuple(in_spatial)}")


def make_case(x_shape, w_shape, x_dtype, w_dtype, *, stride=1, padding="VALID", dilation=1,
              groups=1, padding_mode="zeros") -> ConvCase:
  """Parses and validates ``conv``'s arguments (shapes only); raises ``ValueError`` if invalid."""
  x_shape, w_shape = tuple(x_shape), tuple(w_shape)
  nd = spatial_dims(x_shape, w_shape, op="conv", kernel="(*window, C_in/groups, C_out)",
                    channels="C")
  if np.dtype(x_dtype) != np.dtype(w_dtype) or not jnp.issubdtype(x_dtype, jnp.floating):
    raise ValueError(f"x and w must share one floating dtype, got x {np.dtype(x_dtype)} and "
                     f"w {np.dtype(w_dtype)}")
  if min(w_shape) < 1:
    raise ValueError(f"w has shape {w_shape}; every kernel dim must be >= 1")
  stride = padlib.as_tuple(stride, nd, "stride")
  dilation = padlib.as_tuple(dilation, nd, "dilation")
  if (isinstance(groups, bool) or not isinstance(groups, int) or groups < 1
      or x_shape[-1] % groups or w_shape[-1] % groups):
    raise ValueError(f"groups={groups!r} must divide C_in={x_shape[-1]} and C_out={w_shape[-1]}")
  if x_shape[-1] != w_shape[-2] * groups:
    raise ValueError(f"kernel {w_shape} expects C_in/groups={w_shape[-2]}, input has "
                     f"C_in={x_shape[-1]} with groups={groups}")
  in_spatial = x_shape[1:-1]
  pads = padlib.explicit_padding(padding, in_spatial, w_shape[:-2], stride, dilation)
  _check_padding_mode(padding_mode, in_spatial, pads)
  if min(output_spatial(in_spatial, w_shape[:-2], stride, pads, dilation)) < 1:
    raise ValueError(f"kernel window {w_shape[:-2]} with dilation {dilation} is larger than the "
                     f"padded input (spatial {in_spatial}, padding {pads}): empty output")
  if padding_mode != "zeros":
    x_shape = (x_shape[0], *(i + lo + hi for i, (lo, hi) in zip(in_spatial, pads)), x_shape[-1])
    pads = ((0, 0),) * nd
  return ConvCase(x_shape, w_shape, stride, pads, dilation, groups, np.dtype(x_dtype))
