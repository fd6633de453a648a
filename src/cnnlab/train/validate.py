"""Config validation, before any data is read or anything is compiled.

Every problem raises :class:`ConfigError`: one line naming the field, its value and what is
allowed (``config.X=value is invalid: ... (allowed: ...)``). :func:`check_fields` is pure Python
(it runs before JAX is imported, so a bad field is reported at once); :func:`check_static` adds
the model (name and options) and the device count; :func:`check_data` checks the fields against
the dataset's info; :func:`check_input_shape` traces the model abstractly on the data's input
shape and blames the model option that breaks it.
"""

from __future__ import annotations

import difflib
import functools
import math
import os

from cnnlab.train import config as config_lib
from cnnlab.train.errors import ConfigError  # noqa: F401  (re-exported)

NONFINITE_POLICIES = ("stop", "skip")
GRAD_ACCUM_IMPLS = ("multisteps", "scan")  # cnnlab.train.accum.IMPLS (no JAX import here)
HALF_PRECISION_DTYPES = ("bfloat16", "float16")
LOSS_SCALES = ("none", "dynamic")
# Tasks whose targets come from the inputs, not the labels (cnnlab.train.steps).
UNSUPERVISED_TASKS = ("next_step", "denoise", "vae")


def _require(ok: bool, field: str, value, allowed: str):
  if not ok:
    raise ConfigError(f"config.{field}={value!r} is invalid: {allowed}")


def _get(config, dotted: str):
  return functools.reduce(getattr, dotted.split("."), config)


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def _one_of(config, field: str, allowed):
  v = _get(config, field)
  close = difflib.get_close_matches(str(v), [str(a) for a in allowed], n=1)
  hint = f"; did you mean {close[0]!r}?" if close and v not in allowed else ""
  _require(v in allowed, field, v, f"must be one of {list(allowed)}{hint}")


def check_subset(config, field: str, allowed, what: str):
  """Raises :class:`ConfigError` unless every entry of the sequence ``config.<field>`` is in
  ``allowed`` (``what``: what the entries name, e.g. 'conv impls')."""
  v = _get(config, field)
  unknown = [a for a in v if a not in allowed]
  _require(not unknown, field, tuple(v), f"{unknown} are not {what} (allowed: any of "
           f"{list(allowed)})")


def check_number(config, field: str, low=None, high=None, low_open=False, high_open=False,
                 integer=False):
  """Raises :class:`ConfigError` unless ``config.<field>`` (dotted) is a finite number (an int
  if ``integer``) in the given range (bounds inclusive unless ``*_open``); the experiments check
  their own fields with it."""
  v = _get(config, field)
  kind = "an integer" if integer else "a finite number"
  ok = (isinstance(v, int) and not isinstance(v, bool)) if integer else (
      _is_number(v) and math.isfinite(v))
  _require(ok, field, v, f"must be {kind}")
  if low is not None and high is not None:
    allowed = f"must be in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
  else:
    allowed = (f"must be {'>' if low_open else '>='} {low}" if low is not None else
               f"must be {'<' if high_open else '<='} {high}")
  if low is not None:
    _require(v > low if low_open else v >= low, field, v, allowed)
  if high is not None:
    _require(v < high if high_open else v <= high, field, v, allowed)


def _numbers(config, field: str, positive=False):
  v = _get(config, field)
  _require(isinstance(v, (tuple, list)) and len(v) > 0 and
           all(_is_number(x) and math.isfinite(x) for x in v), field, v,
           "must be a non-empty tuple of finite numbers, e.g. (0.5,)")
  if positive:
    _require(all(x > 0 for x in v), field, v, "every entry must be > 0")


def _bool(config, *fields):
  for f in fields:
    _require(isinstance(_get(config, f), bool), f, _get(config, f), "must be True or False")


