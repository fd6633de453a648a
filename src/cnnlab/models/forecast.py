"""Dilated causal CNN forecaster (Borovykh, Bohte & Oosterlee 2017, "Conditional time series
forecasting with convolutional neural networks") and the seasonal-naive baseline.

Input: a window ``(N, W, C)`` float (channel 0 the series, others conditioning series). Layer 0:
causal conv k=2 (``conv0``) -> ReLU; layer ``i >= 1``: causal conv k=2, dilation ``2**i``
(``conv{i}``) -> ReLU, added to its input (residual); the layers' outputs are summed (skip) and
a 1x1 conv (``out``) maps them to ``horizon`` values. ``out[:, t, j]`` forecasts the series at
``t + 1 + j`` from inputs ``<= t`` (receptive field ``2**num_layers``). Head ``'last'``:
``(N, horizon)`` from the last timestep (forecast after the window); ``'per_timestep'``:
``(N, W, horizon)`` (train on every position, as the paper, with a per-timestep MSE).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp

from cnnlab import nn as cnn
from cnnlab.models.blocks import Model, causal_receptive_field
from cnnlab.models.registry import register
from cnnlab.models.tcn import check_head


def receptive_field(num_layers: int = 6) -> int:
  return causal_receptive_field([(2, 2 ** i) for i in range(num_layers)])


def seasonal_naive(history_BxT, horizon: int, season: int):
  """``(B, horizon)`` forecasts of ``y[T-1+h]``, ``h = 1..horizon``, from ``history_BxT`` =
  ``y[0..T-1]``: ``y[T-1+h - season * (floor((h-1) / season) + 1)]``, the last observed value
  of the same season (Hyndman & Athanasopoulos, "Forecasting: principles and practice")."""
  history_BxT = jnp.asarray(history_BxT)
  t = history_BxT.shape[-1]
  if not 1 <= season <= t or horizon < 1:
    raise ValueError(f"seasonal_naive: need 1 <= season <= history length {t} and horizon >= 1, "
                     f"got season={season}, horizon={horizon}")
  return history_BxT[..., t - season + jnp.arange(horizon) % season]


class DilatedForecaster(Model):
  horizon: int = 1
  channels: int = 32
  num_layers: int = 6
  head: str = "last"

  @property
  def receptive_field(self) -> int:
    return receptive_field(self.num_layers)

  @nn.compact
  def __call__(self, x_BxWxC, train: bool = False):
    del train  # no dropout or batch statistics
    check_head("DilatedForecaster", self.head)
    if x_BxWxC.ndim != 3:
      raise ValueError(f"DilatedForecaster: x must be (N, W, C), got shape {x_BxWxC.shape}")
    conv = functools.partial(cnn.Conv, impl=self.conv_impl, dtype=self.dtype)
    h = skips = nn.relu(conv(self.channels, (2,), padding="CAUSAL", name="conv0")(x_BxWxC))
    for i in range(1, self.num_layers):
      y = nn.relu(conv(self.channels, (2,), padding="CAUSAL", kernel_dilation=2 ** i,
                       name=f"conv{i}")(h))
      h, skips = h + y, skips + y
    y = conv(self.horizon, (1,), name="out")(skips)
    return y[:, -1] if self.head == "last" else y


register("dilated_forecaster", functools.partial(DilatedForecaster), input_shape=(64, 1),
         paper="Borovykh, Bohte & Oosterlee 2017, conditional time series forecasting with CNNs",
         family="forecast", small_input_shape=(16, 1))
