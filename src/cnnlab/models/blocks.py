"""The one home of what model families share (channels-last, any number of spatial dims where it
makes sense); no family imports another.

- ``Model``: the base of every registered model (its keyword-only ``conv_impl`` and ``dtype``).
- Initialisers in torch's terms (docs/conventions.md, "Default initialisation"): torch's layer
  default ``torch_default_kernel_init`` / ``torch_default_bias_init``, He's
  ``kaiming_normal_fan_out`` / ``kaiming_normal_fan_in`` / ``kaiming_uniform_fan_in``.
- ``torch_linear`` / ``batch_norm``: ``nn.Dense`` / ``cnn.BatchNorm`` ModuleDefs with torch's
  defaults (BN momentum in Flax's convention); ``classifier_head``: pool -> dropout -> dense.
- Checks: ``check_rates`` (dropout / drop-path rates), ``check_image`` (``(N, H, W, C)`` inputs).
- Channel arithmetic: ``make_divisible`` (torchvision's ``_make_divisible``), ``stage_ends``.
- ``causal_receptive_field``: the receptive field of a path of stride-1 causal 1D convs.
- ``ConvNormAct``: conv -> norm -> optional activation (torch's ``Conv2dNormActivation``,
  torchvision's Inception ``BasicConv2d``).
- Dense prediction: ``ConvReLUStack`` (3x3 [dilated] convs + ReLU at one resolution: VGG /
  FCN stages, U-Net's double conv, Yu & Koltun's front-end), ``pad_to_multiple`` (pad an image
  so every 2x pool divides it; the model crops its output back).
- ``SqueezeExcitation`` (Hu et al. 2018), ``DropPath`` (stochastic depth per example),
  ``InvertedResidual`` (MobileNetV2/V3, EfficientNet's MBConv).
- ResNet family: ``ResidualBlock`` (the fields of a residual block and its shortcut / residual
  sum), ``BasicBlock`` (two 3x3 convs, He et al. 2016).
- ``remat``: a block class rematerialised (``nn.remat``) under a policy of ``REMAT_POLICIES``
  (a model's ``remat`` option; docs/scale.md, "Rematerialisation").

Blocks take ``conv: ModuleDef`` / ``norm: ModuleDef`` (flax/examples imagenet style): the model
builds them once, binding kernel initialiser, dtype, its ``conv_impl`` (as ``cnn.Conv``'s
``impl``) and ``use_running_average``; no block sees ``conv_impl`` itself.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnlab import arith
from cnnlab import nn as cnn
from cnnlab import ops

ModuleDef = Any
Initializer = Callable[..., jax.Array]

# torch's default weight init of nn.Conv*/nn.Linear, kaiming_uniform_(a=sqrt(5)):
# U(+-sqrt(6 / ((1 + 5) * fan_in))) = U(+-1/sqrt(fan_in)).
torch_default_kernel_init = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
# kaiming_normal_(mode='fan_out', nonlinearity='relu'): N(0, 2 / fan_out), untruncated
# (torchvision's ResNets, VGG, MobileNets, EfficientNets).
kaiming_normal_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# kaiming_normal_() with its defaults: N(0, 2 / fan_in) (torchvision's DenseNet; He normal).
kaiming_normal_fan_in = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
# kaiming_uniform_() with its defaults (a=0): U(+-sqrt(6 / fan_in)) (torchvision's SqueezeNet).
kaiming_uniform_fan_in = nn.initializers.variance_scaling(2.0, "fan_in", "uniform")


class Model(nn.Module):
  """Base of every registered model: the options all of them take, keyword-only.

  ``conv_impl``: how the model's convs compute (``cnnlab.ops.conv``'s ``impl``; the model binds it
  once into its ``conv`` ModuleDef as ``cnn.Conv(impl=...)``); ``dtype``: the computation dtype
  (parameters stay float32). Subclasses define ``__call__(x, train=False)``."""
  conv_impl: str = dataclasses.field(default="lax", kw_only=True)
  dtype: Any = dataclasses.field(default=None, kw_only=True)

  def __post_init__(self):
    if self.conv_impl not in ops.list_impls():  # at construction, not at the first call
      raise ValueError(f"conv_impl={self.conv_impl!r} is not one of {ops.list_impls()}")
    super().__post_init__()


def torch_default_bias_init(fan_in: int) -> Initializer:
  """torch's default bias init of ``nn.Conv*``/``nn.Linear``: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  (the fan-in of the layer's kernel, which a bias initialiser cannot see: pass it)."""
  bound = fan_in ** -0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def torch_linear(fan_in: int, dtype: Any = None) -> ModuleDef:
  """``nn.Dense`` initialised as torch's ``nn.Linear`` (``fan_in`` inputs): kernel and bias
  U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  return functools.partial(nn.Dense, dtype=dtype, kernel_init=torch_default_kernel_init,
                           bias_init=torch_default_bias_init(fan_in))


