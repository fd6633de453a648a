"""N-d convolution (cross-correlation, as every DL framework computes it) with swappable impls.

``x``: ``(N, *spatial, C_in)`` channels-last; ``w``: ``(*window, C_in/groups, C_out)`` (Flax
layout). Output ``(N, *out_spatial, C_out)`` with ``out = floor((i + lo + hi - d*(k-1) - 1)/s) + 1``.
``impl`` picks how it is computed; every impl gives the same numbers as ``lax``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from jax import lax

from cnnlab.ops import padding as padlib

ConvImpl = Callable[..., jnp.ndarray]
_IMPLS: dict[str, ConvImpl] = {}


def register_impl(name: str):
  """Decorator: ``fn(x, w, *, stride, pads, dilation, groups) -> y`` with explicit pads."""
  def wrap(fn):
    _IMPLS[name] = fn
    return fn
  return wrap


def list_impls() -> tuple[str, ...]:
  return tuple(_IMPLS)


def dimension_numbers(nd: int) -> lax.ConvDimensionNumbers:
  """Channels-last input/output and ``(*window, I, O)`` kernel for ``nd`` spatial dims."""
  sp = "DHW"[-nd:] if nd <= 3 else None
  if sp is None:
    raise ValueError(f"conv supports 1, 2 or 3 spatial dims, got {nd}")
  return lax.conv_dimension_numbers((1,) * (nd + 2), (1,) * (nd + 2),
                                    (f"N{sp}C", f"{sp}IO", f"N{sp}C"))


@register_impl("lax")
def conv_lax(x, w, *, stride, pads, dilation, groups):
  nd = x.ndim - 2
  if any(s > 1 for s in stride) and any(d > 1 for d in dilation) and any(map(any, pads)):
    # jaxlib 0.10.2 CPU aborts in grad w.r.t. the input for stride>1 & dilation>1 & padding>0
    # (see notes/conventions): pad explicitly, then a VALID conv gives the same result.
    x, pads = padlib.pad_input(x, pads, "zeros"), ((0, 0),) * nd
  return lax.conv_general_dilated(
      x, w, window_strides=stride, padding=pads, rhs_dilation=dilation,
      dimension_numbers=dimension_numbers(nd), feature_group_count=groups)


def conv(x, w, *, stride=1, padding="VALID", dilation=1, groups=1, padding_mode="zeros",
         impl="lax"):
  """Convolves ``x`` ``(N, *spatial, C_in)`` with ``w`` ``(*window, C_in/groups, C_out)``."""
  nd = w.ndim - 2
  if x.ndim != nd + 2:
    raise ValueError(f"x has shape {x.shape}; a kernel of shape {w.shape} needs rank {nd + 2} "
                     "input (N, *spatial, C)")
  if impl not in _IMPLS:
    raise ValueError(f"impl={impl!r} is not one of {list_impls()}")
  stride = padlib.as_tuple(stride, nd, "stride")
  dilation = padlib.as_tuple(dilation, nd, "dilation")
  if not isinstance(groups, int) or groups < 1 or x.shape[-1] % groups or w.shape[-1] % groups:
    raise ValueError(f"groups={groups!r} must divide C_in={x.shape[-1]} and C_out={w.shape[-1]}")
  if x.shape[-1] != w.shape[-2] * groups:
    raise ValueError(f"kernel {w.shape} expects C_in/groups={w.shape[-2]}, input has "
                     f"C_in={x.shape[-1]} with groups={groups}")
  pads = padlib.explicit_padding(padding, x.shape[1:-1], w.shape[:-2], stride, dilation)
  if padding_mode != "zeros":
    x, pads = padlib.pad_input(x, pads, padding_mode), ((0, 0),) * nd
  return _IMPLS[impl](x, w, stride=stride, pads=pads, dilation=dilation, groups=groups)
