"""Train state: step, params, optimizer state, (for models with BatchNorm) batch statistics,
(``config.ema_decay`` > 0) the exponential moving average of the params and
(``config.loss_scale='dynamic'``) the loss scale.

The EMA (timm's ``--model-ema``, without its batch-statistics averaging): ``ema_params`` start as
the initial params and after every optimizer update become ``decay * ema + (1 - decay) * params``
(``optax.tree.update_moment``, no debiasing). Evaluation, ``evaluate`` and export use them in place
of ``params`` (with the model's own ``batch_stats``); docs/scale.md, "EMA of parameters".

The loss scale is flax's ``DynamicScale`` (its ``scale`` and ``fin_steps`` arrays are checkpointed
with the rest): float16 gradients of the loss times the scale; a step whose gradient overflows is
not applied and halves the scale, ``period`` finite steps in a row double it (docs/scale.md,
"Mixed precision")."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training import dynamic_scale as dynamic_scale_lib
from flax.training import train_state


class TrainState(train_state.TrainState):
  batch_stats: Any = None
  ema_params: Any = None
  dynamic_scale: dynamic_scale_lib.DynamicScale | None = None


def create(model, tx, input_shape, seed: int, dtype=jnp.float32, ema: bool = False,
           loss_scale: float = 0.0, loss_scale_period: int = 2000) -> TrainState:
  """Initialises ``model`` on zeros of ``(1, *input_shape)`` of ``dtype`` (the model's input
  dtype: int32 for token ids); ``ema``: keep ``ema_params``; ``loss_scale`` > 0: keep a dynamic
  loss scale starting there, doubled after ``loss_scale_period`` finite steps. Pure, so it can
  be jitted."""
  variables = model.init(jax.random.key(seed), jnp.zeros((1, *input_shape), dtype), train=False)
  params = variables["params"]
  scale = None
  if loss_scale > 0:
    scale = dynamic_scale_lib.DynamicScale(growth_interval=loss_scale_period,
                                           fin_steps=jnp.zeros((), jnp.int32),
                                           scale=jnp.asarray(loss_scale, jnp.float32))
  return TrainState.create(apply_fn=model.apply, params=params, tx=tx,
                           batch_stats=variables.get("batch_stats"),
                           ema_params=jax.tree.map(jnp.copy, params) if ema else None,
                           dynamic_scale=scale)


def restart_ema(state: TrainState) -> TrainState:
  """``state`` with its EMA (if it keeps one) restarted at the current params (after loading
  them from another run: ``config.init_from``)."""
  if state.ema_params is None:
    return state
  return state.replace(ema_params=jax.tree.map(jnp.copy, state.params))


def update_ema(state: TrainState, decay: float, applied=True) -> TrainState:
  """``state`` with ``ema_params`` moved towards ``params`` (where ``applied``: the optimizer
  changed them this step); ``state`` itself without an EMA."""
  if state.ema_params is None:
    return state
  new = optax.tree.update_moment(state.params, state.ema_params, decay, order=1)
  return state.replace(ema_params=jax.tree.map(lambda n, o: jnp.where(applied, n, o), new,
                                               state.ema_params))


def variables(state: TrainState, ema: bool = False) -> dict:
  """The model's variables; ``ema``: with ``ema_params`` as ``params`` if the state keeps them."""
  params = state.ema_params if ema and state.ema_params is not None else state.params
  v = {"params": params}
  if state.batch_stats is not None:
    v["batch_stats"] = state.batch_stats
  return v
