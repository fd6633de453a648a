"""cnnlab.train.freeze through the real train step: frozen parameters and their BatchNorm
statistics stay bit-identical while the rest moves, multiplier 0 is frozen, multipliers scale
SGD's step (reference: the step without groups), and the fields are validated in one line."""

import functools

import jax
import numpy as np
import pytest
from flax import traverse_util

from cnnlab import models, train
from cnnlab.train import optim, state as state_lib, steps, validate
from cnnlab.train import freeze

SHAPE, STEPS = (8, 8, 1), 3


def _config(opt="adam", lr=1e-2, weight_decay=0.0, **transfer):
  c = train.base()
  c.model.name, c.model.width = "small_cnn", 4
  c.optimizer.update(name=opt, learning_rate=lr, weight_decay=weight_decay, schedule="constant")
  c.transfer.update(**transfer)
  return c


def _train(config, num_steps=STEPS):
  """``(initial, final)`` flat ``{(collection, *path): np.ndarray}`` after ``num_steps`` steps on
  fixed random batches."""
  model = models.create("small_cnn", width=4, num_classes=10)
  tx = freeze.optimizer(config, optim.make_schedule(config.optimizer, 10, 10))
  state = state_lib.create(model, tx, SHAPE, 0)
  step = jax.jit(functools.partial(steps.train_step, image_size=0, label_smoothing=0.0,
                                   frozen=freeze.from_config(config)))
  rng = np.random.default_rng(0)
  flat = lambda s: {k: np.asarray(v) for k, v in traverse_util.flatten_dict(  # noqa: E731
      state_lib.variables(s)).items()}
  first, m = flat(state), steps.zero_train_metrics()
  for _ in range(num_steps):
    batch = {"inputs": rng.normal(size=(16, *SHAPE)).astype(np.float32),
             "label": rng.integers(0, 10, 16).astype(np.int32)}
    state, m = step(state, m, batch, jax.random.key(1))
  return first, flat(state)


def _same(a, b):
  return a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("transfer,frozen_modules", [
    (dict(frozen="conv0|norm0"), {"conv0", "norm0"}),
    (dict(trainable="head|*2"), {"conv0", "norm0", "conv1", "norm1"}),
])
def test_frozen_params_and_batch_stats_are_bit_identical(transfer, frozen_modules):
  # Weight decay too: set_to_zero must also stop the decay a frozen parameter would get.
  first, last = _train(_config(weight_decay=0.1, **transfer))
  assert {k[1] for k in first} == {"conv0", "norm0", "conv1", "norm1", "conv2", "norm2", "head"}
  for k in first:
    if k[1] in frozen_modules:
      assert _same(first[k], last[k]), f"{'/'.join(k)} changed although frozen"
    else:
      assert not np.array_equal(first[k], last[k]), f"{'/'.join(k)} did not move"
  assert any(k[0] == "batch_stats" and k[1] in frozen_modules for k in first)


def test_multiplier_zero_is_frozen():
  _, zero = _train(_config(lr_multipliers="conv0|norm0=0,head=0.5"))
  _, frozen = _train(_config(frozen="conv0|norm0", lr_multipliers="head=0.5"))
  assert zero.keys() == frozen.keys()
  for k in zero:
    assert _same(zero[k], frozen[k]), "/".join(k)


def test_multipliers_scale_the_sgd_step():
  first, base = _train(_config("sgd", lr=0.1), num_steps=1)
  _, scaled = _train(_config("sgd", lr=0.1, lr_multipliers="conv1=0.5,head|norm2=2"), num_steps=1)
  for k in first:
    if k[0] != "params":
      np.testing.assert_array_equal(scaled[k], base[k])
      continue
    m = {"conv1": 0.5, "head": 2.0, "norm2": 2.0}.get(k[1], 1.0)
    # to float32 rounding of the parameters (|p| < 1: 1e-7)
    np.testing.assert_allclose(scaled[k] - first[k], m * (base[k] - first[k]), rtol=1e-5,
                               atol=1e-7, err_msg="/".join(k))
    assert np.abs(base[k] - first[k]).max() > 0


