"""Config validation, before any data is read or anything is compiled.

Every problem raises :class:`ConfigError` naming the field, its value and what is allowed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from cnnlab import models
from cnnlab.train import config as config_lib


class ConfigError(ValueError):
  """A config field has a value the run cannot use."""


def _require(ok: bool, field: str, value, allowed: str):
  if not ok:
    raise ConfigError(f"config.{field}={value!r} is invalid: {allowed}")


def _get(config, dotted: str):
  return functools.reduce(getattr, dotted.split("."), config)


def _positive(config, *fields):
  for f in fields:
    v = _get(config, f)
    _require(isinstance(v, (int, float)) and v > 0, f, v, "must be > 0")


def check_static(config, num_devices: int) -> None:
  """Checks names, ranges and batch divisibility (needs no data)."""
  _require(config.model.name in models.list_models(), "model.name", config.model.name,
           f"must be one of {models.list_models()}")
  opt = config.optimizer
  _require(opt.name in config_lib.OPTIMIZERS, "optimizer.name", opt.name,
           f"must be one of {list(config_lib.OPTIMIZERS)}")
  _require(opt.schedule in config_lib.SCHEDULES, "optimizer.schedule", opt.schedule,
           f"must be one of {list(config_lib.SCHEDULES)}")
  _positive(config, "batch_size", "eval_batch_size", "optimizer.learning_rate",
            "log_every_steps", "keep_checkpoints")
  if config.num_train_steps <= 0:
    _positive(config, "num_epochs")
  for f in ("weight_decay", "grad_clip_norm", "warmup_epochs"):
    _require(opt[f] >= 0, f"optimizer.{f}", opt[f], "must be >= 0")
  _require(0 <= opt.label_smoothing < 1, "optimizer.label_smoothing", opt.label_smoothing,
           "must be in [0, 1)")
  for f in ("eval_every_steps", "checkpoint_every_steps", "data.image_size",
            "data.random_crop_padding", "data.num_workers"):
    v = _get(config, f)
    _require(v >= 0, f, v, "must be >= 0")
  for f in ("batch_size", "eval_batch_size"):
    _require(config[f] % num_devices == 0, f, config[f],
             f"must be divisible by the number of devices ({num_devices})")
  _require(len(config.data.mean) == len(config.data.std), "data.std", config.data.std,
           f"needs as many entries as data.mean ({len(config.data.mean)})")
  try:
    models.create(config.model.name, **model_kwargs(config))
  except ValueError as e:
    raise ConfigError(f"config.model: {e}") from None


def model_kwargs(config, num_classes: int | None = None) -> dict:
  """The ``config.model`` fields other than ``name``, plus dtype and the class count."""
  kw = {k: v for k, v in config.model.items() if k != "name"}
  if config.half_precision:
    kw["dtype"] = jnp.bfloat16
  if num_classes is not None:
    kw.setdefault("num_classes", num_classes)
  return kw


def check_input_shape(config, model, input_shape) -> None:
  """Abstractly evaluates ``model.init`` on the input shape the data will give (no compile)."""
  try:
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *input_shape)),
                                      train=False))
  except Exception as e:  # noqa: BLE001 - any failure here means the shape does not fit.
    raise ConfigError(
        f"config.data.image_size={config.data.image_size!r} gives inputs of shape {input_shape}, "
        f"which model {config.model.name!r} cannot take (its default input is "
        f"{models.get_spec(config.model.name).input_shape}): {type(e).__name__}: "
        f"{str(e).splitlines()[0] if str(e) else ''}") from None
