"""Normalisation modules over ``cnnlab.ops.norm``, drop-in for ``flax.linen``'s.

Same constructor arguments, defaults and ``__call__`` as ``flax.linen.BatchNorm`` / ``LayerNorm``
/ ``GroupNorm`` / ``InstanceNorm``; same variables: ``params`` ``scale``/``bias`` (shape of the
feature axes), BatchNorm's ``batch_stats`` ``mean``/``var`` (float32). So Flax's defaults hold:
BatchNorm ``momentum=0.99`` (``new = 0.99*old + 0.01*batch``, torch's ``momentum=0.1`` is
``momentum=0.9`` here) with the *biased* batch variance in ``var`` (torch stores the unbiased
one; ``cnnlab.ops.batch_norm(..., convention='torch')`` does that); ``epsilon`` 1e-5 for
BatchNorm, 1e-6 for the others (torch: 1e-5 for all); docs/conventions.md, "Batch norm" and
"Epsilon".
Differences: statistics are always reduced in at least float32 (``force_float32_reductions``
only picks the dtype of the stored running statistics).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from cnnlab.ops import norm as ops_norm

Initializer = Any
Axes = int | tuple[int, ...]


def _scale_bias(mdl, x, feature_axes):
  """``scale``/``bias`` params of shape ``x.shape[feature_axes]``, reshaped to broadcast."""
  shape = tuple(x.shape[a] for a in feature_axes)
  bshape = tuple(x.shape[a] if a in feature_axes else 1 for a in range(x.ndim))
  scale = (mdl.param("scale", mdl.scale_init, shape, mdl.param_dtype).reshape(bshape)
           if mdl.use_scale else None)
  bias = (mdl.param("bias", mdl.bias_init, shape, mdl.param_dtype).reshape(bshape)
          if mdl.use_bias else None)
  return scale, bias


def _out(mdl, x, y, scale, bias):
  dtype = nn.dtypes.canonicalize_dtype(*(a for a in (x, scale, bias) if a is not None),
                                       dtype=mdl.dtype)
  return jnp.asarray(y, dtype)


def _stats(mdl, x, reduction_axes, mask):
  return ops_norm.moments(x, reduction_axes, mask=mask,
                          axis_name=None if mdl.is_initializing() else mdl.axis_name,
                          axis_index_groups=mdl.axis_index_groups,
                          fast_variance=mdl.use_fast_variance)


class BatchNorm(nn.Module):
  """``flax.linen.BatchNorm`` over ``cnnlab.ops.batch_norm`` (Flax momentum convention)."""
  use_running_average: bool | None = None
  axis: Axes = -1
  momentum: float = 0.99
  epsilon: float = 1e-5
  dtype: Any = None
  param_dtype: Any = jnp.float32
  use_bias: bool = True
  use_scale: bool = True
  bias_init: Initializer = nn.initializers.zeros
  scale_init: Initializer = nn.initializers.ones
  axis_name: str | None = None
  axis_index_groups: Any = None
  use_fast_variance: bool = True
  force_float32_reductions: bool = True

  @nn.compact
  def __call__(self, x, use_running_average: bool | None = None, *, mask=None):
    use_ra = nn.merge_param("use_running_average", self.use_running_average,
                            use_running_average)
    features = ops_norm.canonical_axes(x.ndim, self.axis, "axis")
    shape = tuple(x.shape[a] for a in features)
    stats_dtype = jnp.float32 if self.force_float32_reductions else self.param_dtype
    ra_mean = self.variable("batch_stats", "mean", lambda s: jnp.zeros(s, stats_dtype), shape)
    ra_var = self.variable("batch_stats", "var", lambda s: jnp.ones(s, stats_dtype), shape)
    scale = (self.param("scale", self.scale_init, shape, self.param_dtype)
             if self.use_scale else None)
    bias = self.param("bias", self.bias_init, shape, self.param_dtype) if self.use_bias else None
    initializing = self.is_initializing()
    y, (mean, var) = ops_norm.batch_norm(
        x, ra_mean.value, ra_var.value, scale, bias, train=not use_ra, momentum=self.momentum,
        eps=self.epsilon, axis=features, convention="flax", mask=mask,
        axis_name=None if initializing else self.axis_name,
        axis_index_groups=self.axis_index_groups, fast_variance=self.use_fast_variance)
    if not use_ra and not initializing:
      ra_mean.value, ra_var.value = mean.astype(stats_dtype), var.astype(stats_dtype)
    return _out(self, x, y, scale, bias)


class LayerNorm(nn.Module):
  """``flax.linen.LayerNorm``: statistics over ``reduction_axes``, params over
  ``feature_axes``."""
  epsilon: float = 1e-6
  dtype: Any = None
  param_dtype: Any = jnp.float32
  use_bias: bool = True
  use_scale: bool = True
  bias_init: Initializer = nn.initializers.zeros
  scale_init: Initializer = nn.initializers.ones
  reduction_axes: Axes = -1
  feature_axes: Axes = -1
  axis_name: str | None = None
  axis_index_groups: Any = None
  use_fast_variance: bool = True
  force_float32_reductions: bool = True

  @nn.compact
  def __call__(self, x, *, mask=None):
    reduction = ops_norm.canonical_axes(x.ndim, self.reduction_axes, "reduction_axes")
    features = ops_norm.canonical_axes(x.ndim, self.feature_axes, "feature_axes")
    mean, var = _stats(self, x, reduction, mask)
    scale, bias = _scale_bias(self, x, features)
    return _out(self, x, ops_norm.normalize(x, mean, var, scale, bias, self.epsilon), scale,
                bias)


class InstanceNorm(nn.Module):
  """``flax.linen.InstanceNorm``: statistics over all axes but the batch (0) and
  ``feature_axes``."""
  epsilon: float = 1e-6
  dtype: Any = None
  param_dtype: Any = jnp.float32
  use_bias: bool = True
  use_scale: bool = True
  bias_init: Initializer = nn.initializers.zeros
  scale_init: Initializer = nn.initializers.ones
  feature_axes: Axes = -1
  axis_name: str | None = None
  axis_index_groups: Any = None
  use_fast_variance: bool = True
  force_float32_reductions: bool = True

  @nn.compact
  def __call__(self, x, *, mask=None):
    features = ops_norm.canonical_axes(x.ndim, self.feature_axes, "feature_axes")
    reduction = tuple(a for a in range(1, x.ndim) if a not in features)
    if not reduction or 0 in features:
      raise ValueError(f"InstanceNorm: feature_axes={self.feature_axes!r} must leave the batch "
                       f"axis and at least one axis to reduce in a rank-{x.ndim} input")
    mean, var = _stats(self, x, reduction, mask)
    scale, bias = _scale_bias(self, x, features)
    return _out(self, x, ops_norm.normalize(x, mean, var, scale, bias, self.epsilon), scale,
                bias)


class GroupNorm(nn.Module):
  """``flax.linen.GroupNorm``: ``num_groups`` contiguous channel groups (or ``group_size``
  channels each, with ``num_groups=None``), statistics per example over ``reduction_axes``
  (default all but the batch; must include the channels)."""
  num_groups: int | None = 32
  group_size: int | None = None
  epsilon: float = 1e-6
  dtype: Any = None
  param_dtype: Any = jnp.float32
  use_bias: bool = True
  use_scale: bool = True
  bias_init: Initializer = nn.initializers.zeros
  scale_init: Initializer = nn.initializers.ones
  reduction_axes: Axes | None = None
  axis_name: str | None = None
  axis_index_groups: Any = None
  use_fast_variance: bool = True
  force_float32_reductions: bool = True

  @nn.compact
  def __call__(self, x, *, mask=None):
    c = x.shape[-1]
    if (self.num_groups is None) == (self.group_size is None):
      raise ValueError("GroupNorm: give exactly one of num_groups and group_size (pass "
                       f"num_groups=None with group_size); got {self.num_groups!r}, "
                       f"{self.group_size!r}")
    groups = self.num_groups if self.group_size is None else c // max(self.group_size, 1)
    if groups < 1 or c % groups or (self.group_size is not None and groups * self.group_size != c):
      raise ValueError(f"GroupNorm: num_groups={self.num_groups!r} / group_size="
                       f"{self.group_size!r} must split the {c} channels evenly")
    size = c // groups
    reduction = ops_norm.canonical_axes(x.ndim, range(1, x.ndim) if self.reduction_axes is None
                               else self.reduction_axes, "reduction_axes")
    if reduction[-1] != x.ndim - 1:
      raise ValueError(f"GroupNorm: reduction_axes={self.reduction_axes!r} must include the "
                       "last (feature) axis")
    xg = x.reshape(x.shape[:-1] + (c // size, size))
    gmask = None if mask is None else mask.reshape(mask.shape[:-1] + (c // size, size))
    mean, var = _stats(self, xg, reduction[:-1] + (x.ndim,), gmask)
    y = ops_norm.normalize(xg, mean, var, eps=self.epsilon).reshape(x.shape)
    scale, bias = _scale_bias(self, x, (x.ndim - 1,))
    y = y if scale is None else y * scale
    return _out(self, x, y if bias is None else y + bias, scale, bias)
