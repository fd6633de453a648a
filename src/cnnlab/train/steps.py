"""Jittable train and eval steps. Batches: ``inputs`` ``(B, ...)``, ``label`` ``(B, ...)`` and,
in eval, ``mask`` ``(B,)``. Metrics are device-side sums, fetched only when logged.

The :class:`Task` (``config.task``) picks the loss and metrics; every loss is a per-example mean,
so the padding mask weighs examples:

- ``classification``: logits ``(B, K)``, labels ``(B,)``; cross entropy, accuracy.
- ``sequence_classification``: logits ``(B, T, K)``, labels ``(B, T)``; cross entropy averaged
  over the steps, accuracy per step (copy memory).
- ``regression``: outputs reshaped to the targets' ``(B, ...)``; the loss is the MSE against
  targets standardised as the inputs' channel 0 (``(y - target_mean) / target_std``: the model
  works in normalised units); ``mse`` and ``mae`` are reported in the targets' own units; no
  accuracy (adding problem, forecasting).
- ``next_step``: waveforms ``(B, L, 1)`` in [-1, 1] are mu-law encoded to codes ``(B, L)``; the
  model sees ``codes[:, :-1]`` and predicts ``codes[:, 1:]`` (generative WaveNet); metrics as
  ``sequence_classification``.
- ``segmentation``: logits ``(B, H, W, K)``, labels ``(B, H, W)``; the loss and (pixel) accuracy
  of ``sequence_classification``, plus the summed ``confusion`` matrix ``(K, K)`` (rows: true
  class, columns: predicted) from which :func:`summarize` gives per-class IoU and mIoU.
- ``denoise``: the model sees the (normalised) input plus Gaussian noise of std ``noise_std``
  and regresses the clean input: MSE, ``mse``/``mae`` in normalised units. The noise is drawn
  from the step's key in training and, in evaluation, from a fixed key folded with the number of
  examples already counted (the same noise for every evaluation of a split).
- ``vae``: the model returns ``(logits, mean, logvar)``; the loss is the negative ELBO per example
  (``cnnlab.models.conv_vae.elbo_loss``: Bernoulli reconstruction of the input, whose values must
  lie in [0, 1], + KL), reported as ``loss``, ``recon`` and ``kl`` (nats per example).

Inputs are cast to the model's ``input_dtype`` (its registry spec: int32 for token ids and codes).

Train metrics also carry the non-finite guard: ``nonfinite`` (steps whose loss or gradient norm
was NaN/inf; their loss is left out of the sums), ``first_nonfinite`` (the first such step
number, :data:`NO_STEP` if none) and ``skip_run`` (the longest run of consecutive non-applied
updates under ``optax.apply_if_finite``; 0 without it). With a loss scale (``config.loss_scale``)
an overflowing gradient of a finite loss is not a non-finite step: the step changes nothing but
the scale and is counted in ``overflow``; ``loss_scale`` is the scale after the last step."""

from __future__ import annotations

import contextlib
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cnnlab.models.conv_vae import elbo_loss, kl_divergence
from cnnlab.models.wavenet import mu_law_encode
from cnnlab.train import accum
from cnnlab.train import state as state_lib
from cnnlab.train.config import TASKS  # noqa: F401  (re-exported)

METRICS = ("loss_sum", "correct", "count")
REGRESSION_METRICS = ("loss_sum", "sq_sum", "abs_sum", "count")
VAE_METRICS = ("loss_sum", "recon_sum", "kl_sum", "count")
NO_STEP = jnp.iinfo(jnp.int32).max


@dataclasses.dataclass(frozen=True)
class Task:
  """``name``: one of :data:`TASKS` (module doc); ``input_dtype``: the model's input dtype;
  ``quantization_levels``: the mu-law levels of ``next_step``; ``target_mean``/``target_std``:
  the standardisation of regression targets; ``num_classes``: the confusion matrix's size
  (``segmentation``); ``noise_std``: ``denoise``'s input noise."""
  name: str = "classification"
  input_dtype: str = "float32"
  quantization_levels: int = 256
  target_mean: float = 0.0
  target_std: float = 1.0
  num_classes: int = 0
  noise_std: float = 0.0


CLASSIFICATION = Task()


