"""The workdir of a run, its one owner: layout, recorded config, metrics, checkpoints, model.

Layout::

  WORKDIR/config.json          the resolved config of the run
  WORKDIR/metrics.jsonl        one JSON object per log step / eval (``kind``: train | eval)
  WORKDIR/tb/                  TensorBoard event files
  WORKDIR/checkpoints/<step>/  Orbax checkpoints: ``state`` (train state), ``data`` (Grain),
                               ``digest`` (sha256 of every state array, checked on restore)
  WORKDIR/checkpoints/unusable-<step>/  a step folder set aside (empty, unreadable, corrupt)
  WORKDIR/lock                 ``flock``-ed by the one trainer of the workdir; holds its pid
  WORKDIR/init_from.json       where ``config.init_from`` loaded variables from (source config,
                               loaded and skipped paths), if it did
  WORKDIR/profile/             the ``config.profile_steps`` trace, if any
  WORKDIR/export/              ``scripts/export.py``'s serialised inference functions

Everything that reads or writes these paths (the loop, evaluation, experiments, tests) goes
through this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import pathlib

import ml_collections

from cnnlab.train import config as config_lib
from cnnlab.train.errors import ConfigError, WorkdirBusy

# Fields that may change between a run and its resumption (they do not change the parameters;
# the conv impl and the XLA options change only float rounding).
NON_RESULT_FIELDS = ("progress_bar", "log_every_steps", "eval_every_steps", "eval_batch_size",
                     "checkpoint_every_steps", "keep_checkpoints", "data.eval_split",
                     "profile_steps", "xla_cpu_options", "model.conv_impl")

CONFIG = "config.json"
METRICS = "metrics.jsonl"
TENSORBOARD = "tb"
CHECKPOINTS = "checkpoints"
LOCK = "lock"
UNUSABLE = "unusable-"
BEST_METRIC = "accuracy"  # the eval metric that picks the best checkpoint (higher is better)


def score(row: dict) -> float | None:
  """The eval row's :data:`BEST_METRIC` or, for a task without accuracy (regression), minus its
  loss: higher is better."""
  if BEST_METRIC in row or row.get("loss") is None:
    return row.get(BEST_METRIC)
  return -row["loss"]


def config_path(workdir) -> pathlib.Path:
  return pathlib.Path(workdir, CONFIG)


def metrics_path(workdir) -> pathlib.Path:
  return pathlib.Path(workdir, METRICS)


def tensorboard_dir(workdir) -> pathlib.Path:
  return pathlib.Path(workdir, TENSORBOARD)


def checkpoints_dir(workdir) -> pathlib.Path:
  return pathlib.Path(workdir, CHECKPOINTS).absolute()


def steps(workdir) -> list[int]:
  """Steps of the checkpoint folders that hold a train state, oldest first (empty or
  half-written step folders are left out)."""
  d = checkpoints_dir(workdir)
  found = [int(p.name) for p in d.iterdir() if p.name.isdigit() and (p / "state").is_dir()] \
      if d.is_dir() else []
  return sorted(found)


def latest_step(workdir) -> int | None:
  return max(steps(workdir), default=None)


def best_step(workdir) -> int | None:
  """The kept checkpoint with the highest eval :func:`score` in ``metrics.jsonl`` (ties: the
  later one); None if no kept checkpoint has an eval row."""
  kept = set(steps(workdir))
  scored = [(score(r), r["step"]) for r in read_metrics(workdir, "eval")
            if r["step"] in kept and score(r) is not None]
  return max(scored)[1] if scored else None


def resolve_step(workdir, step: int | str) -> int:
  """``'latest'``, ``'best'`` or a step number -> a step that has a checkpoint in ``workdir``;
  a :class:`ConfigError` naming the kept steps otherwise."""
  kept = steps(workdir)
  found = {"latest": latest_step, "best": best_step}[step](workdir) if step in (
      "latest", "best") else None
  if step not in ("latest", "best"):
    try:
      found = int(step)
    except (TypeError, ValueError):
      raise ConfigError(f"step={step!r} is invalid: allowed 'latest', 'best' or one of the "
                        f"checkpointed steps {kept}") from None
  if found is None or found not in kept:
    raise ConfigError(f"step={step!r} is invalid: {checkpoints_dir(workdir)} holds checkpoints "
                      f"at steps {kept or 'none'} (allowed: 'latest', 'best' or one of those)")
  return found


def set_aside(workdir, step: int) -> pathlib.Path:
  """Renames an unusable step folder to ``unusable-<step>`` (kept for inspection, no longer a
  step for Orbax or :func:`steps`)."""
  src = checkpoints_dir(workdir) / str(step)
  dst = checkpoints_dir(workdir) / f"{UNUSABLE}{step}"
  n = 1
  while dst.exists():
    dst, n = checkpoints_dir(workdir) / f"{UNUSABLE}{step}.{n}", n + 1
  src.rename(dst)
  return dst


def set_aside_empty(workdir) -> list[int]:
  """Sets aside the step folders that hold no train state (empty or half-made); returns them."""
  d = checkpoints_dir(workdir)
  bad = [int(p.name) for p in d.iterdir() if p.name.isdigit() and not (p / "state").is_dir()] \
      if d.is_dir() else []
  for s in bad:
    set_aside(workdir, s)
  return sorted(bad)


@contextlib.contextmanager
def lock(workdir):
  """Holds an exclusive ``flock`` on ``WORKDIR/lock`` (creating the workdir); a second holder
  gets :class:`WorkdirBusy` naming the first one's pid. The OS drops the lock when the holder
  dies, however it dies."""
  os.makedirs(workdir, exist_ok=True)
  f = open(pathlib.Path(workdir, LOCK), "a+")  # noqa: SIM115 - held for the whole block
  try:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      raise WorkdirBusy(f"workdir {os.fspath(workdir)!r} is in use by another run (pid "
                        f"{f.read().strip() or '?'}); wait for it to end or use another "
                        "--workdir") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    yield
  finally:
    f.close()  # closing drops the lock


def holder(workdir) -> int | None:
  """The pid of the process that holds ``workdir``'s lock, or None if it is free."""
  path = pathlib.Path(workdir, LOCK)
  if not path.exists():
    return None
  with open(path) as f:
    try:
      fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      text = f.read().strip()
      return int(text) if text.isdigit() else -1
    fcntl.flock(f, fcntl.LOCK_UN)
  return None


