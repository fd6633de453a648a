"""Gradient accumulation (cnnlab.train.accum): one SGD step over k micro-batches equals one SGD
step on the whole batch, computed here with plain ``jax.grad`` of the model's mean cross entropy
(LeNet-5: no BatchNorm, whose micro-batch statistics would differ from the batch's; no dropout),
for the scan impl with and without jit and for ``optax.MultiSteps``; and the loop trains with
both."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cnnlab import models, train
from cnnlab.train import accum, state as state_lib, steps
from train.test_loop import saved_state

SHAPE, B, K, LR = (32, 32, 1), 8, 4, 0.1


def _setup():
  model = models.create("lenet5", num_classes=10)
  rng = np.random.default_rng(0)
  batch = {"inputs": rng.normal(size=(B, *SHAPE)).astype(np.float32),
           "label": rng.integers(0, 10, B).astype(np.int32)}
  return model, batch


def _reference(model, params, batch):
  """Params after one SGD step on the whole batch (numpy update of jax.grad's gradient)."""
  def loss(p):
    logits = model.apply({"params": p}, batch["inputs"], train=True)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]))
  g = jax.grad(loss)(params)
  return jax.tree.map(lambda p, g: np.asarray(p) - LR * np.asarray(g), params, g)


def _close(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(np.asarray(x), y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("k", [1, K])
def test_scan_over_micro_batches_equals_one_large_batch(jit, k):
  model, batch = _setup()
  state = state_lib.create(model, optax.sgd(LR), SHAPE, 0)
  expected = _reference(model, state.params, batch)
  step = functools.partial(steps.train_step, image_size=0, label_smoothing=0.0, accum_steps=k)
  step = jax.jit(step) if jit else step
  new, m = step(state, steps.zero_train_metrics(), batch, jax.random.key(0))
  _close(new.params, expected)
  assert int(new.step) == 1 and float(m["count"]) == B  # every example counted once


def test_multisteps_over_micro_batches_equals_one_large_batch():
  model, batch = _setup()
  config = train.base()
  config.update(grad_accum_steps=K, grad_accum_impl="multisteps")
  state = state_lib.create(model, accum.wrap_optimizer(config, optax.sgd(LR)), SHAPE, 0)
  expected = _reference(model, state.params, batch)
  step = jax.jit(functools.partial(steps.train_step, image_size=0, label_smoothing=0.0))
  micro = accum.host_micro_batches(config, batch)
  assert [len(b["label"]) for b in micro] == [B // K] * K
  m = steps.zero_train_metrics()
  first = state.params
  for i, b in enumerate(micro):
    state, m = step(state, m, b, jax.random.key(0))
    if i < K - 1:  # nothing applied before the k-th micro-batch
      _close(state.params, jax.tree.map(np.asarray, first))
  _close(state.params, expected)
  assert float(m["count"]) == B


def test_micro_batches_take_every_kth_row():
  x = np.arange(12)
  np.testing.assert_array_equal(accum.device_micro_batches(jnp.asarray(x), 3),
                                [x[0::3], x[1::3], x[2::3]])


@pytest.mark.slow  # three 2-step training runs: ~60 s on 2 shared cores
def test_the_loop_trains_with_accumulation(tmp_path):
  """2 steps of batch 16 in micro-batches of 4: the same parameters for both impls as without
  accumulation (SGD, LeNet-5)."""
  def run(workdir, **fields):
    c = train.base()
    c.update(num_train_steps=2, batch_size=16, eval_batch_size=64, log_every_steps=1,
             progress_bar=False, **fields)
    c.optimizer.update(name="sgd", learning_rate=0.05, schedule="constant")
    c.data.update(name="digits", eval_split="test[:64]", image_size=32)
    train.train_and_evaluate(c, str(workdir))
    return saved_state(workdir, 2)["params"]
  plain = jax.tree.map(np.asarray, run(tmp_path / "plain"))
  for impl in accum.IMPLS:
    got = run(tmp_path / impl, grad_accum_steps=4, grad_accum_impl=impl)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(plain), strict=True):
      np.testing.assert_allclose(np.asarray(x), y, rtol=1e-5, atol=1e-6)
