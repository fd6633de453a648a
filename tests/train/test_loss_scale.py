"""Dynamic loss scaling (``config.loss_scale='dynamic'``, cnnlab.train.state / steps): a scaled
step equals the unscaled one (a power-of-two scale is exact in float32), with and without scanned
accumulation; an overflowing float16 gradient changes nothing but halving the scale and is not a
non-finite step; a float16 run trains, counts its overflows and checkpoints the scale."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cnnlab import models, train
from cnnlab.train import state as state_lib, steps
from train.test_loop import saved_state

SHAPE = (32, 32, 1)


def _batch(seed=0, n=16):
  rng = np.random.default_rng(seed)
  return {"inputs": rng.normal(size=(n, *SHAPE)).astype(np.float32),
          "label": rng.integers(0, 10, n).astype(np.int32)}


def _step(jit, **kw):
  f = functools.partial(steps.train_step, image_size=0, label_smoothing=0.0, **kw)
  return jax.jit(f) if jit else f


@pytest.mark.parametrize("accum_steps,jit", [  # eager with accumulation: 9 s more
    (1, True), (1, False), (2, True), pytest.param(2, False, marks=pytest.mark.slow)])
def test_scaled_step_equals_unscaled(jit, accum_steps):
  model = models.create("lenet5", num_classes=10)
  plain = state_lib.create(model, optax.adam(1e-2), SHAPE, 0)
  scaled = state_lib.create(model, optax.adam(1e-2), SHAPE, 0, loss_scale=2.0 ** 10,
                            loss_scale_period=2)
  step = _step(jit, accum_steps=accum_steps)
  m_plain, m_scaled = steps.zero_train_metrics(), steps.zero_train_metrics()
  for i in range(3):
    plain, m_plain = step(plain, m_plain, _batch(i), jax.random.key(0))
    scaled, m_scaled = step(scaled, m_scaled, _batch(i), jax.random.key(0))
  for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(scaled.params), strict=True):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)
  # Two finite micro-batch gradients in a row (period 2) double the scale once: 2**10 -> 2**11.
  grown = 1 if accum_steps == 1 else 2
  assert float(scaled.dynamic_scale.scale) == 2.0 ** (10 + grown)
  assert int(m_scaled["overflow"]) == int(m_scaled["nonfinite"]) == 0


@pytest.mark.parametrize("jit", [True, False])
def test_float16_overflow_changes_nothing_but_the_scale(jit):
  model = models.create("lenet5", num_classes=10, dtype=jnp.float16)
  # 2**24 * dloss/dlogit (~1/16 per example) is far above float16's largest finite 65504.
  state = state_lib.create(model, optax.adam(1e-2), SHAPE, 0, loss_scale=2.0 ** 24)
  new, m = _step(jit)(state, steps.zero_train_metrics(), _batch(), jax.random.key(0))
  for a, b in zip(jax.tree.leaves((state.params, state.opt_state)),
                  jax.tree.leaves((new.params, new.opt_state)), strict=True):
    np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
  assert float(new.dynamic_scale.scale) == 2.0 ** 23
  assert int(new.step) == 1
  assert int(m["overflow"]) == 1 and int(m["nonfinite"]) == 0
  assert np.all(np.isfinite(jax.tree.leaves(new.params)[0]))


def test_float16_run_with_dynamic_scale(digits_config, tmp_path):
  digits_config.update(half_precision=True, half_precision_dtype="float16", loss_scale="dynamic",
                       loss_scale_init=2.0 ** 24, num_train_steps=10, log_every_steps=10,
                       checkpoint_every_steps=10)
  result = train.train_and_evaluate(digits_config, str(tmp_path))
  assert np.isfinite(result["loss"])
  saved = saved_state(tmp_path, 10)
  assert {np.asarray(p).dtype for p in jax.tree.leaves(saved["params"])} == {np.dtype("float32")}
  scale = float(saved["dynamic_scale"]["scale"])
  # Each overflow halved the scale (no growth within the default period of 2000 steps): the
  # first steps overflowed (as in the test above), and fewer than all ten (the rest were applied;
  # with config.nonfinite_policy='stop' none was non-finite, or the run would have failed).
  halvings = int(np.log2(2.0 ** 24 / scale))
  assert 1 <= halvings < 10 and scale == 2.0 ** (24 - halvings)
  assert int(saved["step"]) == 10
