"""Denoising convolutional autoencoder (Vincent, Larochelle, Bengio & Manzagol 2008, "Extracting
and composing robust features with denoising autoencoders", in conv form) and the conv encoder /
decoder stacks it shares with ``conv_vae``.

``ConvEncoder``: per entry of ``channels`` a 3x3 conv, stride 2, padding 1 each side, + ReLU:
``o = floor((i - 1) / 2) + 1 = ceil(i / 2)`` (docs/conventions.md, "Output sizes"), so
28 -> 14 -> 7. ``ConvDecoder``: per entry of ``channels`` an ``Upsample`` x2 (``decoder`` mode
``'transpose'`` | ``'resize'``) + ReLU, then a 3x3 conv (padding 1) to ``out_features``, no
activation.

``DenoisingAE``: ``(N, H, W, C) -> (N, H, W, C)``, ``ConvDecoder(reversed(channels))`` after
``ConvEncoder(channels)``; the output is a regression of the clean image (no activation; trained
with MSE against it). The corruption ``q(x~ | x)`` is applied outside the model: the input is the
corrupted image. The output has the input's size iff ``H`` and ``W`` are divisible by
``2**len(channels)`` (4 by default: 28x28 MNIST), which is checked. Defaults (``channels=(32,
64)``, 1 channel): 117,505 parameters with ``'transpose'`` (4x4 kernels), 74,497 with
``'resize'``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import flax.linen as nn

from cnnlab import nn as cnn
from cnnlab.models.blocks import Model, ModuleDef, check_image
from cnnlab.models.registry import register
from cnnlab.models.upsample import Upsample, check_decoder, conv_transpose_def


def conv_defs(owner: str, mdl: Model) -> tuple[ModuleDef, ModuleDef]:
  """``(conv, conv_transpose)``: ``cnn.Conv`` bound once to ``mdl``'s ``conv_impl`` and
  ``dtype``, ``cnn.ConvTranspose`` to its ``transpose_impl`` (``upsample.TRANSPOSE_IMPLS``,
  checked) and ``dtype``."""
  return (functools.partial(cnn.Conv, impl=mdl.conv_impl, dtype=mdl.dtype),
          conv_transpose_def(owner, mdl.transpose_impl, mdl.dtype))


class ConvEncoder(nn.Module):
  """``(N, H, W, C) -> (N, ceil(H/2**k), ceil(W/2**k), channels[-1])``, ``k = len(channels)``:
  stride-2 3x3 convs (``conv{i}``) + ``act``."""
  channels: Sequence[int]
  conv: ModuleDef
  act: Callable = nn.relu

  @nn.compact
  def __call__(self, x_BxHxWxC):
    x = x_BxHxWxC
    for i, c in enumerate(self.channels):
      x = self.act(self.conv(c, (3, 3), strides=2, padding=((1, 1), (1, 1)), name=f"conv{i}")(x))
    return x


class ConvDecoder(nn.Module):
  """``(N, h, w, C) -> (N, h*2**k, w*2**k, out_features)``, ``k = len(channels)``: ``Upsample``
  x2 to ``channels[i]`` (``up{i}``, mode ``decoder``, transposed-conv ``kernel_size``) + ``act``,
  then a 3x3 conv (``out``)."""
  channels: Sequence[int]
  out_features: int
  decoder: str
  conv: ModuleDef
  conv_transpose: ModuleDef
  act: Callable = nn.relu
  kernel_size: int = 4

  @nn.compact
  def __call__(self, x_BxhxwxC):
    x = x_BxhxwxC
    for i, c in enumerate(self.channels):
      x = Upsample(c, self.conv, self.conv_transpose, mode=self.decoder,
                   kernel_size=self.kernel_size, name=f"up{i}")(x)
      x = self.act(x)
    return self.conv(self.out_features, (3, 3), padding=((1, 1), (1, 1)), name="out")(x)


class DenoisingAE(Model):
  """Fields: ``channels`` (encoder widths; the decoder mirrors them), ``decoder`` (``MODES``),
  ``transpose_impl`` (``ops.conv_transpose``'s impl of the ``'transpose'`` decoder),
  ``up_kernel_size`` (its kernel: 3, not divisible by the stride 2, makes checkerboard artefacts,
  Odena et al. 2016)."""
  channels: Sequence[int] = (32, 64)
  decoder: str = "transpose"
  transpose_impl: str = "lax"
  up_kernel_size: int = 4

  def __post_init__(self):
    check_decoder("DenoisingAE", self.decoder)
    super().__post_init__()

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    del train  # no dropout / batch norm: train and eval compute the same
    scale = 2 ** len(self.channels)
    check_image("DenoisingAE", x_BxHxWxC)
    if x_BxHxWxC.shape[1] % scale or x_BxHxWxC.shape[2] % scale:
      raise ValueError(f"DenoisingAE: H and W must be divisible by {scale} (2**len(channels)), "
                       f"got shape {x_BxHxWxC.shape}")
    conv, conv_transpose = conv_defs("DenoisingAE", self)
    h = ConvEncoder(self.channels, conv, name="encoder")(x_BxHxWxC)
    self.sow("intermediates", "code", h)
    return ConvDecoder(tuple(reversed(self.channels)), x_BxHxWxC.shape[-1], self.decoder, conv,
                       conv_transpose, kernel_size=self.up_kernel_size, name="decoder_net")(h)


register("denoise_ae", functools.partial(DenoisingAE), input_shape=(28, 28, 1),
         paper="Vincent, Larochelle, Bengio & Manzagol 2008, denoising autoencoders (conv form)",
         family="generative", small_input_shape=(8, 8, 1))
