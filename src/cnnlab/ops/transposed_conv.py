"""Transposed convolution with PyTorch ``ConvTranspose{1,2,3}d`` semantics, channels-last.

``x``: ``(N, *spatial, C_in)``; ``w``: ``(*window, C_in, C_out/groups)`` -- torch's weight
``(C_in, C_out/groups, *window)`` with the window moved first, *not* flipped. The result is the
vjp of ``conv`` w.r.t. its input (``conv_transpose(g, swapaxes(w_conv, -1, -2))``) and has size
``o = (i-1)*s - lo - hi + d*(k-1) + output_padding + 1`` per spatial dim.

``padding``:
- an int, one int per dim (torch: ``p`` cropped from both ends of the full output), or one
  ``(lo, hi)`` pair per dim (cropped from the low / high end);
- ``'SAME'`` / ``'VALID'``: ``lax.conv_transpose`` / ``flax.linen.ConvTranspose`` (``'SAME'``:
  ``o = i*s``), for ``w = flip(flax_kernel)`` over the window axes (flax does not flip).
``output_padding`` (< max(stride, dilation), as torch) is added on the high side.

Both impls compute ``conv(dilate_s(x), flip(w))`` with padding ``d*(k-1) - crop``:
- ``lax``: one ``lax.conv_general_dilated`` with ``lhs_dilation=stride``;
- ``zero_insert``: the input interleaved with ``s-1`` zeros explicitly (a strided scatter),
  padded / cropped (``lax.pad``), then a VALID ``cnnlab.ops.conv``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from cnnlab.ops import padding as padlib
from cnnlab.ops.conv_case import spatial_dims
from cnnlab.ops.conv_lax import dimension_numbers
from cnnlab.ops.convolution import conv


def _conv_kernel(w, groups):
  """``(*window, C_in, C_out/g)`` -> the forward kernel ``(*window, C_in/g, C_out)``, flipped."""
  *window, c_in, c_out_g = w.shape
  w = w.reshape(*window, groups, c_in // groups, c_out_g)
  w = jnp.swapaxes(w, -3, -2).reshape(*window, c_in // groups, groups * c_out_g)
  return jnp.flip(w, axis=tuple(range(len(window))))


def _flax_pads(k_eff, s, mode):
  """``lax.conv_transpose``'s padding of the dilated input for ``'SAME'`` / ``'VALID'``."""
  if mode == "SAME":
    total = k_eff + s - 2
    lo = k_eff - 1 if s > k_eff - 1 else -(-total // 2)
  else:
    total = k_eff + s - 2 + max(k_eff - s, 0)
    lo = k_eff - 1
  return lo, total - lo


def _crops(padding, nd):
  if isinstance(padding, int):
    padding = (padding,) * nd
  padding = tuple(padding)
  if len(padding) != nd:
    raise ValueError(f"padding needs one entry per spatial dim ({nd}), got {padding!r}")
  pairs = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
  if any(len(p) != 2 or not all(isinstance(v, int) and v >= 0 for v in p) for p in pairs):
    raise ValueError(f"padding must be 'SAME', 'VALID', non-negative ints or (lo, hi) pairs per "
                     f"dim, got {padding!r}")
  return pairs


def _output_padding(output_padding, nd, stride, dilation):
  out = (output_padding,) * nd if isinstance(output_padding, int) else tuple(output_padding)
  if len(out) != nd or not all(isinstance(v, int) and v >= 0 for v in out):
    raise ValueError(f"output_padding must be a non-negative int or {nd} of them, got "
                     f"{output_padding!r}")
  if any(op >= max(s, d) for op, s, d in zip(out, stride, dilation)):
    raise ValueError(f"output_padding={output_padding!r} must be smaller than max(stride, "
                     f"dilation) per dim (stride={stride}, dilation={dilation}), as in torch")
  return out


def resolve(x_shape, w_shape, *, stride, padding, output_padding, dilation, groups):
  """Validates the arguments (shapes only) and returns ``(stride, dilation, pads)``.

  ``pads`` are the ``(lo, hi)`` paddings (possibly negative: a crop) of the ``stride``-dilated
  input for the conv with the flipped kernel.
  """
  nd = spatial_dims(x_shape, w_shape, op="conv_transpose", kernel="(*window, C_in, C_out/groups)",
                    channels="C_in")
  stride = padlib.as_tuple(stride, nd, "stride")
  dilation = padlib.as_tuple(dilation, nd, "dilation")
  if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or x_shape[-1] % groups:
    raise ValueError(f"groups={groups!r} must be a positive int dividing C_in={x_shape[-1]}")
  if x_shape[-1] != w_shape[-2]:
    raise ValueError(f"kernel {w_shape} (*window, C_in, C_out/groups) expects C_in={w_shape[-2]}, "
                     f"input has {x_shape[-1]}")
  k_eff = [d * (k - 1) + 1 for k, d in zip(w_shape[:-2], dilation)]
  out_pad = _output_padding(output_padding, nd, stride, dilation)
  if isinstance(padding, str):
    mode = padding.upper()
    if mode not in ("SAME", "VALID"):
      raise ValueError(f"padding={padding!r} must be 'SAME', 'VALID', ints or (lo, hi) pairs")
    if any(out_pad):
      raise ValueError(f"output_padding={output_padding!r} needs explicit padding, not "
                       f"padding={padding!r}")
    pads = tuple(_flax_pads(k, s, mode) for k, s in zip(k_eff, stride))
  else:
    crops = _crops(padding, nd)
    pads = tuple((k - 1 - lo, k - 1 - hi + op) for k, (lo, hi), op in zip(k_eff, crops, out_pad))
  out = [(i - 1) * s + 1 + lo + hi - k + 1
         for i, s, (lo, hi), k in zip(x_shape[1:-1], stride, pads, k_eff)]
  if min(out) < 1:
    raise ValueError(f"padding={padding!r} crops the whole output (output spatial size {out})")
  return stride, dilation, pads


def _lax(x, w, *, stride, pads, dilation, groups):
  nd = x.ndim - 2
  return lax.conv_general_dilated(
      x, w, window_strides=(1,) * nd, padding=pads, lhs_dilation=stride, rhs_dilation=dilation,
      dimension_numbers=dimension_numbers(nd), feature_group_count=groups)


def _zero_insert(x, w, *, stride, pads, dilation, groups):
  n, *spatial, c = x.shape
  big = jnp.zeros((n, *((i - 1) * s + 1 for i, s in zip(spatial, stride)), c), x.dtype)
  x = big.at[(slice(None), *(slice(None, None, s) for s in stride))].set(x)
  widths = ((0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0))
  x = lax.pad(x, jnp.zeros((), x.dtype), widths)
  return conv(x, w, dilation=dilation, groups=groups, impl="lax")


_FNS = {"lax": _lax, "zero_insert": _zero_insert}
IMPLS = tuple(_FNS)


def conv_transpose(x, w, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
                   impl="lax"):
  """Transposed conv of ``x`` ``(N, *spatial, C_in)`` with ``w`` ``(*window, C_in, C_out/g)``.

  Returns ``(N, *out_spatial, C_out)``; see the module docstring for the conventions.
  """
  if impl not in _FNS:
    raise ValueError(f"impl={impl!r} is not one of {IMPLS}")
  x, w = jnp.asarray(x), jnp.asarray(w)
  stride, dilation, pads = resolve(x.shape, w.shape, stride=stride, padding=padding,
                                   output_padding=output_padding, dilation=dilation, groups=groups)
  return _FNS[impl](x, _conv_kernel(w, groups), stride=stride, pads=pads, dilation=dilation,
                    groups=groups)
