"""Temporal convolutional network (Bai, Kolter & Koltun 2018, "An empirical evaluation of generic
convolutional and recurrent networks for sequence modeling"; their ``TemporalConvNet``).

Input ``(N, L, C)`` float. Level ``i`` (dilation ``2**i``, ``channels[i]`` features) is a
``TemporalBlock``: two [causal conv k, dilation 2**i, weight norm -> ReLU -> dropout], plus the
input (through a 1x1 conv ``downsample`` when the channels change), then ReLU. Head: ``'last'``
-> dense on the last timestep ``(N, num_classes)`` (sequence classification, the adding
problem's regression with ``num_classes=1``); ``'per_timestep'`` -> dense at every step
``(N, L, num_classes)`` (copy memory). Output ``t`` sees inputs ``t-r+1 .. t``,
``r = receptive_field(k, levels) = 1 + 2*(k-1)*(2**levels - 1)``.

Weight norm is ``flax.linen.WeightNorm`` on each dilated conv (``kernel = g * v / ||v||`` per
output channel, the norm over window and input channels as torch's ``weight_norm(dim=0)``;
params ``conv{j}/kernel`` = v and ``conv{j}_wn/.../scale`` = g). Initialisation as Bai et al.'s
code: conv and dense kernels N(0, 0.01); torch sets g = ||v|| at init, here g starts at its
expectation ``0.01 * sqrt(k * C_in)``. Dropout is elementwise, as their code (the paper says
spatial). ``seq_mnist``'s defaults (8 levels x 25, k=7, dropout 0.05) have 66,910 parameters
(the paper's table: ~70K); ``tcn_adding`` (8 x 30, k=7) 96,001; ``tcn_copy`` (8 x 10, k=8,
per-timestep 10-way) 12,530 (paper: ~70K and ~16K: their per-task settings, as recalled here,
may differ).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import flax.linen as nn

from cnnlab import nn as cnn
from cnnlab.models.blocks import Model, ModuleDef, causal_receptive_field, check_rates
from cnnlab.models.registry import register

HEADS = ("last", "per_timestep")
_INIT = nn.initializers.normal(0.01)


def receptive_field(kernel_size: int = 7, num_levels: int = 8) -> int:
  """Inputs seen by one output: two convs per level, dilation ``2**i``."""
  return causal_receptive_field([(kernel_size, 2 ** i) for i in range(num_levels)
                                 for _ in range(2)])


def check_head(owner: str, head: str) -> None:
  if head not in HEADS:
    raise ValueError(f"{owner}: head={head!r} is not one of {HEADS}")


def sequence_head(x_BxLxC, head: str, dense: ModuleDef, num_outputs: int):
  """``'last'``: ``dense`` (module ``fc``) on the last timestep, ``(N, out)``;
  ``'per_timestep'``: at every step, ``(N, L, out)``."""
  return dense(num_outputs, name="fc")(x_BxLxC[:, -1] if head == "last" else x_BxLxC)


class TemporalBlock(nn.Module):
  """Two weight-normed causal dilated convs (``conv1``, ``conv2``) + residual (module doc)."""
  features: int
  kernel_size: int
  dilation: int
  conv: ModuleDef
  dropout_rate: float = 0.0
  weight_norm: bool = True

  @nn.compact
  def __call__(self, x_BxLxC, train: bool = False):
    y = x_BxLxC
    for j in (1, 2):
      layer = self.conv(self.features, (self.kernel_size,), padding="CAUSAL",
                        kernel_dilation=self.dilation, name=f"conv{j}")
      if self.weight_norm:
        g0 = 0.01 * math.sqrt(self.kernel_size * y.shape[-1])
        layer = nn.WeightNorm(layer, scale_init=nn.initializers.constant(g0),
                              name=f"conv{j}_wn")
      y = nn.Dropout(self.dropout_rate, deterministic=not train)(nn.relu(layer(y)))
    if x_BxLxC.shape[-1] != self.features:
      x_BxLxC = self.conv(self.features, (1,), name="downsample")(x_BxLxC)
    return nn.relu(x_BxLxC + y)


class TCN(Model):
  num_classes: int = 10
  channels: Sequence[int] = (25,) * 8
  kernel_size: int = 7
  dropout_rate: float = 0.05
  head: str = "last"
  weight_norm: bool = True

  @property
  def receptive_field(self) -> int:
    return receptive_field(self.kernel_size, len(self.channels))

  @nn.compact
  def __call__(self, x_BxLxC, train: bool = False):
    check_rates("TCN", dropout_rate=self.dropout_rate)
    check_head("TCN", self.head)
    if x_BxLxC.ndim != 3:
      raise ValueError(f"TCN: x must be (N, L, C), got shape {x_BxLxC.shape}")
    conv = functools.partial(cnn.Conv, impl=self.conv_impl, dtype=self.dtype, kernel_init=_INIT)
    x = x_BxLxC
    for i, c in enumerate(self.channels):
      x = TemporalBlock(c, self.kernel_size, 2 ** i, conv, self.dropout_rate, self.weight_norm,
                        name=f"level{i}")(x, train)
    return sequence_head(x, self.head, functools.partial(nn.Dense, dtype=self.dtype,
                                                         kernel_init=_INIT), self.num_classes)


_BAI = "Bai, Kolter & Koltun 2018, generic convolutional and recurrent networks (TCN)"
# Bai et al.'s per-task settings (levels x channels, kernel, dropout): seq./permuted MNIST,
# adding problem, copy memory.
register("tcn", functools.partial(TCN), input_shape=(784, 1), paper=_BAI, family="tcn",
         num_params=66_910, small_input_shape=(32, 1))
register("tcn_adding", functools.partial(TCN, num_classes=1, channels=(30,) * 8,
                                         dropout_rate=0.0),
         input_shape=(600, 2), paper=_BAI + ", adding problem", family="tcn",
         small_input_shape=(32, 2))
register("tcn_copy", functools.partial(TCN, channels=(10,) * 8, kernel_size=8, dropout_rate=0.0,
                                       head="per_timestep"),
         input_shape=(1020, 1), paper=_BAI + ", copy memory", family="tcn",
         small_input_shape=(32, 1))
