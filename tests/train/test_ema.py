"""EMA of the parameters (``config.ema_decay``, cnnlab.train.state): equal to the average computed
in numpy from the parameters after each step; evaluation uses it; it is checkpointed with the
train state, so a stopped and resumed run ends with the same EMA, and ``evaluate`` and
``workdir.load`` (export) read it."""

import functools
import shutil

import jax
import numpy as np
import optax
import pytest

from cnnlab import models, train
from cnnlab.train import state as state_lib, steps, workdir as workdir_lib
from train.test_loop import saved_state

SHAPE, DECAY = (32, 32, 1), 0.8


def test_ema_equals_a_numpy_reference():
  model = models.create("lenet5", num_classes=10)
  state = state_lib.create(model, optax.adam(1e-2), SHAPE, 0, ema=True)
  step = jax.jit(functools.partial(steps.train_step, image_size=0, label_smoothing=0.0,
                                   ema_decay=DECAY))
  rng = np.random.default_rng(0)
  ema = jax.tree.map(np.array, state.params)
  m = steps.zero_train_metrics()
  for _ in range(4):
    batch = {"inputs": rng.normal(size=(8, *SHAPE)).astype(np.float32),
             "label": rng.integers(0, 10, 8).astype(np.int32)}
    state, m = step(state, m, batch, jax.random.key(0))
    ema = jax.tree.map(lambda e, p: DECAY * e + (1 - DECAY) * np.asarray(p), ema, state.params)
  for got, want, p in zip(jax.tree.leaves(state.ema_params), jax.tree.leaves(ema),
                          jax.tree.leaves(state.params), strict=True):
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-7)
    assert not np.allclose(np.asarray(p), want)  # the EMA lags the parameters

  # Evaluation uses the EMA: its loss is that of the EMA parameters (numpy cross entropy).
  x = rng.normal(size=(8, *SHAPE)).astype(np.float32)
  y = rng.integers(0, 10, 8)
  got = steps.eval_step(state, steps.zero_metrics(), {"inputs": x, "label": y,
                                                      "mask": np.ones(8, bool)}, image_size=0)
  logits = np.asarray(model.apply({"params": ema}, x), np.float64)
  logp = logits - logits.max(1, keepdims=True)
  logp -= np.log(np.exp(logp).sum(1, keepdims=True))
  np.testing.assert_allclose(float(got["loss_sum"]), -logp[np.arange(8), y].sum(), rtol=1e-5)


@pytest.mark.slow  # two short training runs: ~30 s on 2 shared cores
def test_ema_is_checkpointed_resumed_and_evaluated(digits_config, tmp_path):
  digits_config.update(num_train_steps=4, checkpoint_every_steps=2, keep_checkpoints=5,
                       ema_decay=0.5)
  full, resumed = tmp_path / "full", tmp_path / "resumed"
  result = train.train_and_evaluate(digits_config, str(full))
  shutil.copytree(full, resumed)
  shutil.rmtree(workdir_lib.checkpoints_dir(resumed) / "4")  # stopped after step 2
  train.train_and_evaluate(digits_config, str(resumed))
  a, b = saved_state(full, 4), saved_state(resumed, 4)
  assert a["ema_params"] is not None
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert train.evaluate(digits_config, str(full))["loss"] == result["loss"]
  _, _, variables = workdir_lib.load(full)
  for x, y in zip(jax.tree.leaves(variables["params"]), jax.tree.leaves(a["ema_params"])):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