def test_trivial_transfer_is_the_plain_optimizer():
  assert freeze.from_config(_config()) is None
  assert freeze.from_config(_config(lr_multipliers="head=1")) is None


def test_pattern_that_matches_nothing_is_one_line():
  params = jax.eval_shape(lambda: models.create("small_cnn", width=4).init(
      jax.random.key(0), np.zeros((1, *SHAPE), np.float32)))["params"]
  with pytest.raises(train.ConfigError, match=r"^config\.transfer\.frozen='stage1' is invalid: "
                     r"'stage1' matches no parameter .* top-level modules are \['conv0', "):
    freeze.check(_config(frozen="stage1"), params)
  freeze.check(_config(frozen="conv*", lr_multipliers="head=2"), params)  # all match: fine


@pytest.mark.parametrize("field,value,message", [
    ("transfer.frozen", "conv0||head", r"config\.transfer\.frozen='conv0\|\|head' is invalid: "
     r".*none empty"),
    ("transfer.lr_multipliers", "head=-1", r"config\.transfer\.lr_multipliers='head=-1' is "
     r"invalid: 'head=-1' is not PATTERN=MULTIPLIER"),
    ("transfer.lr_multipliers", "head", r"is not PATTERN=MULTIPLIER"),
    ("transfer.frozn", "conv0", r"config\.transfer\.frozn='conv0' is invalid: unknown field "
     r"\(allowed: cut_after, frozen, lr_multipliers, trainable\)"),
    ("init_from.step", "last", r"config\.init_from\.step='last' is invalid: must be 'latest'"),
    ("init_from.skip", "head", r"config\.init_from\.skip='head' is invalid: is set but "
     r"config\.init_from\.workdir is ''"),
])
def test_bad_fields_are_one_line_errors(field, value, message):
  config = _config()
  group, name = field.split(".")
  config[group][name] = value
  with pytest.raises(train.ConfigError, match=message) as err:
    validate.check_static(config, 1)
  assert "\n" not in str(err.value)


@pytest.mark.parametrize("name,options,shape,frozen,moved", [
    ("small_cnn", dict(width=4), SHAPE, "conv0|norm0", "norm1"),  # BN mode as a call argument
    ("resnet20", dict(depth=8), (8, 8, 3), "conv1|bn1|layer1_0", "layer2_0"),  # BN constructed
])
def test_frozen_batch_norm_runs_in_inference_mode(name, options, shape, frozen, moved):
  """Everything frozen: the train-mode forward equals the eval-mode one (Flax's own
  ``use_running_average``); part frozen: only the other BatchNorms update their statistics."""
  model = models.create(name, num_classes=10, **options)
  x = np.random.default_rng(0).normal(size=(4, *shape)).astype(np.float32)
  v = jax.jit(lambda: model.init(jax.random.key(0), np.zeros((1, *shape), np.float32)))()
  v["batch_stats"] = jax.tree.map(lambda a: a + 0.3, v["batch_stats"])  # not the init values

  def train_apply(groups):
    with groups.batch_norm_inference():
      return model.apply(v, x, train=True, mutable=["batch_stats"])

  out, _ = jax.jit(lambda: train_apply(freeze.Frozen(frozen=("*",))))()
  np.testing.assert_allclose(out, jax.jit(lambda: model.apply(v, x, train=False))(), rtol=1e-5,
                             atol=1e-6)
  _, upd = jax.jit(lambda: train_apply(freeze.Frozen(frozen=tuple(frozen.split("|")))))()
  old = traverse_util.flatten_dict(v["batch_stats"])
  new = traverse_util.flatten_dict(upd["batch_stats"])
  for k in old:
    if k[0] in frozen.split("|"):
      assert _same(np.asarray(old[k]), np.asarray(new[k])), "/".join(k)
    elif k[0] == moved:
      assert not np.array_equal(old[k], new[k]), "/".join(k)
