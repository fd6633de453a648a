"""Dilated front-end + context module (Yu & Koltun 2015, "Multi-scale context aggregation by
dilated convolutions"): ``(N, H, W, C) -> (N, H, W, num_classes)`` per-pixel logits, any ``H, W``.

Front-end (``front_end``): VGG-like stages (``stage_convs[i]`` x [3x3 conv + ReLU],
``stage_features[i]`` filters, modules ``stage{i}``) where only the first ``num_pools`` keep their
2x2 max pool: each removed pool is replaced by doubling the dilation of everything after it
(stage ``i`` dilation ``2**max(0, i - num_pools)``, ``fc6`` ``2**(len - num_pools)``), so the
output stride is ``2**num_pools``; then ``fc6`` (``fc_kernel``, ReLU, dropout), ``fc7`` (1x1,
ReLU, dropout), ``final`` (1x1 -> ``C = num_classes`` scores).

Context module (``ContextModule``, their 'basic' module): 3x3 convs with dilations
``CONTEXT_DILATIONS`` = 1, 1, 2, 4, 8, 16, 1 (padding = dilation: size-preserving), each followed
by ReLU, then a 1x1 conv (no ReLU), all ``C -> C`` channels; identity initialisation
(``identity_init``: ``k[centre, a, b] = 1[a = b]``, biases 0), so at init it returns
``relu(scores)`` -- exactly the front-end's scores where they are >= 0. Its receptive field is
``context_receptive_field()`` = 67 (their Table 1). Then bilinear upsampling by ``2**num_pools``
(``jax.image.resize``; the paper uses a fixed bilinear deconvolution).

Odd sizes: the input is zero-padded on the high side to a multiple of ``2**num_pools``, the logits
cropped back to ``[:H, :W]``. Defaults small (64x64x1 digit canvases on a CPU): stages
``(16, 32, 64, 64)``, convs ``(2, 2, 2, 2)``, 2 pools, fc 128 3x3. The paper: VGG-16 (stages
``(64, 128, 256, 512, 512)``, convs ``(2, 2, 3, 3, 3)``), 3 pools kept (conv5 dilation 2, fc6
7x7 dilation 4, 4096 wide). Front-end convs are He-initialised (``kaiming_normal_fan_in``).
Parameters: 245,267 at the defaults (1 input channel, 11 classes); 134,374,973 at the paper's
sizes (3 channels, 21 classes; this code's count).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnlab import arith
from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import (ConvReLUStack, Model, ModuleDef, check_image, check_rates,
                                  kaiming_normal_fan_in, pad_to_multiple)
from cnnlab.models.registry import register

CONTEXT_DILATIONS = (1, 1, 2, 4, 8, 16, 1)


def context_receptive_field(dilations: Sequence[int] = CONTEXT_DILATIONS) -> int:
  """Side of the square of scores one output of the context module sees: 3x3 convs with
  ``dilations`` then a 1x1, stride 1 (docs/conventions.md, "Output sizes":
  ``r = 1 + sum 2*d``); 67 for the basic module (Yu & Koltun 2015, Table 1)."""
  layers = [(3, 1, d, d) for d in dilations] + [(1, 1, 0, 1)]
  return arith.receptive_fields(layers)[-1].size


def identity_init(key, shape, dtype=jnp.float32):
  """Yu & Koltun's identity initialisation of a ``(kh, kw, C, C)`` kernel (odd window): 1 at the
  window centre from channel ``a`` to channel ``a``, 0 elsewhere. ``key`` is unused."""
  del key
  *window, c_in, c_out = shape
  if c_in != c_out or any(k % 2 == 0 for k in window):
    raise ValueError(f"identity_init needs an odd (kh, kw, C, C) kernel, got {tuple(shape)}")
  return jnp.zeros(shape, dtype).at[tuple(k // 2 for k in window)].set(jnp.eye(c_in, dtype=dtype))


class ContextModule(nn.Module):
  """``(N, H, W, C) -> (N, H, W, C)``: the basic context module (module doc); modules
  ``ctx{i}`` (3x3, dilation ``dilations[i]``) and ``ctx_out`` (1x1). ``conv``'s kernel_init is
  replaced by ``identity_init``, its bias_init by zeros."""
  conv: ModuleDef
  dilations: Sequence[int] = CONTEXT_DILATIONS

  @nn.compact
  def __call__(self, x_BxHxWxC):
    c = x_BxHxWxC.shape[-1]
    conv = functools.partial(self.conv, kernel_init=identity_init,
                             bias_init=nn.initializers.zeros_init())
    for i, d in enumerate(self.dilations):
      x_BxHxWxC = nn.relu(conv(c, (3, 3), padding=((d, d), (d, d)), kernel_dilation=d,
                               name=f"ctx{i}")(x_BxHxWxC))
    return conv(c, (1, 1), name="ctx_out")(x_BxHxWxC)


class FrontEnd(nn.Module):
  """``(N, H, W, C_in) -> (N, H / 2**num_pools, W / 2**num_pools, num_classes)`` (``H, W``
  multiples of ``2**num_pools``): the dilated VGG-like front-end (module doc)."""
  num_classes: int
  stage_features: Sequence[int]
  stage_convs: Sequence[int]
  num_pools: int
  fc_features: int
  fc_kernel: int
  dropout_rate: float
  conv: ModuleDef

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    drop = nn.Dropout(self.dropout_rate, deterministic=not train)
    x = x_BxHxWxC
    for i, (f, n) in enumerate(zip(self.stage_features, self.stage_convs)):
      x = ConvReLUStack(f, self.conv, n, 2 ** max(0, i - self.num_pools), name=f"stage{i}")(x)
      if i < self.num_pools:
        x = ops.max_pool(x, 2)
    k, d = self.fc_kernel, 2 ** (len(self.stage_features) - self.num_pools)
    pad = ((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2),) * 2
    x = drop(nn.relu(self.conv(self.fc_features, (k, k), padding=pad, kernel_dilation=d,
                               name="fc6")(x)))
    x = drop(nn.relu(self.conv(self.fc_features, (1, 1), name="fc7")(x)))
    return self.conv(self.num_classes, (1, 1), name="final")(x)


class DilatedContext(Model):
  num_classes: int = 11
  stage_features: Sequence[int] = (16, 32, 64, 64)
  stage_convs: Sequence[int] = (2, 2, 2, 2)
  num_pools: int = 2
  fc_features: int = 128
  fc_kernel: int = 3
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    check_image("DilatedContext", x_BxHxWxC)
    check_rates("DilatedContext", dropout_rate=self.dropout_rate)
    if (len(self.stage_convs) != len(self.stage_features)
        or not 0 <= self.num_pools <= len(self.stage_features)):
      raise ValueError(f"DilatedContext: stage_convs must match stage_features and num_pools be "
                       f"in [0, {len(self.stage_features)}], got {self.stage_convs!r}, "
                       f"{self.num_pools!r}")
    conv = functools.partial(cnn.Conv, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=kaiming_normal_fan_in)
    n, h, w, _ = x_BxHxWxC.shape
    stride = 2 ** self.num_pools
    x = pad_to_multiple(x_BxHxWxC, stride)
    scores = FrontEnd(self.num_classes, self.stage_features, self.stage_convs, self.num_pools,
                      self.fc_features, self.fc_kernel, self.dropout_rate, conv,
                      name="front_end")(x, train)
    scores = ContextModule(conv, name="context")(scores)
    up = jax.image.resize(scores, (n, x.shape[1], x.shape[2], self.num_classes), "bilinear")
    return up[:, :h, :w]


register("dilated_context", functools.partial(DilatedContext), input_shape=(64, 64, 1),
         family="dense", paper="Yu & Koltun 2015, Multi-scale context aggregation by dilated "
                               "convolutions (front-end + basic context module)",
         small_input_shape=(32, 32, 1))
