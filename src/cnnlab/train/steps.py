"""Jittable train and eval steps. Batches: ``inputs`` ``(B, ...)``, ``label`` ``(B,)`` and, in
eval, ``mask`` ``(B,)``. Metrics are device-side sums, fetched only when logged."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from cnnlab.train import state as state_lib

METRICS = ("loss_sum", "correct", "count")


def zero_metrics():
  return {k: jnp.zeros((), jnp.float32) for k in METRICS}


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
  state = state.apply_gradients(grads=grads, batch_stats=updates.get("batch_stats"))
  sums = _sums(logits, batch["label"], loss, jnp.ones_like(loss))
  return state, jax.tree.map(jnp.add, metrics, sums)


def eval_step(state, metrics, batch, *, image_size: int):
  """Adds the masked sums of loss / correct / count of one padded eval batch to ``metrics``."""
  logits = state.apply_fn(state_lib.variables(state), preprocess(batch["inputs"], image_size),
                          train=False).astype(jnp.float32)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
  sums = _sums(logits, batch["label"], loss, batch["mask"].astype(jnp.float32))
  return jax.tree.map(jnp.add, metrics, sums)


def summarize(metrics) -> dict:
  """Host dict ``{loss, accuracy, num_examples}`` from summed metrics (one device fetch)."""
  m = jax.device_get(metrics)
  n = float(m["count"])
  return {"loss": float(m["loss_sum"]) / max(n, 1), "accuracy": float(m["correct"]) / max(n, 1),
          "num_examples": int(n)}
