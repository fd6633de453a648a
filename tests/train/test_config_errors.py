"""Bad configs fail with one clear error naming the field, before anything is compiled."""

import jax
import pytest

from cnnlab import train
from cnnlab.train import validate

CASES = [
    ("model.name", "lenet6", "model.name='lenet6'", "lenet5"),
    ("optimizer.name", "adm", "optimizer.name='adm'", "adamw"),
    ("optimizer.schedule", "linear", "optimizer.schedule='linear'", "cosine"),
    ("batch_size", 0, "batch_size=0", "> 0"),
    ("optimizer.learning_rate", -0.1, "learning_rate=-0.1", "> 0"),
    ("optimizer.label_smoothing", 1.0, "label_smoothing=1.0", "[0, 1)"),
    ("data.image_size", 8, "image_size=8", "lenet5"),
    ("data.random_crop_padding", -1, "random_crop_padding=-1", ">= 0"),
]


def _set(config, dotted, value):
  *parents, last = dotted.split(".")
  node = config
  for p in parents:
    node = node[p]
  node[last] = value


@pytest.mark.parametrize("field,value,in_msg,allowed", CASES, ids=[c[0] for c in CASES])
def test_bad_field_is_named_before_compiling(digits_config, tmp_path, caplog, field, value,
                                             in_msg, allowed):
  _set(digits_config, field, value)
  with jax.log_compiles(True), pytest.raises(train.ConfigError) as err:
    train.train_and_evaluate(digits_config, str(tmp_path))
  assert in_msg in str(err.value) and allowed in str(err.value)
  assert not [r for r in caplog.records if "Compiling" in r.getMessage()]
  assert not (tmp_path / "checkpoints").exists()


def test_batch_must_divide_device_count(digits_config):
  with pytest.raises(train.ConfigError, match=r"batch_size=16 .*divisible by .* \(3\)"):
    validate.check_static(digits_config, num_devices=3)


def test_unknown_model_option(digits_config):
  digits_config.model.depth = 3
  with pytest.raises(train.ConfigError, match=r"no option\(s\) \['depth'\]"):
    validate.check_static(digits_config, num_devices=1)


def test_unknown_config_arg():
  with pytest.raises(train.ConfigError, match="config arg 'smok' is invalid: allowed smoke, local"):
    train.apply_arg(train.base(), "smok")


def test_workdir_of_another_config_is_not_reused(digits_config, tmp_path):
  train.train_and_evaluate(digits_config, str(tmp_path))
  digits_config.optimizer.learning_rate = 0.5
  with pytest.raises(train.ConfigError, match=r"different config \(optimizer.learning_rate"):
    train.train_and_evaluate(digits_config, str(tmp_path))
