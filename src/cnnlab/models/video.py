"""Video classifiers: clips ``(N, T, H, W, C)`` float -> logits ``(N, num_classes)``.

Every conv is followed by BatchNorm + ReLU (``blocks.ConvNormAct``; no conv bias) and every net
ends in global average pooling + one dense layer (``fc``). Default widths are small (16x64x64
Moving-MNIST-style clips on a CPU); the papers' sizes are noted with each model.

- ``c3d`` (Tran, Bourdev, Fergus, Torresani & Paluri 2015, "Learning spatiotemporal features with
  3D convolutional networks"): stages of 3x3x3 convs (stride 1, padding 1), ``depths[i]`` convs
  of ``widths[i]`` features, then max pooling 1x2x2 after stage 1 and 2x2x2 after the others.
  Paper: widths (64, 128, 256, 512, 512), depths (1, 1, 2, 2, 2), fc6/fc7 of 4096 on
  3x16x112x112 clips (no BN); here a global pool + ``fc`` instead of fc6/fc7.
- ``r2plus1d`` (Tran, Wang, Torresani, Ray, LeCun & Paluri 2018, "A closer look at
  spatiotemporal convolutions for action recognition"): ``c3d``'s layout with each 3x3x3 conv
  replaced by ``Conv2Plus1D`` (1x3x3 spatial conv to ``mid_features(N_in, N_out)`` channels -> BN
  -> ReLU -> 3x1x1 temporal conv; Sec. 3.5). Built plain, without the paper's residual
  connections (the paper: ResNet-18/34 layouts, widths 64-512, 3x7x7 stem, 112x112 input).
- Karpathy, Toderici, Shetty, Leung, Sukthankar & Fei-Fei 2014, "Large-scale video
  classification with convolutional neural networks" (``FusionNet``, ``fusion`` below): stages
  of a 3x3 conv (padding 1) + 2x2 max pool of ``widths[i]`` features, 2D on frames except where
  stated. Paper: C(96,11,3)-N-P-C(256,5,1)-N-P-C(384,3,1)-C(384,3,1)-C(256,3,1)-P-FC4096-FC4096
  (N: local response norm) on 170x170 frames, clips of T = 10.

  - ``'single_frame'``: the middle frame ``T // 2`` only.
  - ``'early'``: the first conv is 3D with temporal extent ``T`` (no temporal padding: it sees all
    frames at once, as the paper's 11x11x3xT filters; its kernel is sized by the clip length
    at init), the rest 2D.
  - ``'late'``: the 2D tower on the first and the last frame (shared weights: the two frames go
    through it as one batch), the two pooled features concatenated before ``fc`` (paper: two
    frames 15 apart, merged in the first FC layer).
  - ``'slow'``: 3D convs, stage ``i`` with temporal kernel ``temporal_kernels[i]`` and stride
    ``temporal_strides[i]`` (1 and 1 beyond them), ``'SAME'`` padding (docs/conventions.md,
    'Padding'; spatially it is torch's padding 1 at stride 1): ``T -> ceil(T / s)``, no frame
    dropped. Defaults (4, 2, 2, 2) / (2, 2, 2, 2) take 16 frames to 1 (temporal receptive field
    18 >= 16); the paper: (4, 2, 2) / (2, 2, 2) on 10 frames.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import (ConvNormAct, Model, ModuleDef, batch_norm, classifier_head,
                                  kaiming_normal_fan_out)
from cnnlab.models.registry import register

FUSIONS = ("single_frame", "early", "late", "slow")


def mid_features(c_in: int, c_out: int, t: int = 3, d: int = 3) -> int:
  """R(2+1)D's intermediate width ``M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out))`` (Tran
  et al. 2018, Sec. 3.5): the 1xdxd + tx1x1 pair then has at most the parameters of a txdxd conv
  (``M (d^2 N_in + t N_out) <= t d^2 N_in N_out``)."""
  return t * d * d * c_in * c_out // (d * d * c_in + t * c_out)


def check_clip(owner: str, x, min_frames: int, min_size: int) -> None:
  """Raises ``ValueError`` unless ``x`` is ``(N, T, H, W, C)`` with ``T >= min_frames`` and
  ``H, W >= min_size``."""
  if x.ndim != 5 or x.shape[1] < min_frames or min(x.shape[2:4]) < min_size:
    raise ValueError(f"{owner}: x must be (N, T, H, W, C) clips with T >= {min_frames} and "
                     f"H, W >= {min_size}, got shape {x.shape}")


def _bound(mdl: Model, train: bool) -> ModuleDef:
  """``ConvNormAct`` with ``mdl``'s conv impl and dtype bound: bias-free conv (He fan-out init),
  BN, ReLU."""
  conv = functools.partial(cnn.Conv, use_bias=False, impl=mdl.conv_impl, dtype=mdl.dtype,
                           kernel_init=kaiming_normal_fan_out)
  return functools.partial(ConvNormAct, conv=conv, norm=batch_norm(train, mdl.dtype),
                           act=nn.relu)


class Conv2Plus1D(nn.Module):
  """``(N, T, H, W, C_in) -> (N, T, H, W, features)``: ``cna`` 1x3x3 to ``mid_features(C_in,
  features)`` (module ``spatial``) -> ``cna`` 3x1x1 to ``features`` (``temporal``); ``cna``: a
  conv -> BN -> ReLU ModuleDef. Stands for a 3x3x3 conv, padding 1."""
  features: int
  cna: ModuleDef

  @nn.compact
  def __call__(self, x):
    m = mid_features(x.shape[-1], self.features)
    x = self.cna(m, (1, 3, 3), name="spatial")(x)
    return self.cna(self.features, (3, 1, 1), name="temporal")(x)


class C3D(Model):
  """``c3d`` / ``r2plus1d`` (module doc). Stage ``i`` (modules ``conv{i+1}_{j}``): ``depths[i]``
  units of ``widths[i]`` features, then the max pool. Needs ``T >= 2**(stages-1)``,
  ``H, W >= 2**stages``."""
  num_classes: int = 10
  widths: Sequence[int] = (16, 32, 64, 128, 128)
  depths: Sequence[int] = (1, 1, 2, 2, 2)
  factorised: bool = False  # True: R(2+1)D's Conv2Plus1D units instead of 3x3x3 convs.

  @nn.compact
  def __call__(self, x_BxTxHxWxC, train: bool = False):
    if len(self.widths) != len(self.depths):
      raise ValueError(f"C3D: widths {self.widths} and depths {self.depths} differ in length")
    n = len(self.widths)
    check_clip("C3D", x_BxTxHxWxC, 2 ** (n - 1), 2 ** n)
    cna = _bound(self, train)
    x = x_BxTxHxWxC
    for i, (width, depth) in enumerate(zip(self.widths, self.depths)):
      for j in range(depth):
        name = f"conv{i + 1}_{j}"
        x = (Conv2Plus1D(width, cna, name=name) if self.factorised
             else cna(width, (3, 3, 3), name=name))(x)
      x = ops.max_pool(x, (1, 2, 2) if i == 0 else 2)
      self.sow("intermediates", f"stage{i + 1}", x)
    return classifier_head(self, x, functools.partial(nn.Dense, dtype=self.dtype))


class FusionNet(Model):
  """Karpathy et al. 2014's fusion nets (module doc). Stage ``i``: conv module ``conv{i+1}``,
  then a 2x2 (spatial) max pool; needs ``H, W >= 2**stages``. ``temporal_kernels`` /
  ``temporal_strides``: ``'slow'`` only."""
  num_classes: int = 10
  widths: Sequence[int] = (16, 32, 64, 64)
  fusion: str = "single_frame"
  temporal_kernels: Sequence[int] = (4, 2, 2, 2)
  temporal_strides: Sequence[int] = (2, 2, 2, 2)

  @nn.compact
  def __call__(self, x_BxTxHxWxC, train: bool = False):
    if self.fusion not in FUSIONS:
      raise ValueError(f"FusionNet: fusion={self.fusion!r} is not one of {FUSIONS}")
    n = len(self.widths)
    check_clip("FusionNet", x_BxTxHxWxC, 1, 2 ** n)
    cna = _bound(self, train)
    dense = functools.partial(nn.Dense, dtype=self.dtype)
    x = x_BxTxHxWxC
    if self.fusion == "slow":
      if not len(self.temporal_kernels) == len(self.temporal_strides) <= n:
        raise ValueError(f"FusionNet: temporal_kernels {self.temporal_kernels} and "
                         f"temporal_strides {self.temporal_strides} need one entry per stage, "
                         f"at most {n}")
      kts = (*self.temporal_kernels, *(1,) * (n - len(self.temporal_kernels)))
      sts = (*self.temporal_strides, *(1,) * (n - len(self.temporal_strides)))
      for i, (width, kt, st) in enumerate(zip(self.widths, kts, sts)):
        x = cna(width, (kt, 3, 3), strides=(st, 1, 1), padding="SAME", name=f"conv{i + 1}")(x)
        x = ops.max_pool(x, (1, 2, 2))
      return classifier_head(self, x, dense)
    if self.fusion == "early":
      x = cna(self.widths[0], (x.shape[1], 3, 3), padding=(0, 1, 1), name="conv1")(x)[:, 0]
      x = ops.max_pool(x, 2)
    elif self.fusion == "late":  # (N, 2, H, W, C) -> (2N, H, W, C): one tower, shared weights
      x = jnp.stack([x[:, 0], x[:, -1]], axis=1).reshape(-1, *x.shape[2:])
    else:
      x = x[:, x.shape[1] // 2]
    for i in range(1 if self.fusion == "early" else 0, n):
      x = ops.max_pool(cna(self.widths[i], 3, name=f"conv{i + 1}")(x), 2)
    if self.fusion == "late":  # (2N, h, w, c) -> (N, h, w, 2c): first frame's channels first
      x = jnp.concatenate([x[0::2], x[1::2]], axis=-1)
    return classifier_head(self, x, dense)


_TRAN15 = "Tran, Bourdev, Fergus, Torresani & Paluri 2015, C3D"
_TRAN18 = "Tran, Wang, Torresani, Ray, LeCun & Paluri 2018, R(2+1)D"
_KARPATHY = "Karpathy, Toderici, Shetty, Leung, Sukthankar & Fei-Fei 2014, fusion"
_CLIP = (16, 64, 64, 1)  # 16 frames of 64x64 grey (Moving-MNIST-style)
register("c3d", functools.partial(C3D), input_shape=_CLIP, paper=_TRAN15, family="video",
         small_input_shape=(16, 32, 32, 1))
register("r2plus1d", functools.partial(C3D, factorised=True), input_shape=_CLIP, paper=_TRAN18,
         family="video", small_input_shape=(16, 32, 32, 1))
for _fusion in FUSIONS:
  register(_fusion if _fusion == "single_frame" else f"{_fusion}_fusion",
           functools.partial(FusionNet, fusion=_fusion), input_shape=_CLIP,
           paper=f"{_KARPATHY} ({_fusion})", family="video", small_input_shape=(8, 32, 32, 1))