def batch_norm(train: bool, dtype: Any = None, momentum: float = 0.9,
               epsilon: float = 1e-5) -> ModuleDef:
  """``cnn.BatchNorm`` normalising with batch statistics iff ``train``. Defaults: torch's
  ``BatchNorm2d`` (torch momentum 0.1 is Flax ``momentum=0.9``; eps 1e-5)."""
  return functools.partial(cnn.BatchNorm, use_running_average=not train, momentum=momentum,
                           epsilon=epsilon, dtype=dtype)


def check_rates(owner: str, *, allow_one: bool = False, **rates: float) -> None:
  """Raises ``ValueError`` unless each rate is in ``[0, 1)`` (``[0, 1]`` with ``allow_one``)."""
  for name, value in rates.items():
    if not (0.0 <= value <= 1.0 if allow_one else 0.0 <= value < 1.0):
      rng = "[0, 1]" if allow_one else "[0, 1)"
      raise ValueError(f"{owner}: {name} must be in {rng}, got {value!r}")


def check_image(owner: str, x, min_size: int = 1, hint: str = "") -> None:
  """Raises ``ValueError`` unless ``x`` is ``(N, H, W, C)`` with ``H, W >= min_size``."""
  if x.ndim != 4 or min(x.shape[1:3]) < min_size:
    size = (f" with H, W >= {min_size} (at least {min_size}x{min_size}{hint})"
            if min_size > 1 else "")
    raise ValueError(f"{owner}: x must be (N, H, W, C){size}, got shape {x.shape}")


def classifier_head(mdl: nn.Module, x, dense: ModuleDef, *, dropout_rate: float | None = None,
                    train: bool = False, name: str = "fc"):
  """``(N, *S, C) -> (N, mdl.num_classes)``: global average pool (sown as ``pre_logits``) ->
  dropout (if ``dropout_rate`` is not None) -> ``dense`` named ``name``. Called inside ``mdl``'s
  compact ``__call__``: the layers are ``mdl``'s own (no module of its own in the tree)."""
  x = ops.global_avg_pool(x)
  mdl.sow("intermediates", "pre_logits", x)
  if dropout_rate is not None:
    x = nn.Dropout(dropout_rate, deterministic=not train)(x)
  return dense(mdl.num_classes, name=name)(x)


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


def causal_receptive_field(kernel_dilations: Sequence[tuple[int, int]]) -> int:
  """Inputs seen by one output of a path of stride-1 causal 1D convs given as ``(kernel,
  dilation)`` pairs: ``1 + sum((k-1)*d)`` (``cnnlab.arith.receptive_fields``); output ``t`` sees
  inputs ``t - r + 1 ... t``."""
  layers = [(k, 1, ((k - 1) * d, 0), d) for k, d in kernel_dilations]
  return arith.receptive_fields(layers)[-1].size if layers else 1


