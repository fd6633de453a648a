"""Train state: step, params, optimizer state and (for models with BatchNorm) batch statistics."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax.training import train_state


class TrainState(train_state.TrainState):
  batch_stats: Any = None


def create(model, tx, input_shape, seed: int, dtype=jnp.float32) -> TrainState:
  """Initialises ``model`` on zeros of ``(1, *input_shape)`` of ``dtype`` (the model's input
  dtype: int32 for token ids); pure, so it can be jitted."""
  variables = model.init(jax.random.key(seed), jnp.zeros((1, *input_shape), dtype), train=False)
  return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                           batch_stats=variables.get("batch_stats"))


def variables(state: TrainState) -> dict:
  v = {"params": state.params}
  if state.batch_stats is not None:
    v["batch_stats"] = state.batch_stats
  return v
