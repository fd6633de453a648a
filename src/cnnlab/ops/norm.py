"""Normalisations of channels-last ``(N, *spatial, C)`` arrays of any rank (``N, C`` included).

``y = (x - mean) / sqrt(var + eps) * scale + bias`` with the *biased* variance; statistics are
computed in at least float32 and the output has that dtype. ``scale``/``bias`` are optional,
shape ``(C,)`` (layer_norm: the shape of the normalised axes). Reduced axes:

- ``batch_norm``: all but the feature axis (default: batch and spatial, per channel);
- ``layer_norm``: ``axes`` (default ``-1``, the channels, per example and position);
- ``instance_norm``: spatial, per example and channel;
- ``group_norm``: spatial and the channels of each of ``num_groups`` groups, per example.

``eps`` defaults to 1e-5 everywhere, torch's default for all four; Flax uses 1e-5 for BatchNorm
but 1e-6 for LayerNorm/GroupNorm/InstanceNorm (``cnnlab.nn`` keeps Flax's defaults; see
docs/conventions.md, "Epsilon").
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

CONVENTIONS = ("flax", "torch")


def canonical_axes(ndim, axes, name):
  """``axes`` (int or ints, negative allowed) as a sorted tuple of non-negative axes."""
  axes = (axes,) if isinstance(axes, int) else tuple(axes)
  if not axes or any(not isinstance(a, int) or not -ndim <= a < ndim for a in axes):
    raise ValueError(f"{name}={axes!r} must be axes of a rank-{ndim} input")
  return tuple(sorted({a % ndim for a in axes}))


def moments(x, axes, *, mask=None, axis_name=None, axis_index_groups=None, fast_variance=False,
            dtype=None):
  """Mean and biased variance of ``x`` over ``axes`` (dims kept as size 1), in ``dtype``
  (default: ``x``'s promoted to at least float32). ``mask``: bool, broadcastable to ``x``, the
  elements that count. ``axis_name``: also average over that mapped axis (``pmap``/
  ``shard_map``; under ``jit`` a sharded batch is already reduced globally).
  ``fast_variance``: ``E[x^2] - E[x]^2`` (one pass, as Flax's default) instead of
  ``E[(x - E[x])^2]``."""
  dtype = jnp.promote_types(x.dtype, jnp.float32) if dtype is None else dtype
  x = x.astype(dtype)
  where = None if mask is None else jnp.broadcast_to(jnp.asarray(mask, bool), x.shape)

  def mean(*vs):
    mus = [jnp.mean(v, axis=axes, keepdims=True, where=where) for v in vs]
    if axis_name is not None:
      mus = list(lax.pmean(jnp.stack(mus), axis_name, axis_index_groups=axis_index_groups))
    return mus

  if fast_variance:
    mu, mu2 = mean(x, x * x)
    return mu, jnp.maximum(mu2 - mu * mu, 0.0)
  mu, = mean(x)
  var, = mean(jnp.square(x - mu))
  return mu, var


def normalize(x, mean, var, scale=None, bias=None, eps=1e-5):
  """``(x - mean) * rsqrt(var + eps) * scale + bias``; all arguments broadcast against ``x``."""
  if not eps > 0:
    raise ValueError(f"eps must be > 0, got {eps!r}")
  mul = lax.rsqrt(var + eps)
  if scale is not None:
    mul = mul * scale
  y = (x.astype(mul.dtype) - mean) * mul
  return y if bias is None else y + bias


def _feature_shaped(x, features, *arrays, names):
  """Reshapes per-feature arrays (shape ``x.shape[features]``) to broadcast against ``x``."""
  want = tuple(x.shape[a] for a in features)
  bshape = tuple(x.shape[a] if a in features else 1 for a in range(x.ndim))
  out = []
  for a, name in zip(arrays, names):
    if a is not None and tuple(jnp.shape(a)) != want:
      raise ValueError(f"{name} must have shape {want} (the normalised features of x "
                       f"{x.shape}), got {jnp.shape(a)}")
    out.append(None if a is None else jnp.reshape(a, bshape))
  return out


def batch_norm(x, running_mean, running_var, scale=None, bias=None, *, train, momentum=None,
               eps=1e-5, axis=-1, convention="flax", mask=None, axis_name=None,
               axis_index_groups=None, fast_variance=False):
  """Batch norm; returns ``(y, (new_running_mean, new_running_var))``.

  ``train=True``: normalise with the batch statistics (biased variance) over all axes but
  ``axis`` and update the running ones; ``train=False``: normalise with ``running_mean`` /
  ``running_var`` (shape ``x.shape[axis]``) and return them unchanged.
  Update, by ``convention``:
  - ``'flax'`` (default ``momentum=0.99``): ``new = momentum*old + (1-momentum)*batch``, batch
    variance biased (``flax.linen.BatchNorm``).
  - ``'torch'`` (default ``momentum=0.1``): ``new = (1-momentum)*old + momentum*batch``, batch
    variance *unbiased* (``n/(n-1)``) in the running stats only (``torch.nn.BatchNorm``).
  """
  if convention not in CONVENTIONS:
    raise ValueError(f"convention={convention!r} is not one of {CONVENTIONS}")
  if momentum is None:
    momentum = 0.99 if convention == "flax" else 0.1
  if not 0.0 <= momentum <= 1.0:
    raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
  features = canonical_axes(x.ndim, axis, "axis")
  reduce_axes = tuple(a for a in range(x.ndim) if a not in features)
  if not reduce_axes:
    raise ValueError(f"batch_norm needs at least one axis besides axis={axis!r} to reduce over")
  rm, rv, scale, bias = _feature_shaped(x, features, running_mean, running_var, scale, bias,
                                        names=("running_mean", "running_var", "scale", "bias"))
  if not train:
    return normalize(x, rm, rv, scale, bias, eps), (running_mean, running_var)
  mean, var = moments(x, reduce_axes, mask=mask, axis_name=axis_name,
                      axis_index_groups=axis_index_groups, fast_variance=fast_variance)
  y = normalize(x, mean, var, scale, bias, eps)
  keep = 1.0 - momentum if convention == "torch" else momentum
  batch_var = var
  if convention == "torch":
    n = jnp.sum(jnp.broadcast_to(jnp.asarray(True if mask is None else mask, bool), x.shape),
                axis=reduce_axes, keepdims=True)
    if axis_name is not None:
      n = lax.psum(n, axis_name, axis_index_groups=axis_index_groups)
    batch_var = var * n / jnp.maximum(n - 1, 1)
  shape = jnp.shape(running_mean)
  new_mean = keep * rm + (1.0 - keep) * mean
  new_var = keep * rv + (1.0 - keep) * batch_var
  return y, (new_mean.reshape(shape), new_var.reshape(shape))


def layer_norm(x, scale=None, bias=None, *, eps=1e-5, axes=-1):
  """Normalises over ``axes`` (default the channels) per example and position; ``scale`` and
  ``bias`` have the shape of those axes. torch's ``layer_norm(x, normalized_shape)`` is
  ``axes`` = the last ``len(normalized_shape)`` axes."""
  axes = canonical_axes(x.ndim, axes, "axes")
  scale, bias = _feature_shaped(x, axes, scale, bias, names=("scale", "bias"))
  mean, var = moments(x, axes)
  return normalize(x, mean, var, scale, bias, eps)


def instance_norm(x, scale=None, bias=None, *, eps=1e-5):
  """Normalises each example's channels over the spatial dims (torch's ``instance_norm``
  with ``use_input_stats=True``, no running statistics)."""
  if x.ndim < 3:
    raise ValueError(f"instance_norm needs (N, *spatial, C), got shape {x.shape}")
  scale, bias = _feature_shaped(x, (x.ndim - 1,), scale, bias, names=("scale", "bias"))
  mean, var = moments(x, tuple(range(1, x.ndim - 1)))
  return normalize(x, mean, var, scale, bias, eps)


def group_norm(x, num_groups, scale=None, bias=None, *, eps=1e-5):
  """Splits the ``C`` channels into ``num_groups`` contiguous groups (torch and Flax agree) and
  normalises each example's group over its channels and the spatial dims."""
  if x.ndim < 2:
    raise ValueError(f"group_norm needs (N, ..., C), got shape {x.shape}")
  c = x.shape[-1]
  if not isinstance(num_groups, int) or num_groups < 1 or c % num_groups:
    raise ValueError(f"num_groups={num_groups!r} must be a positive int dividing the "
                     f"{c} channels")
  scale, bias = _feature_shaped(x, (x.ndim - 1,), scale, bias, names=("scale", "bias"))
  xg = x.reshape(x.shape[:-1] + (num_groups, c // num_groups))
  mean, var = moments(xg, tuple(range(1, x.ndim - 1)) + (x.ndim,))
  y = normalize(xg, mean, var, eps=eps).reshape(x.shape)
  y = y if scale is None else y * scale
  return y if bias is None else y + bias
