"""Helpers of the causality and receptive-field tests of the sequence models (TCN, dilated
forecaster): gradients of one output step w.r.t. every input step."""

import jax
import jax.numpy as jnp
import numpy as np


def positive_variables(model, x, seed=0):
  """Positive variables from numpy (no init to compile): with positive inputs every ReLU stays
  open, so no path's gradient vanishes. Kernels |N(0, 1/fan_in)| + 0.01, the rest U(0.01, 0.1)."""
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map_with_path(
      lambda path, a: jnp.asarray(
          np.abs(rng.standard_normal(a.shape)) * np.prod(a.shape[:-1]) ** -0.5 + 0.01
          if path[-1].key == "kernel" else rng.uniform(0.01, 0.1, a.shape), jnp.float32),
      jax.eval_shape(model.init, jax.random.key(0), x))


def grad_at(model, x, t):
  """d(output[0, t]) / d(input[0]) under :func:`positive_variables`: ``(L, C)``."""
  v = positive_variables(model, x)
  return np.asarray(jax.jit(jax.grad(lambda x: model.apply(v, x)[0, t].sum()))(x))[0]
