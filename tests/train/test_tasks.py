"""The per-task losses and metrics of ``cnnlab.train.steps`` (``config.task``) against numpy,
the optimizer options of the sequence configs, and the task fields' validation."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from cnnlab import train
from cnnlab.train import config as config_lib, optim, state as state_lib, steps, workdir
from conftest import REPO, load_config_module


def _np_log_softmax(z):
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _np_ce(logits, labels):
  """Cross entropy per position, by indexing the log-softmax."""
  ls = _np_log_softmax(logits.astype(np.float64))
  return -np.take_along_axis(ls, labels[..., None], -1)[..., 0]


def _np_mu_law(x, q=256):
  """ITU-T G.711 mu-law codes, element by element."""
  mu = q - 1
  out = np.empty(x.shape, np.int64)
  for i, v in np.ndenumerate(np.clip(x.astype(np.float64), -1, 1)):
    f = np.sign(v) * np.log(1 + mu * abs(v)) / np.log(1 + mu)
    out[i] = int(np.floor((f + 1) / 2 * mu + 0.5))
  return out


def _state(fn, params):
  """A train state whose model is ``fn(params, x)`` (SGD with learning rate 0)."""
  def apply(v, x, train=False, mutable=None, **kw):
    del train, kw
    out = fn(v["params"], x)
    return out if mutable is None else (out, {})
  return state_lib.TrainState.create(apply_fn=apply, params=params, tx=optax.sgd(0.0))


def _eval(task, state, inputs, labels, mask):
  m = steps.eval_step(state, steps.zero_metrics(task), {
      "inputs": jnp.asarray(inputs), "label": jnp.asarray(labels), "mask": jnp.asarray(mask)},
                      image_size=0, task=task)
  return steps.summarize(m)


RNG = np.random.default_rng(0)
MASK = np.array([True, True, True, False])  # the last row is padding


def test_classification_unchanged_semantics():
  logits = RNG.standard_normal((4, 5)).astype(np.float32)
  labels = np.array([0, 3, 3, 1])
  out = _eval(steps.CLASSIFICATION, _state(lambda p, x: p["z"], {"z": jnp.asarray(logits)}),
              np.zeros((4, 2), np.float32), labels, MASK)
  ce = _np_ce(logits, labels)[:3]
  assert set(out) == {"loss", "accuracy", "num_examples"} and out["num_examples"] == 3
  np.testing.assert_allclose(out["loss"], ce.mean(), rtol=1e-5)
  assert out["accuracy"] == np.mean(logits[:3].argmax(-1) == labels[:3])


def test_sequence_classification_averages_over_steps():
  logits = RNG.standard_normal((4, 6, 3)).astype(np.float32)
  labels = RNG.integers(0, 3, (4, 6))
  task = steps.Task("sequence_classification")
  out = _eval(task, _state(lambda p, x: p["z"], {"z": jnp.asarray(logits)}),
              np.zeros((4, 6, 1), np.float32), labels, MASK)
  np.testing.assert_allclose(out["loss"], _np_ce(logits, labels)[:3].mean(), rtol=1e-5)
  np.testing.assert_allclose(out["accuracy"], (logits.argmax(-1) == labels)[:3].mean(),
                             rtol=1e-6)


def test_regression_standardises_targets_and_reports_raw_units():
  pred = RNG.standard_normal((4, 3)).astype(np.float32)
  y = (10 + 5 * RNG.standard_normal((4, 3))).astype(np.float32)
  task = steps.Task("regression", target_mean=10.0, target_std=5.0)
  out = _eval(task, _state(lambda p, x: p["z"], {"z": jnp.asarray(pred)}),
              np.zeros((4, 2, 1), np.float32), y, MASK)
  raw = 10 + 5 * pred.astype(np.float64) - y  # the forecast in the targets' units
  assert set(out) == {"loss", "mse", "mae", "num_examples"}
  np.testing.assert_allclose(out["loss"], (raw[:3] ** 2).mean() / 25, rtol=1e-5)
  np.testing.assert_allclose(out["mse"], (raw[:3] ** 2).mean(), rtol=1e-5)
  np.testing.assert_allclose(out["mae"], np.abs(raw[:3]).mean(), rtol=1e-5)
  # (N, 1) outputs against (N,) targets: the adding problem
  state = _state(lambda p, x: p["z"], {"z": jnp.asarray(pred[:, :1])})
  out = _eval(steps.Task("regression"), state, np.zeros((4, 2, 1), np.float32), y[:, 0], MASK)
  np.testing.assert_allclose(out["loss"], ((pred[:3, 0] - y[:3, 0]) ** 2).mean(), rtol=1e-5)


def _np_iou(labels, preds, num_classes):
  """Per-class IoU by brute force over pixels (None: class neither present nor predicted)."""
  out = []
  for c in range(num_classes):
    inter = sum(1 for t, q in zip(labels.ravel(), preds.ravel()) if t == c and q == c)
    union = sum(1 for t, q in zip(labels.ravel(), preds.ravel()) if t == c or q == c)
    out.append(inter / union if union else None)
  return out


def test_segmentation_pixel_accuracy_and_miou_with_absent_classes():
  from sklearn.metrics import jaccard_score  # noqa: PLC0415 - a second, library reference
  k = 6
  logits = RNG.standard_normal((4, 5, 7, k)).astype(np.float32)
  logits[..., 5] -= 100  # class 5 is never predicted ...
  labels = RNG.integers(0, 4, (4, 5, 7))  # ... and classes 4, 5 are never present
  labels[0, 0, 0] = 4  # class 4: present once, in the first (kept) example
  task = steps.Task("segmentation", num_classes=k)
  out = _eval(task, _state(lambda p, x: p["z"], {"z": jnp.asarray(logits)}),
              np.zeros((4, 5, 7, 1), np.float32), labels, MASK)
  kept, preds = labels[:3], logits[:3].argmax(-1)
  iou = _np_iou(kept, preds, k)
  assert iou[5] is None and out["iou"][5] is None
  np.testing.assert_allclose([v for v in out["iou"] if v is not None],
                             [v for v in iou if v is not None], rtol=1e-6)
  present = [c for c in range(k) if iou[c] is not None]
  np.testing.assert_allclose(out["miou"], jaccard_score(kept.ravel(), preds.ravel(),
                                                        labels=present, average="macro"))
  np.testing.assert_allclose(out["pixel_accuracy"], (kept == preds).mean(), rtol=1e-6)
  np.testing.assert_allclose(out["accuracy"], out["pixel_accuracy"], rtol=1e-6)
  np.testing.assert_allclose(out["loss"], _np_ce(logits, labels)[:3].mean(), rtol=1e-5)
  assert out["num_examples"] == 3


def test_denoise_adds_noise_and_regresses_the_clean_input():
  x = RNG.standard_normal((4, 32, 32, 1)).astype(np.float32)
  task = steps.Task("denoise", noise_std=0.5)
  noisy, clean = steps.inputs_and_targets({"inputs": x, "label": np.zeros(4)}, 0, task,
                                          jax.random.key(3))
  np.testing.assert_array_equal(clean, x)
  noise = np.asarray(noisy) - x
  assert 0.47 < noise.std() < 0.53 and abs(noise.mean()) < 0.03
  # The identity model's loss is the noise's mean square; evaluation's noise is fixed.
  out = _eval(task, _state(lambda p, x: x, {}), x, np.zeros(4), MASK)
  again = _eval(task, _state(lambda p, x: x, {}), x, np.zeros(4), MASK)
  assert set(out) == {"loss", "mse", "mae", "num_examples"} and out == again
  assert 0.23 < out["mse"] < 0.27 and out["loss"] == pytest.approx(out["mse"])


def test_next_step_feeds_codes_and_predicts_the_next_one():
  x = np.clip(RNG.standard_normal((4, 9, 1)) * 0.3, -1, 1).astype(np.float32)
  table = RNG.standard_normal((256, 256)).astype(np.float32)
  seen = []

  def model(p, codes):  # logits = a row per input code: they depend on what the model sees
    seen.append(codes)
    return p["table"][codes]

  task = steps.Task("next_step", input_dtype="int32")
  out = _eval(task, _state(model, {"table": jnp.asarray(table)}), x, np.zeros(4, np.int32), MASK)
  codes = _np_mu_law(x[..., 0])
  assert seen[0].shape == (4, 8) and seen[0].dtype == jnp.int32
  ce = _np_ce(table[codes[:, :-1]], codes[:, 1:])
  np.testing.assert_allclose(out["loss"], ce[:3].mean(), rtol=1e-5)


def test_train_step_sums_the_same_loss():
  logits = RNG.standard_normal((4, 6, 3)).astype(np.float32)
  labels = RNG.integers(0, 3, (4, 6))
  task = steps.Task("sequence_classification")
  state = _state(lambda p, x: p["z"] * 1.0, {"z": jnp.asarray(logits)})
  _, m = steps.train_step(state, steps.zero_train_metrics(task),
                          {"inputs": jnp.zeros((4, 6, 1)), "label": jnp.asarray(labels)},
                          jax.random.key(0), image_size=0, label_smoothing=0.0, task=task)
  out = steps.summarize(m)
  np.testing.assert_allclose(out["loss"], _np_ce(logits, labels).mean(), rtol=1e-5)
  assert out["num_examples"] == 4


def test_token_inputs_reach_the_model_as_int32():
  seen = []
  state = _state(lambda p, x: seen.append(x) or p["z"], {"z": jnp.zeros((2, 2))})
  _eval(steps.Task(input_dtype="int32"), state, np.array([[3.0, 0.0], [1.0, 2.0]], np.float32),
        np.array([0, 1]), np.array([True, True]))
  assert seen[0].dtype == jnp.int32 and seen[0].tolist() == [[3, 0], [1, 2]]


def test_best_score_is_minus_loss_without_accuracy():
  assert workdir.score({"loss": 0.5, "accuracy": 0.75}) == 0.75
  assert workdir.score({"loss": 0.5, "mse": 0.5, "mae": 0.1}) == -0.5


def test_adadelta_with_max_norm_bounds_the_output_layer():
  opt = config_lib.base().optimizer
  opt.update(name="adadelta", learning_rate=1.0, rho=0.95, eps=1e-6, max_norm=3.0)
  tx = optim.with_max_norm(opt, optim.make_optimizer(opt, optax.constant_schedule(1.0)))
  params = {"fc": {"kernel": jnp.asarray([[2.0, 0.1], [2.9, 0.2]]), "bias": jnp.zeros(2)},
            "conv": {"kernel": jnp.full((2, 2), 10.0)}}
  grads = jax.tree.map(lambda p: -100.0 * jnp.ones_like(p), params)  # pushes every weight up
  state = tx.init(params)
  updates, _ = tx.update(grads, state, params)
  new = optax.apply_updates(params, updates)
  # Adadelta alone (optax's reference): the first step is lr * sqrt(eps) / sqrt((1-rho) g^2 + eps) g
  step = np.sqrt(1e-6) / np.sqrt(0.05 * 1e4 + 1e-6) * 100.0
  np.testing.assert_allclose(new["conv"]["kernel"], 10.0 + step, rtol=1e-5)
  moved = np.asarray(params["fc"]["kernel"]) + step
  norms = np.linalg.norm(moved, axis=0)
  expect = moved * np.minimum(1.0, 3.0 / norms)  # column 0 (norm > 3) scaled back to 3
  np.testing.assert_allclose(new["fc"]["kernel"], expect, rtol=1e-5)
  assert np.linalg.norm(np.asarray(new["fc"]["kernel"]), axis=0)[0] == pytest.approx(3.0)


def _digits(**changes):
  c = load_config_module(REPO / "configs" / "lenet5_digits.py").get_config("smoke")
  for k, v in changes.items():
    c[k] = v
  return c


def test_bad_task_is_one_line():
  with pytest.raises(train.ConfigError, match=r"config\.task='regresion' is invalid: .*"
                     r"did you mean 'regression'"):
    train.dry_run(_digits(task="regresion"))


def test_task_must_fit_the_data():
  with pytest.raises(train.ConfigError, match=r"config\.task='regression' is invalid: dataset "
                     r"'digits' has 10 classes"):
    train.dry_run(_digits(task="regression"))


def test_max_norm_needs_an_output_layer_fc():
  c = _digits()
  c.optimizer.max_norm = 3.0
  with pytest.raises(train.ConfigError, match=r"config\.optimizer\.max_norm=3\.0 is invalid: "
                     r"model 'lenet5' has no dense output layer 'fc'"):
    train.dry_run(c)


@pytest.mark.parametrize("field,value,match", [
    ("rho", 1.0, r"config\.optimizer\.rho=1\.0 is invalid: must be in \[0, 1\)"),
    ("eps", 0.0, r"config\.optimizer\.eps=0\.0 is invalid: must be > 0"),
    ("max_norm", -1.0, r"config\.optimizer\.max_norm=-1\.0 is invalid: must be >= 0"),
])
def test_bad_optimizer_fields(field, value, match):
  c = _digits()
  c.optimizer[field] = value
  with pytest.raises(train.ConfigError, match=match):
    train.dry_run(c)


def test_generated_task_traces_with_float_targets():
  """The adding problem's (N,) float targets, per-step copy labels: dry_run builds the batch
  from the data's own label shape and kind."""
  for name in ("tcn_adding", "tcn_copy"):
    c = load_config_module(REPO / "configs" / "sequence" / f"{name}.py").get_config("smoke")
    assert train.dry_run(c)["num_params"] > 0


def test_unknown_eval_option_is_one_line(tmp_path):
  c = load_config_module(REPO / "configs" / "sequence" / "tcn_adding.py").get_config("smoke")
  c.data.eval_options = ml_collections.ConfigDict({"seq_length": 10})
  with pytest.raises(train.ConfigError, match=r"config\.data\.eval_options\.seq_length is "
                     r"invalid: not an option of dataset 'adding'"):
    train.train_and_evaluate(c, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_missing_audio_length_is_a_config_error():
  c = load_config_module(REPO / "configs" / "sequence" / "m5_fsdd.py").get_config("smoke")
  if not os.path.isdir(c.data.manual_dir):
    pytest.skip(f"FSDD not found at {c.data.manual_dir} (the shared data folder)")
  c.data.audio_length = 0
  with pytest.raises(train.ConfigError, match=r"^config\.data\.audio_length=0 is invalid: "):
    train.dry_run(c)