def metric_keys(task: Task = CLASSIFICATION) -> tuple:
  """The per-example sums of ``task`` (train and eval)."""
  if task.name in ("regression", "denoise"):
    return REGRESSION_METRICS
  return VAE_METRICS if task.name == "vae" else METRICS


def _zero_sums(task: Task):
  return {k: jnp.zeros((), jnp.float32) for k in metric_keys(task)}


def zero_metrics(task: Task = CLASSIFICATION):
  """Eval metrics: the sums, + the ``(K, K)`` ``confusion`` matrix for ``segmentation``."""
  k = task.num_classes
  extra = {"confusion": jnp.zeros((k, k), jnp.float32)} if task.name == "segmentation" else {}
  return {**_zero_sums(task), **extra}


def zero_train_metrics(task: Task = CLASSIFICATION):
  """Train metrics: the sums + the non-finite guard's and the loss scale's fields."""
  return {**_zero_sums(task), "nonfinite": jnp.zeros((), jnp.int32),
          "first_nonfinite": jnp.full((), NO_STEP, jnp.int32),
          "skip_run": jnp.zeros((), jnp.int32), "overflow": jnp.zeros((), jnp.int32),
          "loss_scale": jnp.zeros((), jnp.float32)}


def preprocess(x, image_size: int):
  """Resizes 2D image batches ``(B, H, W, C)`` to ``image_size`` squared (0 = as is)."""
  if image_size and x.ndim == 4 and x.shape[1:3] != (image_size, image_size):
    x = jax.image.resize(x, (x.shape[0], image_size, image_size, x.shape[3]), "bilinear")
  return x


def inputs_and_targets(batch, image_size: int, task: Task = CLASSIFICATION, key=None):
  """The model's inputs and the targets of a batch (module doc); ``key``: ``denoise``'s noise
  (a fixed key if None)."""
  x = preprocess(batch["inputs"], image_size)
  if task.name == "next_step":
    codes = mu_law_encode(x.reshape(x.shape[0], -1), task.quantization_levels)
    return codes[:, :-1], codes[:, 1:]
  if task.name in ("denoise", "vae"):
    x = x.astype(jnp.float32)
    if task.name == "vae":
      return x, x
    key = jax.random.key(0) if key is None else key
    return x + task.noise_std * jax.random.normal(key, x.shape, x.dtype), x
  if x.dtype != jnp.dtype(task.input_dtype):
    x = x.astype(task.input_dtype)
  return x, batch["label"]


def _example_mean(x):
  """``(B, ...)`` -> ``(B,)``: the mean over every axis but the first."""
  return jnp.mean(x, axis=tuple(range(1, x.ndim))) if x.ndim > 1 else x


def _losses(task: Task, logits, labels, label_smoothing: float = 0.0, integer_labels=False):
  """Per-example loss ``(B,)`` and the per-example quantities the metrics also sum: ``correct``
  (the fraction of correct steps) or, for regression, ``sq_sum`` / ``abs_sum`` (squared and
  absolute error in the targets' units)."""
  if task.name == "vae":
    recon_logits, mean, logvar = logits
    loss, kl = elbo_loss(recon_logits, labels, mean, logvar), kl_divergence(mean, logvar)
    return loss, {"recon_sum": loss - kl, "kl_sum": kl}
  if task.name in ("regression", "denoise"):
    err = logits.reshape(labels.shape) - (labels - task.target_mean) / task.target_std
    loss = _example_mean(jnp.square(err))
    return loss, {"sq_sum": loss * task.target_std ** 2,
                  "abs_sum": _example_mean(jnp.abs(err)) * task.target_std}
  if integer_labels:
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  else:
    targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
    loss = optax.softmax_cross_entropy(logits, targets)
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  return _example_mean(loss), {"correct": _example_mean(correct)}


def _sums(per_example: dict, loss, weights):
  return {"loss_sum": jnp.sum(loss * weights),
          **{k: jnp.sum(v * weights) for k, v in per_example.items()},
          "count": jnp.sum(weights)}


def confusion(logits, labels, weights, num_classes: int):
  """``(K, K)`` counts of (true class, predicted class) over every position of ``labels``
  ``(B, ...)``, each weighted by its example's weight ``(B,)``."""
  w = jnp.broadcast_to(weights.reshape(-1, *[1] * (labels.ndim - 1)), labels.shape)
  true = jax.nn.one_hot(labels.reshape(-1), num_classes) * w.reshape(-1, 1)
  pred = jax.nn.one_hot(jnp.argmax(logits, -1).reshape(-1), num_classes)
  return true.T @ pred


