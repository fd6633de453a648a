"""Optimizers, schedules and the loss follow torch's definitions (torch is the reference)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from cnnlab import train
from cnnlab.train import optim

TORCH = {
    "sgd": lambda p, o: torch.optim.SGD(p, lr=o.learning_rate, weight_decay=o.weight_decay),
    "momentum": lambda p, o: torch.optim.SGD(p, lr=o.learning_rate, momentum=o.momentum,
                                             weight_decay=o.weight_decay),
    "nesterov": lambda p, o: torch.optim.SGD(p, lr=o.learning_rate, momentum=o.momentum,
                                             nesterov=True, weight_decay=o.weight_decay),
    "adam": lambda p, o: torch.optim.Adam(p, lr=o.learning_rate, weight_decay=o.weight_decay),
    "adamw": lambda p, o: torch.optim.AdamW(p, lr=o.learning_rate, weight_decay=o.weight_decay),
}


@pytest.mark.parametrize("name", sorted(TORCH))
def test_optimizer_steps_match_torch(name):
  opt = train.base().optimizer
  opt.name, opt.learning_rate, opt.weight_decay, opt.schedule = name, 0.05, 0.01, "constant"
  rng = np.random.default_rng(0)
  w0 = rng.standard_normal((4, 3)).astype(np.float32)
  grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(4)]
  tx = optim.make_optimizer(opt, optim.make_schedule(opt, 10, 10))
  w, s = jnp.asarray(w0), tx.init(jnp.asarray(w0))
  tw = torch.nn.Parameter(torch.from_numpy(w0.copy()))
  topt = TORCH[name]([tw], opt)
  for g in grads:
    u, s = tx.update(jnp.asarray(g), s, w)
    w = optax.apply_updates(w, u)
    tw.grad = torch.from_numpy(g)
    topt.step()
  np.testing.assert_allclose(w, tw.detach().numpy(), rtol=2e-5, atol=1e-6)


def test_warmup_cosine_schedule_formula():
  opt = train.base().optimizer
  opt.learning_rate, opt.warmup_epochs, opt.schedule = 0.1, 2, "cosine"
  sched = optim.make_schedule(opt, total_steps=100, steps_per_epoch=10)  # 20 warmup steps
  assert float(sched(10)) == pytest.approx(0.05)
  for t in (20, 45, 70, 100):
    assert float(sched(t)) == pytest.approx(0.05 * (1 + math.cos(math.pi * (t - 20) / 80)),
                                            abs=1e-7)


def test_step_schedule_decays_at_epochs():
  opt = train.base().optimizer
  opt.learning_rate, opt.schedule, opt.decay_epochs, opt.decay_factor = 0.1, "step", (3, 6), 0.1
  sched = optim.make_schedule(opt, total_steps=100, steps_per_epoch=10)
  got = [float(sched(t)) for t in (0, 29, 30, 59, 60, 99)]
  np.testing.assert_allclose(got, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)


def test_grad_clipping_bounds_the_global_norm():
  opt = train.base().optimizer
  opt.name, opt.learning_rate, opt.grad_clip_norm, opt.schedule = "sgd", 1.0, 0.5, "constant"
  tx = optim.make_optimizer(opt, optim.make_schedule(opt, 1, 1))
  g = {"a": jnp.full((3,), 4.0), "b": jnp.full((4,), 3.0)}
  u, _ = tx.update(g, tx.init(g))
  assert float(optax.global_norm(u)) == pytest.approx(0.5, rel=1e-6)


def test_label_smoothing_loss_matches_torch():
  logits = np.random.default_rng(1).standard_normal((5, 7)).astype(np.float32)
  labels = np.array([0, 3, 6, 2, 2])
  ours = optax.softmax_cross_entropy(
      logits, optax.smooth_labels(jax.nn.one_hot(labels, 7), 0.1)).mean()
  ref = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels),
                                          label_smoothing=0.1)
  assert float(ours) == pytest.approx(float(ref), rel=1e-5)