def read_config(workdir) -> ml_collections.ConfigDict:
  """The config recorded in ``workdir``; a :class:`ConfigError` if it is missing or unreadable."""
  path = config_path(workdir)
  try:
    return ml_collections.ConfigDict(json.loads(path.read_text()))
  except (OSError, ValueError) as e:
    raise ConfigError(f"{path} is unreadable ({type(e).__name__}: {e}); it should hold the "
                      "run's config as JSON") from None


def _flat(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


def config_changes(workdir, config: ml_collections.ConfigDict, fields=None
                   ) -> tuple[dict, dict, list[str]]:
  """``(recorded, new, changed)``: the config recorded in ``workdir`` and ``config`` as flat
  ``{dotted.field: value}`` dicts, and the sorted fields whose value differs among ``fields``
  (prefixes; default: every field but :data:`NON_RESULT_FIELDS`). A field the record lacks
  counts as its default."""
  old = _flat(read_config(workdir).to_dict())
  new = _flat(json.loads(config.to_json()))
  if fields is None:
    fields = [k for k in set(old) | set(new) if k not in NON_RESULT_FIELDS]
  defaults = _flat(json.loads(config_lib.base().to_json()))
  return old, new, sorted(k for k in set(old) | set(new) if any(
      k == f or k.startswith(f) for f in fields) and old.get(k, defaults.get(k)) != new.get(k))


def read_metrics(workdir, kind: str | None = None) -> list[dict]:
  """The rows of ``metrics.jsonl`` (only those of ``kind`` 'train' / 'eval' if given); a
  non-finite value is written as ``null`` and read as None."""
  path = metrics_path(workdir)
  if not path.exists():
    return []
  rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  return [r for r in rows if kind is None or r.get("kind") == kind]


def metrics_line(row: dict) -> str:
  """``row`` as one line of strict JSON: NaN and +-inf become ``null``."""
  clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
  return json.dumps(clean, allow_nan=False) + "\n"


def cut_metrics(workdir, step: int) -> int:
  """Drops the rows of ``metrics.jsonl`` after ``step`` (a resumed run writes them again);
  returns how many were dropped. The file is replaced atomically."""
  path = metrics_path(workdir)
  if not path.exists():
    return 0
  lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
  keep = [ln for ln in lines if json.loads(ln).get("step", 0) <= step]
  if len(keep) < len(lines):
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(f"{ln}\n" for ln in keep))
    os.replace(tmp, path)
  return len(lines) - len(keep)


def load(workdir, step: int | str = "latest"):
  """``(config, model, variables)`` of the checkpoint at ``step`` ('latest', 'best' or a number)
  in ``workdir``: the recorded config, the model it built and its inference variables
  (``params``, their EMA if the run kept one, and, for BatchNorm models, ``batch_stats``)."""
  import jax  # noqa: PLC0415 - heavy imports only when a model is loaded
  import orbax.checkpoint as ocp  # noqa: PLC0415

  from cnnlab import data, models  # noqa: PLC0415
  from cnnlab.data import pipeline  # noqa: PLC0415
  from cnnlab.train import cut, validate  # noqa: PLC0415
  step = resolve_step(workdir, step)
  config = read_config(workdir)
  path = checkpoints_dir(workdir) / str(step) / "state"
  ckptr = ocp.StandardCheckpointer()
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        ckptr.metadata(path).item_metadata.tree)
  state = ckptr.restore(path, target)
  variables = {k: state[k] for k in ("params", "batch_stats") if state.get(k) is not None}
  if state.get("ema_params") is not None:  # config.ema_decay: the EMA is what the run evaluates
    variables["params"] = state["ema_params"]
  _, info = data.load(config.data.name, config.data.eval_split,
                      data_dir=config.data.data_dir or None,
                      manual_dir=config.data.manual_dir or None,
                      **data.options(config.data.name, config.data, workdir))
  generative = config.get("task", "classification") in validate.UNSUPERVISED_TASKS  # no classes
  model = models.create(config.model.name, **validate.model_kwargs(
      config, num_classes=(0 if generative else info.num_classes) or None))
  shape, size = tuple(pipeline.example_shape(info, config.data)), config.data.image_size
  shape = (size, size, shape[-1]) if size and len(shape) == 3 else shape  # resized on device
  model = cut.from_config(config, model, shape, info.num_classes)  # config.transfer.cut_after
  return config, model, variables