def train_step(state, metrics, batch, base_key, *, image_size: int, label_smoothing: float,
               frozen=None, task: Task = CLASSIFICATION, accum_steps: int = 1,
               ema_decay: float = 0.0):
  """One optimizer step; returns the new state and ``metrics`` plus this batch's sums.
  ``frozen`` (a ``cnnlab.train.freeze.Frozen``): its parameters get no gradient and its
  BatchNorms run in inference mode. ``accum_steps`` = k > 1: the gradient is the mean over k
  micro-batches, scanned (``cnnlab.train.accum``; BatchNorm statistics are those of each
  micro-batch, updated k times). ``ema_decay``: the EMA's decay if the state keeps one
  (``cnnlab.train.state.update_ema``)."""
  key = jax.random.fold_in(base_key, state.step)
  x, labels = inputs_and_targets(batch, image_size, task, jax.random.fold_in(key, 2))

  def loss_fn(params, batch_stats, x, labels, key):
    if frozen is not None:
      params = frozen.stop_gradient(params)
    v = state_lib.variables(state.replace(params=params, batch_stats=batch_stats))
    mutable = ["batch_stats"] if batch_stats is not None else []
    with frozen.batch_norm_inference() if frozen is not None else contextlib.nullcontext():
      logits, updates = state.apply_fn(v, x, train=True, mutable=mutable,
                                       rngs={"dropout": key, "latent": jax.random.fold_in(key, 1)})
    logits = jax.tree.map(lambda a: a.astype(jnp.float32), logits)
    loss, per_example = _losses(task, logits, labels, label_smoothing)
    return jnp.mean(loss), (per_example, loss, updates.get("batch_stats", batch_stats))

  def grad_fn(scale, *args):
    """``(scale, gradient finite, gradient, aux)``; with a loss scale (``DynamicScale``), of the
    scaled loss, unscaled, and the scale adjusted."""
    if scale is None:
      g, aux = jax.grad(loss_fn, has_aux=True)(*args)
      return None, jnp.isfinite(optax.global_norm(g)), g, aux
    scale, finite, (_, aux), g = scale.value_and_grad(loss_fn, has_aux=True)(*args)
    return scale, finite, g, aux

  if accum_steps == 1:
    scale, grads_finite, grads, (per_example, loss, batch_stats) = grad_fn(
        state.dynamic_scale, state.params, state.batch_stats, x, labels, key)
  else:
    def micro(carry, xs):
      grad_sum, batch_stats, scale, grads_finite = carry
      i, x_i, labels_i = xs
      scale, fin, g, (per_example, loss, batch_stats) = grad_fn(
          scale, state.params, batch_stats, x_i, labels_i, jax.random.fold_in(key, i))
      return (jax.tree.map(jnp.add, grad_sum, g), batch_stats, scale, grads_finite & fin), (
          per_example, loss)

    x_k, labels_k = accum.device_micro_batches((x, labels), accum_steps)
    (grad_sum, batch_stats, scale, grads_finite), (per_example, loss) = jax.lax.scan(
        micro, (jax.tree.map(jnp.zeros_like, state.params), state.batch_stats,
                state.dynamic_scale, jnp.array(True)),
        (jnp.arange(accum_steps), x_k, labels_k))
    grads = jax.tree.map(lambda g: g / accum_steps, grad_sum)
    per_example, loss = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), (per_example, loss))
  loss_finite = jnp.isfinite(jnp.mean(loss))
  finite = loss_finite & grads_finite
  # A loss-scaled step whose loss is finite but whose gradient overflowed is an overflow, not a
  # non-finite step: it changes nothing but the (halved) scale.
  overflow = (state.dynamic_scale is not None) & loss_finite & ~grads_finite
  step = state.step + 1
  if state.dynamic_scale is not None:
    grads = jax.tree.map(lambda g: jnp.where(overflow, 0.0, g), grads)
  new = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  if state.dynamic_scale is not None:
    new = jax.tree.map(lambda n, o: jnp.where(overflow, o, n),
                       new.replace(dynamic_scale=None), state.replace(step=step,
                                                                      dynamic_scale=None))
    new = new.replace(dynamic_scale=scale)
  state = state_lib.update_ema(new, ema_decay, accum.applied(new.opt_state) & ~overflow)
  sums = _sums(per_example, jnp.where(finite, loss, 0.0),
               jnp.full_like(loss, finite.astype(jnp.float32)))
  out = {k: metrics[k] + sums[k] for k in metric_keys(task)}
  run = getattr(accum.inner_state(state.opt_state), "notfinite_count",
                jnp.zeros((), jnp.int32))
  nonfinite = ~finite & ~overflow
  return state, {**out, "nonfinite": metrics["nonfinite"] + nonfinite.astype(jnp.int32),
                 "first_nonfinite": jnp.where(nonfinite, jnp.minimum(metrics["first_nonfinite"],
                                                                     step),
                                              metrics["first_nonfinite"]),
                 "skip_run": jnp.maximum(metrics["skip_run"], run.astype(jnp.int32)),
                 "overflow": metrics["overflow"] + overflow.astype(jnp.int32),
                 "loss_scale": (scale.scale if scale is not None
                                else jnp.zeros((), jnp.float32))}


