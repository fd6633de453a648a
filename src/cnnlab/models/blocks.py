"""Small building blocks shared by model families (channels-last, any number of spatial dims
where it makes sense).

- ``make_divisible``: torchvision's ``_make_divisible`` channel rounding; ``stage_ends``.
- ``ConvNormAct``: conv (symmetric padding ``(k-1)//2`` on every side, as torch's
  ``Conv2dNormActivation``) -> norm -> optional activation.
- ``SqueezeExcitation`` (Hu et al. 2018): ``x * gate(fc2(act(fc1(mean_spatial(x)))))`` with
  1x1 convs (with bias) like torchvision's ``ops.SqueezeExcitation``.
- ``DropPath``: stochastic depth per example (torchvision ``StochasticDepth(p, 'row')``).
- ``InvertedResidual``: MobileNetV2/V3 and EfficientNet's MBConv.

Blocks take ``conv: ModuleDef`` / ``norm: ModuleDef`` (flax imagenet-example style); the model
binds kernel initialiser, dtype, ``impl`` and ``use_running_average`` into them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

ModuleDef = Any

# torch ``nn.init.kaiming_normal_(w, mode='fan_out')`` (untruncated, std sqrt(2 / (C_out*k*k)));
# torchvision initialises every conv of its MobileNets and EfficientNets with it.
torch_kaiming_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
  """Rounds ``v`` to the nearest multiple of ``divisor`` (at least ``min_value``, default
  ``divisor``), going one step up if rounding lost more than 10% (torchvision / TF-slim)."""
  min_value = divisor if min_value is None else min_value
  new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
  return new_v + divisor if new_v < 0.9 * v else new_v


def stage_ends(strides) -> list[int]:
  """Indices of the blocks that end a stage, a stage being a maximal run of blocks at one
  resolution: block ``i`` ends one if it is the last or block ``i+1`` downsamples."""
  strides = list(strides)
  return [i for i in range(len(strides)) if i == len(strides) - 1 or strides[i + 1] > 1]


def check_rate(owner: str, name: str, value: float, *, allow_one: bool = False) -> None:
  """Raises ``ValueError`` unless ``0 <= value < 1`` (``<= 1`` with ``allow_one``)."""
  ok = 0.0 <= value <= 1.0 if allow_one else 0.0 <= value < 1.0
  if not ok:
    rng = "[0, 1]" if allow_one else "[0, 1)"
    raise ValueError(f"{owner}: {name} must be in {rng}, got {value!r}")


class ConvNormAct(nn.Module):
  """``(N, *S, C_in) -> (N, *S/strides, features)``; ``groups=C_in`` makes it depthwise."""
  features: int
  kernel_size: int
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  groups: int = 1
  act: Callable | None = None

  @nn.compact
  def __call__(self, x):
    nd = x.ndim - 2
    p = (self.kernel_size - 1) // 2
    x = self.conv(self.features, (self.kernel_size,) * nd, strides=self.strides,
                  padding=((p, p),) * nd, feature_group_count=self.groups, name="conv")(x)
    x = self.norm(name="bn")(x)
    return x if self.act is None else self.act(x)


class SqueezeExcitation(nn.Module):
  """Channel gating; ``conv`` must build 1x1 convs with bias (``fc1``: C -> squeeze,
  ``fc2``: squeeze -> C)."""
  squeeze_features: int
  conv: ModuleDef
  act: Callable = nn.relu
  gate: Callable = nn.sigmoid

  @nn.compact
  def __call__(self, x):
    nd = x.ndim - 2
    s = jnp.mean(x, axis=tuple(range(1, nd + 1)), keepdims=True)
    s = self.act(self.conv(self.squeeze_features, (1,) * nd, name="fc1")(s))
    s = self.gate(self.conv(x.shape[-1], (1,) * nd, name="fc2")(s))
    return x * s


class DropPath(nn.Module):
  """Zeroes whole examples with probability ``rate`` and scales the survivors by
  ``1 / (1 - rate)`` (so the expectation is unchanged). Identity when ``deterministic`` or
  ``rate == 0``; otherwise needs the ``'dropout'`` rng."""
  rate: float
  deterministic: bool | None = None
  rng_collection: str = "dropout"

  @nn.compact
  def __call__(self, x, deterministic: bool | None = None):
    check_rate("DropPath", "rate", self.rate, allow_one=True)
    deterministic = nn.merge_param("deterministic", self.deterministic, deterministic)
    if deterministic or self.rate == 0.0:
      return x
    keep = 1.0 - self.rate
    mask = jax.random.bernoulli(self.make_rng(self.rng_collection), keep,
                                (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, 0.0) if keep > 0.0 else jnp.zeros_like(x)


class InvertedResidual(nn.Module):
  """[1x1 expand -> act] -> kxk depthwise (stride) -> act -> [SE] -> 1x1 project (no act),
  plus the input (through ``DropPath``) when stride is 1 and channels match.

  The expansion conv is present iff ``expanded != C_in`` (torchvision). ``se_features=0``: no SE.
  """
  features: int
  expanded: int
  kernel_size: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  act: Callable = nn.relu
  se_features: int = 0
  se_conv: ModuleDef | None = None
  se_act: Callable = nn.relu
  se_gate: Callable = nn.sigmoid
  drop_path_rate: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    cna = lambda *a, **k: ConvNormAct(*a, conv=self.conv, norm=self.norm, **k)
    y = x
    if self.expanded != x.shape[-1]:
      y = cna(self.expanded, 1, act=self.act, name="expand")(y)
    y = cna(self.expanded, self.kernel_size, strides=self.strides, groups=self.expanded,
            act=self.act, name="depthwise")(y)
    if self.se_features:
      y = SqueezeExcitation(self.se_features, self.se_conv, self.se_act, self.se_gate,
                            name="se")(y)
    y = cna(self.features, 1, name="project")(y)
    if self.strides == 1 and x.shape[-1] == self.features:
      y = DropPath(self.drop_path_rate)(y, deterministic=not train) + x
    return y