def check_fields(config) -> None:
  """Names, types and ranges of every field but the model's (pure Python: needs neither JAX,
  the model registry nor data)."""
  opt, d = config.optimizer, config.data
  check_number(config, "seed", integer=True)
  _one_of(config, "optimizer.name", config_lib.OPTIMIZERS)
  _one_of(config, "optimizer.schedule", config_lib.SCHEDULES)
  check_number(config, "optimizer.learning_rate", 0, low_open=True)
  for f in ("momentum", "b1", "b2", "rho"):
    check_number(config, f"optimizer.{f}", 0, 1, high_open=True)
  check_number(config, "optimizer.eps", 0, low_open=True)
  check_number(config, "optimizer.max_norm", 0)
  for f in ("weight_decay", "grad_clip_norm", "warmup_epochs"):
    check_number(config, f"optimizer.{f}", 0)
  check_number(config, "optimizer.decay_factor", 0, low_open=True)
  check_number(config, "optimizer.label_smoothing", 0, 1, high_open=True)
  de = opt.decay_epochs
  _require(isinstance(de, (tuple, list)) and all(_is_number(e) and e > 0 for e in de) and
           list(de) == sorted(set(de)), "optimizer.decay_epochs", de,
           "must be an increasing tuple of epochs > 0, e.g. (30, 60)")
  for f in ("batch_size", "eval_batch_size", "log_every_steps", "keep_checkpoints"):
    check_number(config, f, 0, low_open=True, integer=True)
  check_number(config, "num_train_steps", 0, integer=True)
  if config.num_train_steps == 0:
    _require(_is_number(config.num_epochs) and math.isfinite(config.num_epochs) and
             config.num_epochs > 0, "num_epochs", config.num_epochs,
             "must be > 0 (or set num_train_steps > 0)")
  for f in ("eval_every_steps", "checkpoint_every_steps", "data.image_size",
            "data.random_crop_padding", "data.num_workers", "data.permute_seed"):
    check_number(config, f, 0, integer=True)
  _bool(config, "half_precision", "progress_bar", "data.random_flip", "data.permute_features")
  for f in ("labels_per_class", "subset_seed"):  # optional fields (pipeline.labeled_subset)
    v = d.get(f, 0)
    _require(isinstance(v, int) and not isinstance(v, bool) and v >= 0, f"data.{f}", v,
             "must be an integer >= 0" + (" (0 = all)" if f == "labels_per_class" else ""))
  ps = config.get("profile_steps", (0, 0))
  _require(isinstance(ps, (tuple, list)) and len(ps) == 2 and
           all(isinstance(x, int) and not isinstance(x, bool) for x in ps) and
           (tuple(ps) == (0, 0) or 0 <= ps[0] < ps[1]), "profile_steps", ps,
           "must be (start, stop) with 0 <= start < stop, or (0, 0) = off")
  _one_of(config, "nonfinite_policy", NONFINITE_POLICIES)
  check_number(config, "grad_accum_steps", 0, low_open=True, integer=True)
  _one_of(config, "grad_accum_impl", GRAD_ACCUM_IMPLS)
  check_number(config, "ema_decay", 0, 1, high_open=True)
  _one_of(config, "half_precision_dtype", HALF_PRECISION_DTYPES)
  _one_of(config, "loss_scale", LOSS_SCALES)
  check_number(config, "loss_scale_init", 0, low_open=True)
  check_number(config, "loss_scale_period", 0, low_open=True, integer=True)
  _one_of(config, "task", config_lib.TASKS)
  check_number(config, "noise_std", 0)
  check_number(config, "max_nonfinite_skips", 0, low_open=True, integer=True)
  for f in ("name", "train_split", "eval_split"):
    _require(isinstance(d[f], str) and d[f], f"data.{f}", d[f], "must be a non-empty string")
  for f in ("data_dir", "manual_dir"):
    _require(isinstance(d[f], str), f"data.{f}", d[f], "must be a path ('' = unset)")
  _numbers(config, "data.mean")
  _numbers(config, "data.std", positive=True)
  _require(len(d.mean) == len(d.std), "data.std", d.std,
           f"needs as many entries as data.mean ({len(d.mean)})")
  if d.manual_dir:
    _require(os.path.isdir(d.manual_dir), "data.manual_dir", d.manual_dir,
             "no such folder (allowed: a folder of the dataset's files, or '')")
    _require(os.access(d.manual_dir, os.R_OK | os.X_OK), "data.manual_dir", d.manual_dir,
             "the folder is not readable")
  if d.data_dir:
    _require(not os.path.exists(d.data_dir) or os.path.isdir(d.data_dir), "data.data_dir",
             d.data_dir, "exists and is not a folder")