def eval_step(state, metrics, batch, *, image_size: int, task: Task = CLASSIFICATION):
  """Adds the masked sums of loss / correct (abs error) / count (and ``confusion``) of one padded
  eval batch to ``metrics``; the state's EMA params if it keeps them."""
  key = jax.random.fold_in(jax.random.key(0), metrics["count"].astype(jnp.int32))
  x, labels = inputs_and_targets(batch, image_size, task, key)
  logits = state.apply_fn(state_lib.variables(state, ema=True), x, train=False)
  logits = jax.tree.map(lambda a: a.astype(jnp.float32), logits)
  loss, per_example = _losses(task, logits, labels, integer_labels=True)
  weights = batch["mask"].astype(jnp.float32)
  sums = _sums(per_example, loss, weights)
  if task.name == "segmentation":
    sums["confusion"] = confusion(logits, labels, weights, task.num_classes)
  return jax.tree.map(jnp.add, metrics, sums)


def summarize(metrics) -> dict:
  """Host dict ``{loss, accuracy, num_examples}`` (regression, denoise: ``{loss, mse, mae,
  num_examples}``; vae: ``{loss, recon, kl, num_examples}``; segmentation: + ``pixel_accuracy``,
  ``miou`` and per-class ``iou``; + the guard's fields for train metrics) from summed metrics (one
  device fetch); the loss is NaN if no step was finite."""
  m = jax.device_get(metrics)
  n = float(m["count"])
  nan = float("nan")
  loss = float(m["loss_sum"]) / n if n else nan
  if "abs_sum" in m:
    out = {"loss": loss, "mse": float(m["sq_sum"]) / n if n else nan,
           "mae": float(m["abs_sum"]) / n if n else nan, "num_examples": int(n)}
  elif "kl_sum" in m:
    out = {"loss": loss, "recon": float(m["recon_sum"]) / n if n else nan,
           "kl": float(m["kl_sum"]) / n if n else nan, "num_examples": int(n)}
  else:
    out = {"loss": loss, "accuracy": float(m["correct"]) / max(n, 1), "num_examples": int(n)}
  if "confusion" in m:
    out.update(iou_summary(m["confusion"]))
  out.update({k: int(m[k]) for k in ("nonfinite", "first_nonfinite", "skip_run") if k in m})
  if m.get("loss_scale", 0):  # loss-scaled training: the steps skipped and the current scale
    out.update(overflow=int(m["overflow"]), loss_scale=float(m["loss_scale"]))
  return out


def iou_summary(confusion_KxK) -> dict:
  """``pixel_accuracy``, per-class ``iou`` = TP / (TP + FP + FN) (None for a class neither
  present nor predicted) and ``miou``, their mean over the other classes, from a confusion
  matrix (rows true, columns predicted)."""
  c = np.asarray(confusion_KxK, np.float64)
  tp = np.diag(c)
  union = c.sum(0) + c.sum(1) - tp
  iou = [float(t / u) if u else None for t, u in zip(tp, union)]
  present = [v for v in iou if v is not None]
  return {"pixel_accuracy": float(tp.sum() / c.sum()) if c.sum() else float("nan"),
          "miou": float(np.mean(present)) if present else float("nan"), "iou": iou}
