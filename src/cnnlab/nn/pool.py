"""Pooling as parameter-free Linen modules over ``cnnlab.ops.pool`` (torch semantics, channels
last), so pooling can be a ``ModuleDef`` in a block or a layer of ``nn.Sequential``; for plain
function use, ``functools.partial(cnnlab.ops.max_pool, window=3, stride=2, padding=1)``."""

from __future__ import annotations


import flax.linen as nn

from cnnlab.ops import pool

IntOrTuple = int | tuple[int, ...]


class MaxPool(nn.Module):
  """``ops.max_pool``; ``stride=None`` means ``stride=window``."""
  window: IntOrTuple
  stride: IntOrTuple | None = None
  padding: IntOrTuple = 0
  ceil_mode: bool = False
  dilation: IntOrTuple = 1

  def __call__(self, x):
    return pool.max_pool(x, self.window, self.stride, self.padding, ceil_mode=self.ceil_mode,
                         dilation=self.dilation)


class AvgPool(nn.Module):
  """``ops.avg_pool``; ``stride=None`` means ``stride=window``."""
  window: IntOrTuple
  stride: IntOrTuple | None = None
  padding: IntOrTuple = 0
  ceil_mode: bool = False
  count_include_pad: bool = True

  def __call__(self, x):
    return pool.avg_pool(x, self.window, self.stride, self.padding, ceil_mode=self.ceil_mode,
                         count_include_pad=self.count_include_pad)


class AdaptiveAvgPool(nn.Module):
  """``ops.adaptive_avg_pool`` to ``output_size`` (torch's bins)."""
  output_size: IntOrTuple

  def __call__(self, x):
    return pool.adaptive_avg_pool(x, self.output_size)


class GlobalAvgPool(nn.Module):
  """``(N, *spatial, C) -> (N, C)`` mean (``keepdims``: spatial dims kept as 1)."""
  keepdims: bool = False

  def __call__(self, x):
    return pool.global_avg_pool(x, self.keepdims)


class GlobalMaxPool(nn.Module):
  """``(N, *spatial, C) -> (N, C)`` max (``keepdims``: spatial dims kept as 1)."""
  keepdims: bool = False

  def __call__(self, x):
    return pool.global_max_pool(x, self.keepdims)