def check_model(config) -> None:
  """:func:`check_fields` and the model's name and options: needs the model registry (JAX and
  Flax), not the data, optimizer or checkpoint libraries."""
  from cnnlab import models  # noqa: PLC0415 - the registry imports JAX; check_fields must not
  check_fields(config)
  check_transfer(config)
  _require(isinstance(config.model.get("name"), str), "model.name", config.model.get("name"),
           f"must be one of {models.list_models()}")
  _one_of(config, "model.name", models.list_models())
  try:
    models.create(config.model.name, **model_kwargs(config))
  except (TypeError, ValueError) as e:
    raise ConfigError(_blame_option(config, e)) from None


def check_static(config, num_devices: int) -> None:
  """:func:`check_model` and batch divisibility by the device count (needs no data). The XLA
  options (``cnnlab.train.backend.check``) compile a probe, so the loop checks them after
  everything that compiles nothing."""
  check_model(config)
  for f in ("batch_size", "eval_batch_size"):
    _require(config[f] % num_devices == 0, f, config[f],
             f"must be divisible by the number of devices ({num_devices})")
  k = config.grad_accum_steps
  _require(config.batch_size % (k * num_devices) == 0, "grad_accum_steps", k,
           f"config.batch_size={config.batch_size} must be divisible by grad_accum_steps x the "
           f"number of devices ({num_devices}) (allowed: a k with batch_size % (k x "
           f"{num_devices}) == 0)")


def check_transfer(config) -> None:
  """``config.init_from`` and ``config.transfer`` (docs/transfer.md): field names and types,
  path-pattern syntax, the step. Their fit to the model and the source is checked at the start."""
  from cnnlab.train import patterns  # noqa: PLC0415
  parsers = {"include": patterns.parse, "skip": patterns.parse, "trainable": patterns.parse,
             "frozen": patterns.parse, "lr_multipliers": patterns.parse_multipliers}
  defaults = config_lib.base()
  for group in ("init_from", "transfer"):
    for f, v in (config.get(group) or {}).items():
      _require(f in defaults[group], f"{group}.{f}", v,
               f"unknown field (allowed: {', '.join(defaults[group])})")
      if f == "step":
        _require(v in ("latest", "best") or (isinstance(v, str) and v.isdigit()) or (
            isinstance(v, int) and not isinstance(v, bool) and v >= 0), "init_from.step", v,
            "must be 'latest', 'best' or a checkpointed step number")
        continue
      _require(isinstance(v, str), f"{group}.{f}", v, "must be a string ('' = unset)")
      try:
        parsers.get(f, str)(v)
      except ValueError as e:
        raise ConfigError(f"config.{group}.{f}={v!r} is invalid: {e}") from None
  init = config.get("init_from") or {}
  for f in ("include", "skip"):
    _require(not init.get(f) or init.get("workdir"), f"init_from.{f}", init.get(f),
             "is set but config.init_from.workdir is '' (allowed: '', or set the workdir)")


