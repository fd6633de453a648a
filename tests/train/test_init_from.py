"""config.init_from: partial restore loads exactly the variables not told to skip (compared with
the source's arrays read back by workdir.load / Orbax), mismatches are one-line errors, digests
are checked, and a run initialised from another workdir starts at that run's eval (compared with
``train.evaluate`` of the source)."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import traverse_util

from cnnlab import models, train
from cnnlab.train import optim, state as state_lib, workdir as workdir_lib
from cnnlab.train import cut, init_from

SHAPE = (8, 8, 1)  # the embedded digits at their native size


def _config(**model):
  c = train.base()
  c.model.name = "small_cnn"
  c.model.update(width=4, **model)
  c.data.update(mean=(0.3,), std=(0.4,))
  c.optimizer.schedule = "constant"
  c.update(num_train_steps=3, batch_size=32, log_every_steps=3, progress_bar=False)
  return c


@pytest.fixture(scope="module")
def source(tmp_path_factory):
  """A small_cnn (with BatchNorm) trained 3 steps on digits by the loop."""
  workdir = str(tmp_path_factory.mktemp("source"))
  train.train_and_evaluate(_config(), workdir)
  return workdir


def _state(config, num_classes=10, abstract=False, **model):
  model = cut.from_config(config, models.create("small_cnn", width=4, num_classes=num_classes,
                                                 **model), SHAPE, num_classes)
  tx = optim.make_optimizer(config.optimizer, lambda s: 1e-3)
  make = lambda: state_lib.create(model, tx, SHAPE, 1)  # noqa: E731
  return jax.eval_shape(make) if abstract else jax.jit(make)()


def _flat(state):
  return {k: np.asarray(v) for k, v in traverse_util.flatten_dict(
      state_lib.variables(state)).items()}


def _init(config, abstract=True, **kw):
  """``(the new run's fresh state, init_from.prepare's plan)``; the state only abstract (no
  compile) unless the test applies the plan."""
  fresh = _state(config, abstract=abstract, **kw)
  return fresh, init_from.prepare(config, jax.eval_shape(lambda: fresh))


def test_partial_restore_skips_exactly_the_named_paths(source, tmp_path):
  config = _config()
  config.init_from.update(workdir=source, skip="head|norm2")
  fresh, plan = _init(config, abstract=False)
  skipped = {k for k in _flat(fresh) if k[1] in ("head", "norm2")}
  assert {(c, *p) for c, p in plan.load} == set(_flat(fresh)) - skipped
  assert len(skipped) == 6  # head kernel, bias; norm2 scale, bias, mean, var
  got = _flat(init_from.apply(plan, fresh, tmp_path))
  _, _, saved = workdir_lib.load(source)
  saved = {k: np.asarray(v) for k, v in traverse_util.flatten_dict(saved).items()}
  for k, v in _flat(fresh).items():
    np.testing.assert_array_equal(got[k], v if k in skipped else saved[k], err_msg="/".join(k))
  assert any(not np.array_equal(saved[k], v) for k, v in _flat(fresh).items() if k in skipped)
  record = json.loads((tmp_path / init_from.RECORD).read_text())
  assert record["step"] == 3 and record["config"] == workdir_lib.read_config(source).to_dict()
  assert "params/head/kernel" in record["skipped"]


def test_shape_mismatch_not_skipped_is_one_line_error(source):
  config = _config()
  config.init_from.workdir = source
  with pytest.raises(train.ConfigError) as err:
    _init(config, num_classes=5)
  msg = str(err.value)
  assert "\n" not in msg and msg.startswith(f"config.init_from.workdir={source!r} does not fit")
  assert ("2 shape mismatches (new <- source): [params/head/bias (5,) <- (10,), "
          "params/head/kernel (16, 5) <- (16, 10)]") in msg
  assert "config.init_from.skip, e.g. 'head'" in msg
  config.init_from.skip = "head"
  _, plan = _init(config, num_classes=5)
  assert len(plan.load) == 15


def test_new_head_of_a_cut_is_left_fresh(source):
  config = _config()
  config.init_from.workdir = source
  config.transfer.cut_after = "stage2"
  _, plan = _init(config)
  assert {p[0] for _, p in plan.load} == {"conv0", "norm0", "conv1", "norm1"}


@pytest.mark.parametrize("field,value,message", [
    ("skip", "classifier", r"config\.init_from\.skip='classifier' is invalid: 'classifier' "
     r"matches no variable of the new model .* top-level modules are \['conv0', "),
    ("step", "7", r"config\.init_from\.step='7' is invalid: .* at steps \[3\]"),
    ("skip", "*", r"config\.init_from\.skip='\*' is invalid: it leaves nothing to load"),
])
def test_bad_init_from_fields(source, field, value, message):
  config = _config()
  config.init_from.update(workdir=source, **{field: value})
  with pytest.raises(train.ConfigError, match=message):
    _init(config)


def test_folder_that_is_no_source(tmp_path):
  config = _config()
  config.init_from.workdir = str(tmp_path)
  with pytest.raises(train.ConfigError, match=r"holds neither checkpoints .* nor variables/ \+ "
                     r"weights\.json \(scripts/convert_weights\.py\)"):
    _init(config)


def test_corrupt_source_array_is_refused(source, tmp_path):
  bad = tmp_path / "bad"
  shutil.copytree(source, bad)
  digest = bad / "checkpoints" / "3" / "digest" / "metadata"
  d = json.loads(digest.read_text())
  d[".params['conv1']['kernel']"] = "0" * 64
  digest.write_text(json.dumps(d))
  config = _config()
  config.init_from.workdir = str(bad)
  fresh, plan = _init(config, abstract=False)
  with pytest.raises(train.ConfigError, match=r"config\.init_from\.step=3 is invalid: .* "
                     r"\.params\['conv1'\]\['kernel'\] differ from the digest"):
    init_from.apply(plan, fresh, tmp_path)


def test_converted_weights_folder(tmp_path):
  """The layout scripts/convert_weights.py writes: variables (StandardCheckpointer) +
  weights.json."""
  model = models.create("small_cnn", width=4, num_classes=10)
  want = jax.jit(model.init)(jax.random.key(7), jnp.zeros((1, *SHAPE)))
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(tmp_path / "w" / init_from.WEIGHTS, want)
  (tmp_path / "w" / init_from.WEIGHTS_RECORD).write_text(json.dumps({"model": "small_cnn"}))
  config = _config()
  config.init_from.workdir = str(tmp_path / "w")
  fresh, plan = _init(config, abstract=False)
  got = _flat(init_from.apply(plan, fresh, tmp_path))
  for k, v in traverse_util.flatten_dict(want).items():
    np.testing.assert_array_equal(got[k], v)
  record = json.loads((tmp_path / init_from.RECORD).read_text())
  assert record["kind"] == "weights" and record["weights"] == {"model": "small_cnn"}


def test_run_starts_at_the_source_eval(source, tmp_path, monkeypatch):
  """Head kept: the new run's eval before its first step (metrics row at step 0) is the source
  run's own eval of its checkpoint. Run again, it resumes its own checkpoint: the source is not
  read."""
  config = _config()
  config.update(num_train_steps=1, log_every_steps=1)
  config.init_from.workdir = source
  train.train_and_evaluate(config, str(tmp_path))
  first = workdir_lib.read_metrics(tmp_path, "eval")[0]
  want = train.evaluate(workdir_lib.read_config(source), source)
  assert first["step"] == 0 and want["step"] == 3
  assert first["accuracy"] == want["accuracy"] and first["num_examples"] == 360
  np.testing.assert_allclose(first["loss"], want["loss"], rtol=1e-6)
  assert json.loads((tmp_path / init_from.RECORD).read_text())["workdir"] == source
  monkeypatch.setattr(init_from, "prepare", lambda *a: pytest.fail("source read on resume"))
  train.train_and_evaluate(config, str(tmp_path))
