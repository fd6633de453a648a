"""CIFAR ResNets (He et al. 2016, Sec. 4.2) and Wide ResNets (Zagoruyko & Komodakis 2016).

Input ``(N, 32, 32, 3)`` -> logits ``(N, num_classes)``; every conv is 3x3 with symmetric
padding 1 (or 1x1 unpadded).

``CifarResNet``: depth ``6n+2``: 3x3 conv (16) + BN + ReLU, three stages of ``n`` basic blocks
(``blocks.BasicBlock``) with 16, 32, 64 planes (stride 2 at the start of stages 2-3), global average pool, dense.
Shortcut when the shape changes: ``'A'`` (paper's CIFAR choice, parameter-free) takes every
second pixel and zero-pads the new channels (half below, half above, as the common PyTorch
port does); ``'B'`` is a 1x1 conv projection + BN.

``WideResNet``: depth ``6n+4``, widening ``k``: 3x3 conv (16), three stages of ``n``
pre-activation blocks (BN-ReLU-conv3x3-BN-ReLU-dropout-conv3x3) with 16k, 32k, 64k planes,
1x1 conv shortcut where the shape changes, final BN-ReLU, pool, dense. No conv biases.

Initialisation: convs kaiming-normal fan_out; dense as torch.nn.Linear. BN as torch (momentum
0.1 = Flax 0.9, eps 1e-5). Sown intermediates: ``stem``, ``stage1``...``stage3``, ``pre_logits``.
``remat`` (both): a policy of ``blocks.REMAT_POLICIES`` rematerialising every block ('' = none).
"""

from __future__ import annotations

import functools

import flax.linen as nn

from cnnlab import nn as cnn
from cnnlab.models.blocks import (BasicBlock, Model, ModuleDef, batch_norm, check_rates,
                                  classifier_head, kaiming_normal_fan_out, remat, torch_linear)
from cnnlab.models.registry import register

_PAD1 = ((1, 1), (1, 1))


class CifarResNet(Model):
  depth: int = 20
  num_classes: int = 10
  shortcut: str = "A"
  zero_init_residual: bool = False
  drop_path_rate: float = 0.0
  remat: str = ""

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    block_cls = remat(BasicBlock, self.remat)
    if (self.depth - 2) % 6 or self.depth < 8:
      raise ValueError(f"CifarResNet: depth={self.depth!r} must be 6n+2 with n >= 1 (20, 32, 44, "
                       "56, 110, ...)")
    if self.shortcut not in ("A", "B"):
      raise ValueError(f"CifarResNet: shortcut={self.shortcut!r} must be 'A' or 'B'")
    check_rates("CifarResNet", drop_path_rate=self.drop_path_rate)
    conv = functools.partial(cnn.Conv, use_bias=False, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=kaiming_normal_fan_out)
    norm = batch_norm(train, self.dtype)
    x = nn.relu(norm(name="bn1")(conv(16, (3, 3), padding=_PAD1, name="conv1")(x_BxHxWxC)))
    self.sow("intermediates", "stem", x)
    n = (self.depth - 2) // 6
    for i in range(3):
      for j in range(n):
        k = i * n + j
        x = block_cls(16 * 2 ** i, 2 if i > 0 and j == 0 else 1, conv, norm,
                       self.drop_path_rate * k / max(3 * n - 1, 1), self.zero_init_residual,
                       self.shortcut, name=f"layer{i + 1}_{j}")(x, train)
      self.sow("intermediates", f"stage{i + 1}", x)
    return classifier_head(self, x, torch_linear(x.shape[-1], self.dtype))


class WideBasicBlock(nn.Module):
  """Pre-activation block; the 1x1 shortcut conv sees the pre-activated input (as the paper's
  code does) where the shape changes."""
  planes: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    a = nn.relu(self.norm(name="bn1")(x))
    y = self.conv(self.planes, (3, 3), self.strides, padding=_PAD1, name="conv1")(a)
    y = nn.relu(self.norm(name="bn2")(y))
    y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
    y = self.conv(self.planes, (3, 3), padding=_PAD1, name="conv2")(y)
    if x.shape[-1] != self.planes or self.strides != 1:
      x = self.conv(self.planes, (1, 1), self.strides, name="shortcut_conv")(a)
    return x + y


class WideResNet(Model):
  depth: int = 28
  widen_factor: int = 10
  num_classes: int = 10
  dropout_rate: float = 0.0
  remat: str = ""

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    block_cls = remat(WideBasicBlock, self.remat)
    if (self.depth - 4) % 6 or self.depth < 10:
      raise ValueError(f"WideResNet: depth={self.depth!r} must be 6n+4 with n >= 1 (16, 22, 28, "
                       "40, ...)")
    if self.widen_factor < 1:
      raise ValueError(f"WideResNet: widen_factor={self.widen_factor!r} must be >= 1")
    check_rates("WideResNet", dropout_rate=self.dropout_rate)
    conv = functools.partial(cnn.Conv, use_bias=False, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=kaiming_normal_fan_out)
    norm = batch_norm(train, self.dtype)
    x = conv(16, (3, 3), padding=_PAD1, name="conv1")(x_BxHxWxC)
    self.sow("intermediates", "stem", x)
    for i in range(3):
      for j in range((self.depth - 4) // 6):
        x = block_cls(16 * self.widen_factor * 2 ** i, 2 if i > 0 and j == 0 else 1, conv,
                           norm, self.dropout_rate, name=f"layer{i + 1}_{j}")(x, train)
      self.sow("intermediates", f"stage{i + 1}", x)
    x = nn.relu(norm(name="bn_final")(x))
    return classifier_head(self, x, torch_linear(x.shape[-1], self.dtype))


_HE16 = "He, Zhang, Ren & Sun 2016, Deep residual learning for image recognition (Sec. 4.2)"
# Paper Table 6 (option A, 10 classes): 0.27M, 0.46M, 0.66M, 0.85M, 1.7M.
for _depth, _n in ((20, 269_722), (32, 464_154), (44, 658_586), (56, 853_018), (110, 1_727_962)):
  register(f"resnet{_depth}", functools.partial(CifarResNet, depth=_depth), input_shape=(32, 32, 3),
           paper=_HE16, num_params=_n, family="resnet_cifar", small_input_shape=(32, 32, 3))
register("wrn28_10", functools.partial(WideResNet, depth=28, widen_factor=10),
         input_shape=(32, 32, 3), paper="Zagoruyko & Komodakis 2016, Wide residual networks",
         num_params=36_479_194, family="resnet_cifar", small_input_shape=(32, 32, 3))