def check_data(config, info) -> None:
  """The fields that must agree with the dataset (``info``: its :class:`cnnlab.data.DataInfo`)."""
  d, shape = config.data, tuple(info.input_shape)
  task = config.get("task", "classification")
  targets = f"{info.num_classes} classes" if info.num_classes else "float targets"
  labelled = ("classification, sequence_classification, segmentation" if info.num_classes
              else "regression")
  _require(task in UNSUPERVISED_TASKS or (task == "regression") == (not info.num_classes), "task",
           task, f"dataset {d.name!r} has {targets} (allowed: {labelled}, or one of "
           f"{', '.join(UNSUPERVISED_TASKS)}, which ignore the labels)")
  n = config.model.get("num_classes")
  _require(n is None or not info.num_classes or task in UNSUPERVISED_TASKS or n == info.num_classes,
           "model.num_classes", n,
           f"dataset {d.name!r} has {info.num_classes} classes (allowed: {info.num_classes}, "
           "or leave it unset)")
  channels = shape[-1]
  for f in ("mean", "std"):
    _require(len(d[f]) in (1, channels), f"data.{f}", d[f],
             f"dataset {d.name!r} has {channels} channel(s) (allowed: 1 or {channels} entries)")
  # Waveforms through the log-mel front end are (mel_bins, frames, 1) images: resizable.
  log_mel = shape == (None,) and d.get("log_mel", False)
  if len(shape) != 3:
    for f in ("random_crop_padding", "random_flip") + (() if log_mel else ("image_size",)):
      _require(not d[f], f"data.{f}", d[f],
               f"dataset {d.name!r} has inputs of shape {shape}, not 2D images (H, W, C) "
               f"(allowed: {'False' if f == 'random_flip' else 0})")


def model_kwargs(config, num_classes: int | None = None) -> dict:
  """The ``config.model`` fields other than ``name``, plus dtype and the class count."""
  kw = {k: v for k, v in config.model.items() if k != "name"}
  if config.half_precision:
    import jax.numpy as jnp  # noqa: PLC0415
    kw["dtype"] = jnp.dtype(config.get("half_precision_dtype", "bfloat16"))
  if num_classes is not None:
    kw.setdefault("num_classes", num_classes)
  return kw


def _blame_option(config, err, input_shape=None, dtype="float32") -> str:
  """The one line for a model that cannot be built (or, given ``input_shape``, traced) with the
  config's options: the option without which it works is blamed, with the model's message."""
  from cnnlab import models  # noqa: PLC0415
  name = config.model.name
  kw = model_kwargs(config)
  msg = f"{type(err).__name__}: {' '.join(str(err).split())}" if str(err) else type(err).__name__
  for k in [k for k in kw if k not in ("num_classes", "dtype")]:
    rest = {j: v for j, v in kw.items() if j != k}
    try:
      model = models.create(name, **rest)
      if input_shape is not None:
        _trace(model, input_shape, dtype)
    except Exception:  # noqa: BLE001, S112 - another option (or the input) breaks it too
      continue
    return f"config.model.{k}={kw[k]!r} is invalid for model {name!r}: {msg}"
  return f"config.model (model {name!r} with options {kw}) is invalid: {msg}"


def _trace(model, input_shape, dtype="float32"):
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *input_shape), dtype),
                                    train=False))


def check_input_shape(config, model, input_shape, dtype="float32") -> None:
  """Abstractly evaluates ``model.init`` on the input shape (and dtype) the data will give (no
  compile); blames the model option that breaks it, else the input size."""
  from cnnlab import models  # noqa: PLC0415
  try:
    _trace(model, input_shape, dtype)
  except Exception as e:  # noqa: BLE001 - any failure here means the model cannot run.
    line = _blame_option(config, e, input_shape, dtype)
    if not line.startswith("config.model ("):
      raise ConfigError(line) from None
    try:  # the model with none of the options: if it fails too, the input is at fault
      _trace(models.create(config.model.name,
                           **{k: v for k, v in model_kwargs(config).items()
                              if k in ("num_classes", "dtype")}), input_shape, dtype)
    except Exception:  # noqa: BLE001
      raise ConfigError(
          f"config.data.image_size={config.data.image_size!r} gives inputs of shape "
          f"{input_shape}, which model {config.model.name!r} cannot take (its default input "
          f"is {models.get_spec(config.model.name).input_shape}): {type(e).__name__}: "
          f"{str(e).splitlines()[0] if str(e) else ''}") from None
    raise ConfigError(line) from None