class ConvNormAct(nn.Module):
  """``(N, *S, C_in) -> (N, *S', features)``: ``conv`` (module ``conv``) -> ``norm`` (``bn``) ->
  ``act`` (none if None). ``kernel_size``: an int (the same in every dim) or one per dim;
  ``padding``: symmetric, as torch's (an int or one int per dim; default ``(k-1)//2``).
  ``groups=C_in`` makes it depthwise."""
  features: int
  kernel_size: int | Sequence[int]
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  padding: int | Sequence[int] | None = None
  groups: int = 1
  act: Callable | None = None

  @nn.compact
  def __call__(self, x):
    ks = self.kernel_size
    ks = (ks,) * (x.ndim - 2) if isinstance(ks, int) else tuple(ks)
    padding = tuple((k - 1) // 2 for k in ks) if self.padding is None else self.padding
    x = self.conv(self.features, ks, strides=self.strides, padding=padding,
                  feature_group_count=self.groups, name="conv")(x)
    x = self.norm(name="bn")(x)
    return x if self.act is None else self.act(x)


class ConvReLUStack(nn.Module):
  """``(N, H, W, C) -> (N, H, W, features)``: ``num_convs`` x (3x3 conv with ``dilation``,
  padding ``dilation`` each side (size-preserving, symmetric as torch's), ReLU); modules
  ``conv0``, ``conv1``, ..."""
  features: int
  conv: ModuleDef
  num_convs: int = 2
  dilation: int = 1

  @nn.compact
  def __call__(self, x_BxHxWxC):
    pad = ((self.dilation, self.dilation),) * 2
    for i in range(self.num_convs):
      x_BxHxWxC = nn.relu(self.conv(self.features, (3, 3), padding=pad,
                                    kernel_dilation=self.dilation, name=f"conv{i}")(x_BxHxWxC))
    return x_BxHxWxC


def pad_to_multiple(x_BxHxWxC, multiple: int):
  """Zero-pads H and W on the high side up to the next multiple of ``multiple`` (so ``log2``
  of it floor-mode 2x2 pools divide exactly and x2 upsamplings give back each size); a dense
  model crops its output to ``[:, :H, :W]``."""
  h, w = x_BxHxWxC.shape[1:3]
  pads = ((0, 0), (0, -h % multiple), (0, -w % multiple), (0, 0))
  return jnp.pad(x_BxHxWxC, pads) if any(p[1] for p in pads) else x_BxHxWxC


class SqueezeExcitation(nn.Module):
  """Channel gating ``x * gate(fc2(act(fc1(mean_spatial(x)))))`` with 1x1 convs like
  torchvision's ``ops.SqueezeExcitation``; ``conv`` must build convs with bias (``fc1``: C ->
  squeeze, ``fc2``: squeeze -> C)."""
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
  """Stochastic depth (Huang et al. 2016; torchvision ``StochasticDepth(p, 'row')``): zeroes
  whole examples with probability ``rate`` and scales the survivors by ``1 / (1 - rate)`` (so the
  expectation is unchanged). Identity when ``deterministic`` or ``rate == 0``; otherwise needs
  the ``'dropout'`` rng."""
  rate: float
  deterministic: bool | None = None
  rng_collection: str = "dropout"

  @nn.compact
  def __call__(self, x, deterministic: bool | None = None):
    check_rates("DropPath", allow_one=True, rate=self.rate)
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
    cna = functools.partial(ConvNormAct, conv=self.conv, norm=self.norm)
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


# A model's ``remat`` option -> the ``jax.checkpoint`` policy of its blocks ('' = no remat; 'full':
# save nothing, recompute the block's forward in the backward pass; 'dots_saveable': keep the
# conv and matmul outputs, recompute the cheap rest: BatchNorm, ReLU, adds).
REMAT_POLICIES = {
    "": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots_saveable": jax.checkpoint_policies.dots_saveable,
    "dots_with_no_batch_dims_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def remat(block_cls: ModuleDef, policy: str) -> ModuleDef:
  """``block_cls`` (a module called as ``block(x, train)``) rematerialised under ``policy``
  (a key of :data:`REMAT_POLICIES`; '' = ``block_cls`` itself). Parameter names and shapes are
  unchanged. Raises ``ValueError`` for an unknown policy."""
  if policy not in REMAT_POLICIES:
    raise ValueError(f"remat={policy!r} is not one of {list(REMAT_POLICIES)}")
  if not policy:
    return block_cls
  return nn.remat(block_cls, policy=REMAT_POLICIES[policy], static_argnums=(2,))


class ResidualBlock(nn.Module):
  """Fields and tail shared by ResNet-style blocks (subclasses define ``__call__``, 2D).

  ``residual(x, y, train)`` = ``relu(shortcut(x) + DropPath(y))``; the shortcut is the identity,
  or where the shape changes: ``shortcut='B'`` torchvision's ``downsample`` (1x1 conv with the
  block's stride + norm, modules ``downsample_conv`` / ``downsample_bn``), ``'A'`` (He et al.
  2016's CIFAR option, parameter-free) every ``stride``-th pixel with the new channels
  zero-padded (half below, half above). ``zero_init_last``: the last norm's scale starts at 0
  (Goyal et al. 2017), see ``last_scale_init``."""
  planes: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  drop_path_rate: float = 0.0
  zero_init_last: bool = False
  shortcut: str = "B"

  def last_scale_init(self) -> Initializer:
    return nn.initializers.zeros_init() if self.zero_init_last else nn.initializers.ones_init()

  def residual(self, x, y, train: bool):
    if x.shape[-1] != y.shape[-1] or self.strides != 1:
      if self.shortcut == "A":
        x = x[:, ::self.strides, ::self.strides, :]
        extra = y.shape[-1] - x.shape[-1]
        x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
      else:
        x = self.conv(y.shape[-1], (1, 1), self.strides, name="downsample_conv")(x)
        x = self.norm(name="downsample_bn")(x)
    return nn.relu(x + DropPath(self.drop_path_rate)(y, deterministic=not train))


class BasicBlock(ResidualBlock):
  """Two 3x3 convs (padding 1, stride on the first), each + norm, ReLU between; then
  ``residual`` (modules ``conv1``, ``bn1``, ``conv2``, ``bn2``, as torchvision's)."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    pad = ((1, 1), (1, 1))
    y = self.conv(self.planes, (3, 3), self.strides, padding=pad, name="conv1")(x)
    y = nn.relu(self.norm(name="bn1")(y))
    y = self.conv(self.planes, (3, 3), padding=pad, name="conv2")(y)
    y = self.norm(name="bn2", scale_init=self.last_scale_init())(y)
    return self.residual(x, y, train)
