"""N-d convolution (cross-correlation, as every DL framework computes it) with swappable impls.

``x``: ``(N, *spatial, C_in)`` channels-last; ``w``: ``(*window, C_in/groups, C_out)`` (Flax
layout). Output ``(N, *out_spatial, C_out)`` with ``out = floor((i + lo + hi - d*(k-1) - 1)/s) + 1``.
Groups split ``C_in`` and ``C_out`` into contiguous blocks (as ``lax``/torch do).

``impl`` picks how it is computed; every impl gives the same numbers as ``lax``:

- ``lax``: ``lax.conv_general_dilated``.
- ``im2col``: patch matrix by strided slicing, then one matmul (``conv_im2col.py``).
- ``shift``: sum over kernel offsets of strided-slice x kernel-slice matmuls (``conv_shift.py``).
- ``fft``: ``rfftn`` product, ``irfftn``, crop and subsample (``conv_fft.py``).
- ``matmul`` / ``matmul_sparse``: the conv as an explicit dense / BCOO matrix (``conv_matmul.py``,
  which also exports ``conv_matrix``); small inputs only.
- ``winograd`` F(2x2,3x3) and ``winograd_f4`` F(4x4,3x3): 2D, 3x3, stride 1, no dilation.

Capabilities: an impl registers with ``limits(case) -> str | None`` that names the option it
cannot serve. Ask before calling:

- ``supports(impl, x_shape, w_shape, *, stride, padding, dilation, groups, padding_mode, dtype)``
  -> bool (same argument parsing as ``conv``; invalid arguments still raise ``ValueError``);
- ``impls_supporting(x_shape, w_shape, **same)`` -> the registered impls that can serve the case;
- with a parsed case: ``make_case(x_shape, w_shape, x_dtype, w_dtype, **conv_kwargs)`` ->
  ``ConvCase`` (the shapes/pads an impl sees), then ``unsupported_reason(impl, case)``.

``conv`` itself raises a ``ValueError`` naming the impl, the option and the impls that can.
All checks look at shapes only, so they run before any compilation.
Import these names from this module (``from cnnlab.ops.conv import supports``): the package
attribute ``cnnlab.ops.conv`` is the ``conv`` function, not this module.
Dtypes: ``x`` and ``w`` share one floating dtype; the output has it too. Matmul impls accumulate
low-precision inputs (bfloat16/float16) in float32; ``fft`` and ``winograd`` compute in float32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from jax import lax

from cnnlab.ops import padding as padlib

ConvImpl = Callable[..., jnp.ndarray]
_IMPLS: dict[str, ConvImpl] = {}
_LIMITS: dict[str, Callable[["ConvCase"], str | None]] = {}


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


def register_impl(name: str, limits: Callable[[ConvCase], str | None] | None = None):
  """Decorator: ``fn(x, w, *, stride, pads, dilation, groups) -> y`` with explicit pads.

  ``limits(case)`` returns why the impl cannot serve ``case`` (naming the option), else None.
  """
  def wrap(fn):
    _IMPLS[name] = fn
    if limits is not None:
      _LIMITS[name] = limits
    return fn
  return wrap


def list_impls() -> tuple[str, ...]:
  return tuple(_IMPLS)


def output_spatial(in_spatial, window, stride, pads, dilation) -> tuple[int, ...]:
  """``floor((i + lo + hi - d*(k-1) - 1) / s) + 1`` per spatial dim."""
  return tuple((i + lo + hi - d * (k - 1) - 1) // s + 1
               for i, k, s, (lo, hi), d in zip(in_spatial, window, stride, pads, dilation))


def window_slice(xp, offset, stride, dilation, out_spatial):
  """``xp[:, o*s + k*d, :]`` for all output positions ``o``: the input under kernel offset ``k``.

  ``xp``: padded ``(N, *spatial, C)``; returns ``(N, *out_spatial, C)`` (a strided slice).
  """
  start = (0, *(k * d for k, d in zip(offset, dilation)), 0)
  limit = (xp.shape[0], *(b + (o - 1) * s + 1 for b, o, s in zip(start[1:-1], out_spatial, stride)),
           xp.shape[-1])
  return lax.slice(xp, start, limit, (1, *stride, 1))


def accum_dtype(dtype):
  """float32 for bfloat16/float16 inputs (accumulate in float32), else ``dtype``."""
  return jnp.promote_types(dtype, jnp.float32)


def grouped_matmul(a_KxC, w_KxCgxO, groups):
  """``a`` ``(..., K, C_in)`` times ``w`` ``(K, C_in/groups, C_out)`` -> ``(..., C_out)``.

  Contracts ``K`` and each group's channels; one matmul when ``groups == 1``. The result is in
  ``accum_dtype`` (callers cast back).
  """
  acc = accum_dtype(a_KxC.dtype)
  if groups == 1:  # (..., K*C_in) @ (K*C_in, C_out): contiguous reshapes, one dot
    a = a_KxC.reshape(*a_KxC.shape[:-2], -1)
    return jnp.matmul(a, w_KxCgxO.reshape(a.shape[-1], -1), preferred_element_type=acc)
  a = a_KxC.reshape(*a_KxC.shape[:-1], groups, -1)
  w = w_KxCgxO.reshape(*w_KxCgxO.shape[:-1], groups, -1)
  y = jnp.einsum("...kgc,kcgo->...go", a, w, preferred_element_type=acc)
  return y.reshape(*y.shape[:-2], -1)


def dimension_numbers(nd: int) -> lax.ConvDimensionNumbers:
  """Channels-last input/output and ``(*window, I, O)`` kernel for ``nd`` spatial dims."""
  sp = "DHW"[-nd:] if 1 <= nd <= 3 else None
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
  nd = len(w_shape) - 2
  if not 1 <= nd <= 3:
    raise ValueError(f"w has shape {w_shape}; conv needs a kernel (*window, C_in/groups, C_out) "
                     "with 1, 2 or 3 spatial dims")
  if len(x_shape) != nd + 2:
    raise ValueError(f"x has shape {x_shape}; a kernel of shape {w_shape} needs rank {nd + 2} "
                     "input (N, *spatial, C)")
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


def unsupported_reason(impl: str, case: ConvCase) -> str | None:
  """Why ``impl`` cannot serve ``case`` (naming the option), or None if it can."""
  if impl not in _IMPLS:
    raise ValueError(f"impl={impl!r} is not one of {list_impls()}")
  limits = _LIMITS.get(impl)
  return None if limits is None else limits(case)


def supports(impl: str, x_shape, w_shape, *, stride=1, padding="VALID", dilation=1, groups=1,
             padding_mode="zeros", dtype=jnp.float32) -> bool:
  """Whether ``conv(..., impl=impl)`` can serve these arguments (same parsing as ``conv``)."""
  case = make_case(x_shape, w_shape, dtype, dtype, stride=stride, padding=padding,
                   dilation=dilation, groups=groups, padding_mode=padding_mode)
  return unsupported_reason(impl, case) is None


def impls_supporting(x_shape, w_shape, **kwargs) -> tuple[str, ...]:
  """The registered impls that ``supports`` these arguments (``kwargs`` as in ``supports``)."""
  return tuple(name for name in _IMPLS if supports(name, x_shape, w_shape, **kwargs))


def conv(x, w, *, stride=1, padding="VALID", dilation=1, groups=1, padding_mode="zeros",
         impl="lax"):
  """Convolves ``x`` ``(N, *spatial, C_in)`` with ``w`` ``(*window, C_in/groups, C_out)``."""
  if impl not in _IMPLS:
    raise ValueError(f"impl={impl!r} is not one of {list_impls()}")
  x, w = jnp.asarray(x), jnp.asarray(w)
  case = make_case(x.shape, w.shape, x.dtype, w.dtype, stride=stride, padding=padding,
                   dilation=dilation, groups=groups, padding_mode=padding_mode)
  reason = unsupported_reason(impl, case)
  if reason is not None:
    able = [name for name in _IMPLS if unsupported_reason(name, case) is None]
    raise ValueError(f"impl={impl!r} cannot serve this conv: {reason}; impls that can: {able}")
  if padding_mode != "zeros":
    x = padlib.pad_input(x, padlib.explicit_padding(padding, x.shape[1:-1], case.window,
                                                    case.stride, case.dilation), padding_mode)
  return _IMPLS[impl](x, w, stride=case.stride, pads=case.pads, dilation=case.dilation,
                      groups=case.groups)


# Importing the impl modules registers them (they import this module's helpers).
from cnnlab.ops import (conv_fft, conv_im2col, conv_matmul, conv_shift,  # noqa: E402,F401
                        conv_winograd)
