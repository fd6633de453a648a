"""Learned and fixed x``factor`` upsampling for dense prediction, channels-last ``(N, H, W, C)``.

- ``bilinear_init``: a kernel initialiser for ``cnn.ConvTranspose`` that makes a transposed conv
  (kernel ``2*factor - factor % 2``, stride ``factor``, padding ``upsample_padding``) compute
  bilinear upsampling per channel, zero across channels (Long et al. 2015, FCN's
  ``upsample_filt``). It agrees with ``jax.image.resize(..., 'bilinear')`` (half-pixel centres)
  at every output whose bilinear taps lie inside the input, i.e. everywhere but the ``factor//2``
  outermost rows / columns on each side; everywhere if the input is edge-padded by 1 and
  ``factor`` outputs are cropped from each side (resize renormalises its weights at the border,
  which is edge replication).
- ``Upsample``: ``(N, H, W, C) -> (N, factor*H, factor*W, features)``, ``mode`` ``'transpose'``
  (a strided ``cnn.ConvTranspose``; a ``kernel_size`` not divisible by ``factor``, such as 3 for
  x2, makes checkerboard artefacts, Odena et al. 2016) or ``'resize'`` (``jax.image.resize``
  nearest / bilinear, then a 3x3 SAME conv: Odena et al.'s resize-convolution).
- ``conv_transpose_def``: the ``cnn.ConvTranspose`` ModuleDef a dense model binds once, its
  ``impl`` one of ``TRANSPOSE_IMPLS`` (``ops.conv_transpose``'s; a model's ``transpose_impl``).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnnlab import nn as cnn
from cnnlab.models.blocks import ModuleDef
from cnnlab.ops.transposed_conv import IMPLS as TRANSPOSE_IMPLS

MODES = ("transpose", "resize")
METHODS = ("nearest", "bilinear")


def bilinear_kernel_1d(size: int) -> np.ndarray:
  """FCN's 1D bilinear filter of length ``size``: factor ``(size+1)//2``, taps
  ``1 - |t - centre| / factor`` (``centre = factor - 1`` for odd ``size``, ``factor - 0.5``
  for even), e.g. ``[.25, .75, .75, .25]`` for size 4 (x2)."""
  factor = (size + 1) // 2
  centre = factor - 1 if size % 2 else factor - 0.5
  return 1.0 - np.abs(np.arange(size) - centre) / factor


def bilinear_init(key, shape, dtype=jnp.float32):
  """``kernel_init`` for ``cnn.ConvTranspose``: ``shape`` ``(kh, kw, C, C)`` -> the outer product
  of ``bilinear_kernel_1d`` on the diagonal ``[:, :, c, c]``, zero elsewhere (symmetric, so
  Flax's unflipped kernel and torch's flipped one are the same). ``key`` is unused."""
  del key
  *window, c_in, c_out = shape
  if len(window) != 2 or c_in != c_out:
    raise ValueError(f"bilinear_init needs a (kh, kw, C, C) kernel, got shape {tuple(shape)}")
  filt = np.outer(bilinear_kernel_1d(window[0]), bilinear_kernel_1d(window[1]))
  kernel = filt[:, :, None, None] * np.eye(c_in)[None, None]
  return jnp.asarray(kernel, dtype)


def upsample_padding(kernel_size: int, factor: int) -> tuple[tuple[int, int], int]:
  """``(crop, output_padding)`` in torch's transposed-conv terms making ``o = factor * i``
  (docs/conventions.md, "Output sizes": ``o = (i-1)*s - lo - hi + k + output_padding``): crop
  ``k - factor`` split ``(lo, hi)`` with ``lo = (k - factor)//2``, or for ``k < factor`` no
  crop and ``output_padding = factor - k``. For FCN's bilinear kernel this crop aligns the
  output with half-pixel-centre resizing."""
  extra = kernel_size - factor
  if extra >= 0:
    return (extra // 2, extra - extra // 2), 0
  return (0, 0), -extra


def check_decoder(owner: str, decoder: str) -> None:
  """Raises ``ValueError`` unless ``decoder`` is one of :data:`MODES`."""
  if decoder not in MODES:
    raise ValueError(f"{owner}: decoder={decoder!r} is not one of {MODES}")


def conv_transpose_def(owner: str, impl: str, dtype=None, **kwargs) -> ModuleDef:
  """``cnn.ConvTranspose`` bound to ``impl`` (checked: one of ``TRANSPOSE_IMPLS``), ``dtype`` and
  ``kwargs`` (e.g. ``kernel_init=bilinear_init``)."""
  if impl not in TRANSPOSE_IMPLS:
    raise ValueError(f"{owner}: transpose_impl={impl!r} is not one of {TRANSPOSE_IMPLS}")
  return functools.partial(cnn.ConvTranspose, impl=impl, dtype=dtype, **kwargs)


class Upsample(nn.Module):
  """``(N, H, W, C) -> (N, factor*H, factor*W, features)`` for any ``H, W`` (module doc).

  ``conv`` / ``conv_transpose``: ModuleDefs the model binds once (``impl``, dtype, init);
  ``'transpose'`` uses ``conv_transpose`` (module ``up``, kernel ``kernel_size``),
  ``'resize'`` uses ``conv`` (module ``conv``, 3x3, padding 1 each side)."""
  features: int
  conv: ModuleDef = cnn.Conv
  conv_transpose: ModuleDef = cnn.ConvTranspose
  factor: int = 2
  mode: str = "transpose"
  kernel_size: int = 4
  method: str = "nearest"

  @nn.compact
  def __call__(self, x_BxHxWxC):
    if self.mode not in MODES:
      raise ValueError(f"Upsample: mode={self.mode!r} is not one of {MODES}")
    n, h, w, c = x_BxHxWxC.shape
    f = self.factor
    if self.mode == "transpose":
      crop, out_pad = upsample_padding(self.kernel_size, f)
      return self.conv_transpose(self.features, (self.kernel_size,) * 2, strides=(f, f),
                                 padding=(crop, crop), output_padding=out_pad,
                                 name="up")(x_BxHxWxC)
    if self.method not in METHODS:
      raise ValueError(f"Upsample: method={self.method!r} is not one of {METHODS}")
    y = jax.image.resize(x_BxHxWxC, (n, f * h, f * w, c), self.method)
    return self.conv(self.features, (3, 3), padding=((1, 1), (1, 1)), name="conv")(y)
