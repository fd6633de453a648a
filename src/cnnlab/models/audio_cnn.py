"""Audio classifiers: Dai et al. 2017's raw-waveform M-nets and a small log-mel 2D CNN.

``RawAudioCNN`` (Dai, Dai, Qu, Li & Das 2017, "Very deep convolutional neural networks for raw
waveforms", Table 1): waveform ``(N, L, 1)`` -> conv 80/4 (``conv0``) -> max-pool 4 -> stages
of 3-wide convs (``stage{i}_{j}``), each conv + BN + ReLU, a max-pool 4 after a stage where
``pools`` says so -> global average pool -> dense. Convs have no bias (BN follows). The stem pads
``(38, 38)`` (TF ``'SAME'`` for 80/4 on a multiple of 4: ``L -> L/4``), the 3-wide convs 1.

- ``m5``: stem 128; stages ``[3,128]``, ``[3,256]``, ``[3,512]``, pool after each: 558,090
  parameters for 10 classes (paper: 0.5M; BN scale/bias included, running stats not).
- ``m11``: stem 64; ``[3,64] x2``, ``[3,128] x2``, ``[3,256] x3``, ``[3,512] x2``, pools after
  the first three: 1,784,202 (paper: 1.8M).

On 1 s of 8 kHz audio (8,000 samples; the paper: 4 s, 32,000): 2,000 after the stem, 7 frames
before the global pool.

``SpectrogramCNN``: log-mel ``(N, F, T, 1)`` -> per stage 3x3 conv (pad 1) + BN + ReLU ->
2x2 max-pool -> global average pool -> dropout -> dense (``fc``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import (ConvNormAct, Model, batch_norm, check_image, check_rates,
                                  classifier_head)
from cnnlab.models.registry import register


class RawAudioCNN(Model):
  """``stages``: ``(features, num_convs)`` per stage; ``pools``: pool after stage ``i``."""
  stem_features: int
  stages: Sequence[tuple[int, int]]
  pools: Sequence[bool]
  num_classes: int = 10

  @nn.compact
  def __call__(self, x_BxLxC, train: bool = False):
    if x_BxLxC.ndim != 3:
      raise ValueError(f"RawAudioCNN: x must be (N, L, C) waveforms, got shape {x_BxLxC.shape}")
    cna = functools.partial(
        ConvNormAct, conv=functools.partial(cnn.Conv, use_bias=False, impl=self.conv_impl,
                                            dtype=self.dtype),
        norm=batch_norm(train, self.dtype), act=nn.relu)
    x = cna(self.stem_features, 80, strides=4, padding=((38, 38),), name="conv0")(x_BxLxC)
    x = ops.max_pool(x, 4)
    self.sow("intermediates", "stem", x)
    for i, ((features, n), pool) in enumerate(zip(self.stages, self.pools, strict=True)):
      for j in range(n):
        x = cna(features, 3, name=f"stage{i + 1}_{j}")(x)
      x = ops.max_pool(x, 4) if pool else x
      self.sow("intermediates", f"stage{i + 1}", x)
    return classifier_head(self, x, functools.partial(nn.Dense, dtype=self.dtype))


class SpectrogramCNN(Model):
  num_classes: int = 10
  channels: Sequence[int] = (32, 64, 128)
  dropout_rate: float = 0.25

  @nn.compact
  def __call__(self, x_BxFxTxC, train: bool = False):
    check_rates("SpectrogramCNN", dropout_rate=self.dropout_rate)
    check_image("SpectrogramCNN", x_BxFxTxC, 2 ** len(self.channels),
                " log-mel bins x frames")
    cna = functools.partial(
        ConvNormAct, conv=functools.partial(cnn.Conv, use_bias=False, impl=self.conv_impl,
                                            dtype=self.dtype),
        norm=batch_norm(train, self.dtype), act=nn.relu)
    x = x_BxFxTxC
    for i, c in enumerate(self.channels):
      x = ops.max_pool(cna(c, 3, name=f"conv{i + 1}")(x), 2)
      self.sow("intermediates", f"stage{i + 1}", x)
    return classifier_head(self, x, functools.partial(nn.Dense, dtype=self.dtype),
                           dropout_rate=self.dropout_rate, train=train)


_DAI = "Dai, Dai, Qu, Li & Das 2017, Very deep CNNs for raw waveforms"
register("m5", functools.partial(RawAudioCNN, stem_features=128,
                                 stages=((128, 1), (256, 1), (512, 1)),
                                 pools=(True, True, True)),
         input_shape=(8000, 1), paper=_DAI, num_params=558_090, family="audio_cnn",
         small_input_shape=(1024, 1))
register("m11", functools.partial(RawAudioCNN, stem_features=64,
                                  stages=((64, 2), (128, 2), (256, 3), (512, 2)),
                                  pools=(True, True, True, False)),
         input_shape=(8000, 1), paper=_DAI, num_params=1_784_202, family="audio_cnn",
         small_input_shape=(1024, 1))
register("spectrogram_cnn", functools.partial(SpectrogramCNN), input_shape=(40, 101, 1),
         paper="log-mel 2D CNN baseline (40 mel bins x 101 frames: 1 s, 10 ms hop)",
         family="audio_cnn", small_input_shape=(16, 16, 1))
