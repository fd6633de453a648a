"""Pieces the conv impls share: the input under one kernel offset (a strided slice), the grouped
patch-times-kernel matmul, the accumulation dtype, and a fusion fence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def window_slice(xp, offset, stride, dilation, out_spatial):
  """``xp[:, o*s + k*d, :]`` for all output positions ``o``: the input under kernel offset ``k``.

  ``xp``: padded ``(N, *spatial, C)``; returns ``(N, *out_spatial, C)`` (a strided slice).
  """
  start = (0, *(k * d for k, d in zip(offset, dilation)), 0)
  limit = (xp.shape[0], *(b + (o - 1) * s + 1 for b, o, s in zip(start[1:-1], out_spatial, stride)),
           xp.shape[-1])
  return lax.slice(xp, start, limit, (1, *stride, 1))


def accum_dtype(dtype):
  """float32 for bfloat16/float16 inputs (accumulate in float32), else ``dtype``."""
  return jnp.promote_types(dtype, jnp.float32)


def grouped_matmul(a_KxC, w_KxCgxO, groups):
  """``a`` ``(..., K, C_in)`` times ``w`` ``(K, C_in/groups, C_out)`` -> ``(..., C_out)``.

  Contracts ``K`` and each group's channels; one matmul when ``groups == 1``. The result is in
  ``accum_dtype`` (callers cast back).
  """
  acc = accum_dtype(a_KxC.dtype)
  if groups == 1:  # (..., K*C_in) @ (K*C_in, C_out): contiguous reshapes, one dot
    a = a_KxC.reshape(*a_KxC.shape[:-2], -1)
    return jnp.matmul(a, w_KxCgxO.reshape(a.shape[-1], -1), preferred_element_type=acc)
  a = a_KxC.reshape(*a_KxC.shape[:-1], groups, -1)
  w = w_KxCgxO.reshape(*w_KxCgxO.shape[:-1], groups, -1)
  y = jnp.einsum("...kgc,kcgo->...go", a, w, preferred_element_type=acc)
  return y.reshape(*y.shape[:-2], -1)


@jax.custom_jvp
def fusion_fence(x, key):
  """``x``; where it is differentiated (the forward pass of a train step), computed into a buffer
  of its own on XLA's CPU backend, so that no producer of ``x`` (an elementwise chain such as
  BatchNorm-ReLU-residual) is fused into, and recomputed by, the backward pass's consumers.

  Evaluated without differentiation (eval, inference, export) it is ``x`` and costs nothing; its
  JVP rule, which reverse mode also runs, returns ``x`` through a ``lax.cond``: a fusion boundary
  that XLA keeps (``lax.optimization_barrier`` is removed before fusion). Both branches return
  ``x``, the second (taken only when ``key``'s first element is NaN) as ``x + 0.0``, which
  differs from ``x`` in the sign of zeros only and keeps the branches apart (JAX drops a ``cond``
  whose branches are the same). ``key``: a small array that every device holds whole (a conv's
  kernel), so a batch-sharded ``x`` needs no communication for the predicate. Off the CPU no
  ``cond`` (it would wait for its predicate on the host). docs/performance.md, "A fence before
  the weight gradient"."""
  del key
  return x


@fusion_fence.defjvp
def _fusion_fence_jvp(primals, tangents):
  x, key = primals
  if jax.default_backend() != "cpu":
    return x, tangents[0]
  first = key.reshape(-1)[0]
  fenced = lax.cond(first == first, lambda v: v, lambda v: v + jnp.zeros((), v.dtype), x)
  return fenced, tangents[0]
