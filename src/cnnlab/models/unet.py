"""U-Net (Ronneberger, Fischer & Brox 2015, "U-Net: convolutional networks for biomedical image
segmentation"): ``(N, H, W, C) -> (N, H, W, num_classes)`` per-pixel logits, any ``H, W``.

Contracting path: ``depth`` levels of two 3x3 convs + ReLU (``features * 2**i`` filters, modules
``down{i}``), each followed by a 2x2 max pool; the bottom level (``bottom``, ``features *
2**depth``, then dropout). Expanding path, level ``i`` from ``depth-1`` down to 0: x2 upsampling
to ``features * 2**i`` channels (``up{i}``, an ``upsample.Upsample``: ``decoder='transpose'``, the
paper's 2x2 up-convolution (``up_kernel_size``), or ``'resize'``, ``resize_method`` + 3x3 conv),
concatenated after the skip ``[skip, up]``, two 3x3 convs + ReLU (``dec{i}``); ``head``: 1x1 ->
classes.

Convs are SAME (padding 1; the paper's are unpadded, with the skips cropped and a smaller output).
Odd sizes: the input is zero-padded on the high side to a multiple of ``2**depth`` (every pool
exact, every skip the size of its upsampled partner), the logits cropped back to ``[:H, :W]``.

Defaults small (64x64x1 digit canvases on a CPU): ``features=8``, ``depth=4``; the paper:
``features=64``, ``depth=4`` (1024 channels at the bottom), dropout at the bottom. Convs are
He-initialised (``kaiming_normal_fan_in``: the paper's ``sqrt(2/N)``), biases 0. Parameters:
485,763 at the defaults (1 input channel, 11 classes); 31,030,658 at the paper's widths (1
channel, 2 classes; the paper states none).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import (ConvReLUStack, Model, check_image, check_rates,
                                  kaiming_normal_fan_in, pad_to_multiple)
from cnnlab.models.registry import register
from cnnlab.models.upsample import Upsample, check_decoder, conv_transpose_def


class UNet(Model):
  num_classes: int = 11
  features: int = 8
  depth: int = 4
  decoder: str = "transpose"
  up_kernel_size: int = 2
  resize_method: str = "nearest"
  dropout_rate: float = 0.0
  transpose_impl: str = "lax"

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    check_image("UNet", x_BxHxWxC)
    check_rates("UNet", dropout_rate=self.dropout_rate)
    check_decoder("UNet", self.decoder)
    if self.depth < 1:
      raise ValueError(f"UNet: depth must be >= 1, got {self.depth}")
    init = dict(dtype=self.dtype, kernel_init=kaiming_normal_fan_in)
    conv = functools.partial(cnn.Conv, impl=self.conv_impl, **init)
    up = functools.partial(Upsample, conv=conv, mode=self.decoder,
                           conv_transpose=conv_transpose_def("UNet", self.transpose_impl, **init),
                           kernel_size=self.up_kernel_size, method=self.resize_method)
    h, w = x_BxHxWxC.shape[1:3]

    x = pad_to_multiple(x_BxHxWxC, 2 ** self.depth)
    skips = []
    for i in range(self.depth):
      x = ConvReLUStack(self.features * 2 ** i, conv, name=f"down{i}")(x)
      skips.append(x)
      x = ops.max_pool(x, 2)
    x = ConvReLUStack(self.features * 2 ** self.depth, conv, name="bottom")(x)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    for i in reversed(range(self.depth)):
      x = jnp.concatenate([skips[i], up(self.features * 2 ** i, name=f"up{i}")(x)], axis=-1)
      x = ConvReLUStack(self.features * 2 ** i, conv, name=f"dec{i}")(x)
    return conv(self.num_classes, (1, 1), name="head")(x)[:, :h, :w]


register("unet", functools.partial(UNet), input_shape=(64, 64, 1), family="dense",
         paper="Ronneberger, Fischer & Brox 2015, U-Net: convolutional networks for biomedical "
               "image segmentation", small_input_shape=(32, 32, 1))
