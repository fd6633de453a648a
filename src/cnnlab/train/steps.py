"""Jittable train and eval steps. Batches: ``inputs`` ``(B, ...)``, ``label`` ``(B,)`` and, in
eval, ``mask`` ``(B,)``. Metrics are device-side sums, fetched only when logged.

Train metrics also carry the non-finite guard: ``nonfinite`` (steps whose loss or gradient norm
was NaN/inf; their loss is left out of the sums), ``first_nonfinite`` (the first such step
number, :data:`NO_STEP` if none) and ``skip_run`` (the longest run of consecutive non-applied
updates under ``optax.apply_if_finite``; 0 without it)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from cnnlab.train import state as state_lib

METRICS = ("loss_sum", "correct", "count")
NO_STEP = jnp.iinfo(jnp.int32).max


def zero_metrics():
  return {k: jnp.zeros((), jnp.float32) for k in METRICS}


def zero_train_metrics():
  return {**zero_metrics(), "nonfinite": jnp.zeros((), jnp.int32),
          "first_nonfinite": jnp.full((), NO_STEP, jnp.int32),
          "skip_run": jnp.zeros((), jnp.int32)}


def preprocess(x, image_size: int):
  """Resizes 2D image batches ``(B, H, W, C)`` to ``image_size`` squared (0 = as is)."""
  if image_size and x.ndim == 4 and x.shape[1:3] != (image_size, image_size):
    x = jax.image.resize(x, (x.shape[0], image_size, image_size, x.shape[3]), "bilinear")
  return x


def _sums(logits, labels, loss, weights):
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  return {"loss_sum": jnp.sum(loss * weights), "correct": jnp.sum(correct * weights),
          "count": jnp.sum(weights)}


def train_step(state, metrics, batch, base_key, *, image_size: int, label_smoothing: float):
  """One optimizer step; returns the new state and ``metrics`` plus this batch's sums."""
  x = preprocess(batch["inputs"], image_size)
  key = jax.random.fold_in(base_key, state.step)

  def loss_fn(params):
    v = state_lib.variables(state.replace(params=params))
    mutable = ["batch_stats"] if state.batch_stats is not None else []
    logits, updates = state.apply_fn(v, x, train=True, mutable=mutable, rngs={"dropout": key})
    logits = logits.astype(jnp.float32)
    targets = optax.smooth_labels(jax.nn.one_hot(batch["label"], logits.shape[-1]),
                                  label_smoothing)
    loss = optax.softmax_cross_entropy(logits, targets)
    return jnp.mean(loss), (logits, loss, updates)

  grads, (logits, loss, updates) = jax.grad(loss_fn, has_aux=True)(state.params)
  finite = jnp.isfinite(jnp.mean(loss)) & jnp.isfinite(optax.global_norm(grads))
  step = state.step + 1
  state = state.apply_gradients(grads=grads, batch_stats=updates.get("batch_stats"))
  sums = _sums(logits, batch["label"], jnp.where(finite, loss, 0.0),
               jnp.full_like(loss, finite.astype(jnp.float32)))
  out = {k: metrics[k] + sums[k] for k in METRICS}
  run = getattr(state.opt_state, "notfinite_count", jnp.zeros((), jnp.int32))
  return state, {**out, "nonfinite": metrics["nonfinite"] + (~finite).astype(jnp.int32),
                 "first_nonfinite": jnp.where(finite, metrics["first_nonfinite"],
                                              jnp.minimum(metrics["first_nonfinite"], step)),
                 "skip_run": jnp.maximum(metrics["skip_run"], run.astype(jnp.int32))}


def eval_step(state, metrics, batch, *, image_size: int):
  """Adds the masked sums of loss / correct / count of one padded eval batch to ``metrics``."""
  logits = state.apply_fn(state_lib.variables(state), preprocess(batch["inputs"], image_size),
                          train=False).astype(jnp.float32)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
  sums = _sums(logits, batch["label"], loss, batch["mask"].astype(jnp.float32))
  return jax.tree.map(jnp.add, metrics, sums)


def summarize(metrics) -> dict:
  """Host dict ``{loss, accuracy, num_examples}`` (+ the guard's fields for train metrics)
  from summed metrics (one device fetch); the loss is NaN if no step was finite."""
  m = jax.device_get(metrics)
  n = float(m["count"])
  out = {"loss": float(m["loss_sum"]) / n if n else float("nan"),
         "accuracy": float(m["correct"]) / max(n, 1), "num_examples": int(n)}
  return {**out, **{k: int(m[k]) for k in ("nonfinite", "first_nonfinite", "skip_run") if k in m}}
