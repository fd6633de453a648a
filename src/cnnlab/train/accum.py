"""Gradient accumulation (``config.grad_accum_steps`` = k, ``config.grad_accum_impl``): one
optimizer step from the mean gradient of k micro-batches of ``batch_size / k`` examples each,
equal to one step on the whole batch (every loss is a per-example mean and the micro-batches
are equal in size); docs/scale.md, "Gradient accumulation".

Micro-batch ``i`` holds rows ``i, i+k, i+2k, ...`` of the (process-local) batch, so each device's
contiguous block of rows splits evenly into the k micro-batches and no row moves between devices.

- ``multisteps`` (the default: faster here, docs/scale.md, "Gradient accumulation"):
  ``optax.MultiSteps`` wraps the optimizer (:func:`wrap_optimizer`); the loop calls the jitted
  step once per micro-batch (:func:`host_micro_batches`), and the k-th call applies the update
  (the train state's ``step`` then counts micro-batches).
- ``scan``: ``jax.lax.scan`` over the micro-batches inside the one jitted step
  (:func:`device_micro_batches`; ``cnnlab.train.steps.train_step``'s ``accum_steps``).
"""

from __future__ import annotations

import jax
import numpy as np
import optax

IMPLS = ("multisteps", "scan")


def steps_and_impl(config) -> tuple[int, str]:
  """``(grad_accum_steps, grad_accum_impl)`` of ``config`` (1 and ``multisteps`` if unset: an
  older run's config)."""
  return config.get("grad_accum_steps", 1), config.get("grad_accum_impl", "multisteps")


def scan_steps(config) -> int:
  """The micro-batches the jitted step scans over (1: none, or ``multisteps``)."""
  k, impl = steps_and_impl(config)
  return k if impl == "scan" else 1


def wrap_optimizer(config, tx: optax.GradientTransformation) -> optax.GradientTransformation:
  """``tx`` in ``optax.MultiSteps`` for ``multisteps`` with k > 1, else ``tx`` itself."""
  k, impl = steps_and_impl(config)
  if k == 1 or impl != "multisteps":
    return tx
  return optax.MultiSteps(tx, every_k_schedule=k).gradient_transformation()


def host_micro_batches(config, batch: dict) -> list[dict]:
  """The batches the loop feeds the jitted step for one optimizer step: ``[batch]``, or for
  ``multisteps`` the k micro-batches of a process-local numpy batch (views, no copy)."""
  k, impl = steps_and_impl(config)
  if k == 1 or impl != "multisteps":
    return [batch]
  return [{key: np.asarray(v)[i::k] for key, v in batch.items()} for i in range(k)]


def device_micro_batches(tree, k: int):
  """Every ``(B, ...)`` leaf of ``tree`` -> ``(k, B/k, ...)``, micro-batch ``i`` = rows ``i::k``."""
  return jax.tree.map(lambda a: a.reshape(a.shape[0] // k, k, *a.shape[1:]).swapaxes(0, 1), tree)


def applied(opt_state) -> jax.Array | bool:
  """Whether the last ``apply_gradients`` changed the parameters (``multisteps``: only the k-th
  micro-batch's)."""
  if isinstance(opt_state, optax.MultiStepsState):
    return opt_state.mini_step == 0
  return True


def inner_state(opt_state):
  """The wrapped optimizer's state under ``optax.MultiSteps`` (else ``opt_state``)."""
  return opt_state.inner_opt_state if isinstance(opt_state, optax.MultiStepsState) else opt_state
