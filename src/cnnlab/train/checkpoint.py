"""Verified Orbax checkpoints of the train state and the Grain iterator, and the workdir's config
record (layout: :mod:`cnnlab.train.workdir`).

Each save writes, in the same atomic Orbax step, a ``digest``: the sha256 of every state array as
saved. A restore recomputes them; a step that fails to read or to match is reported in one line,
set aside (``checkpoints/unusable-<step>``) and the next older step is tried. :func:`save` reads
each new step back and verifies it before anything older is deleted; then it keeps the last
``keep_checkpoints`` steps plus the one with the best eval accuracy (a step saved at an eval step
carries that eval's metrics) and deletes the rest. A non-finite state is never saved (the loop
checks it first). A workdir is never silently reused
by a run whose config differs in anything that changes the result (see :data:`cnnlab.train.workdir.NON_RESULT_FIELDS`).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys

import jax
import ml_collections
import numpy as np

from cnnlab.train import config as config_lib
from cnnlab.train import mesh as mesh_lib
from cnnlab.train import workdir as workdir_lib
from cnnlab.train.errors import ConfigError

# Fields that do not change the parameters but the saved input position (Grain's iterator state
# has one entry per worker process): a resumption must keep them.
FORMAT_FIELDS = ("data.num_workers",)
# Fields evaluate.py must share with the run it evaluates (the model and what it was fed).
MODEL_FIELDS = ("model.", "data.mean", "data.std", "data.image_size", "data.permute_features",
                "data.permute_seed", "half_precision", "half_precision_dtype",
                "transfer.cut_after", "task")


class CorruptCheckpoint(RuntimeError):
  """A checkpoint's arrays do not match the digest recorded when it was saved."""


def manager(workdir: str, read_only: bool = False):
  """An Orbax ``CheckpointManager`` on ``WORKDIR/checkpoints`` that records each step's eval
  metrics (``best_fn``) and deletes nothing by itself (``max_to_keep=None``: :func:`save` prunes
  after verifying; ``read_only``: creates nothing either)."""
  import orbax.checkpoint as ocp  # noqa: PLC0415 - heavy; only when checkpoints are touched
  return ocp.CheckpointManager(
      workdir_lib.checkpoints_dir(workdir),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=None, best_fn=lambda m: m[workdir_lib.BEST_METRIC],
          keep_checkpoints_without_metrics=True, create=not read_only, read_only=read_only,
          cleanup_tmp_directories=not read_only))


def digest(state) -> dict[str, str]:
  """``{array path: sha256 of its bytes}`` of every array of ``state`` (host copies of the
  process's first shard: the whole array for replicated state)."""
  def one(x):
    a = np.asarray(x.addressable_data(0) if isinstance(x, jax.Array) else x)
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
  return {jax.tree_util.keystr(p): one(x)
          for p, x in jax.tree_util.tree_leaves_with_path(state)}


def save(mngr, step: int, state, data_iter, *, keep: int, metrics: dict | None = None) -> None:
  """Saves ``step`` with its digest, waits for it, reads it back and verifies it (else
  :class:`CorruptCheckpoint`, with every older step still there), then :func:`prune`."""
  import grain  # noqa: PLC0415
  import orbax.checkpoint as ocp  # noqa: PLC0415
  mngr.save(step, metrics=metrics or {}, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(data_iter),
      digest=ocp.args.JsonSave(digest(state))))
  mngr.wait_until_finished()
  try:
    restore(mngr, step, state)
  except Exception as e:
    raise CorruptCheckpoint(f"checkpoint {step} in {mngr.directory} did not read back as written "
                            f"({type(e).__name__}: {' '.join(str(e).split())[:300]}); the older "
                            "checkpoints are kept") from e
  prune(mngr, keep)


def prune(mngr, keep: int) -> list[int]:
  """Deletes every step but the last ``keep`` and the best by eval accuracy (ties: the later);
  returns the deleted steps."""
  steps = sorted(mngr.all_steps())
  scored = [(m[workdir_lib.BEST_METRIC], s) for s in steps
            if (m := mngr.metrics(s)) and m.get(workdir_lib.BEST_METRIC) is not None]
  kept = set(steps[-keep:]) | ({max(scored)[1]} if scored else set())
  gone = [s for s in steps if s not in kept]
  for s in gone:
    mngr.delete(s)
  return gone


def restore(mngr, step: int, abstract_state, data_iter=None):
  """The state at ``step`` (and, in place, ``data_iter``'s position), checked against its
  digest; :class:`CorruptCheckpoint` if an array differs from what was saved."""
  import grain  # noqa: PLC0415
  import orbax.checkpoint as ocp  # noqa: PLC0415
  items = {"state": ocp.args.StandardRestore(abstract_state)}
  if data_iter is not None:
    items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
  has_digest = (pathlib.Path(mngr.directory) / str(step) / "digest").exists()
  if has_digest:
    items["digest"] = ocp.args.JsonRestore()
  out = mngr.restore(step, args=ocp.args.Composite(**items))
  if has_digest:
    now = digest(out["state"])
    bad = sorted(k for k in set(now) | set(out["digest"]) if now.get(k) != out["digest"].get(k))
    if bad:
      raise CorruptCheckpoint(f"array(s) {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} "
                              "differ from the digest recorded at save")
  return out["state"]


def restore_latest(mngr, workdir: str, abstract_state, data_iter) -> tuple[int, object]:
  """``(step, state)`` of the newest checkpoint that reads and verifies (``(0, None)`` if
  none); each one that does not is reported on stderr and set aside."""
  for step in reversed(workdir_lib.steps(workdir)):
    try:
      return step, restore(mngr, step, abstract_state, data_iter)
    except Exception as e:  # noqa: BLE001 - any failure to read makes the checkpoint unusable
      msg = " ".join(str(e).split())[:300]
      where = workdir_lib.checkpoints_dir(workdir) / str(step)
      if jax.process_index() == 0:
        aside = workdir_lib.set_aside(workdir, step)
        print(f"warning: checkpoint {where} is unusable ({type(e).__name__}: {msg}); moved to "
              f"{aside.name}, trying the previous one", file=sys.stderr, flush=True)
      mngr.reload()
  return 0, None


def check_and_record_config(config: ml_collections.ConfigDict, workdir: str,
                            has_checkpoints: bool) -> None:
  """Refuses to resume a workdir made by a different config (or whose config record is missing
  or unreadable); then writes ``config.json``. A field the record lacks counts as its default."""
  if has_checkpoints:
    old, new, diff = workdir_lib.config_changes(workdir, config)
    fmt = [k for k in diff if k in FORMAT_FIELDS]
    if fmt:
      k = fmt[0]
      raise ConfigError(f"config.{k}={new.get(k)!r} is invalid: the checkpoints in {workdir!r} "
                        f"were written with {k}={old.get(k)!r}, and their saved input position "
                        f"depends on it (allowed: {old.get(k)!r}, or a new --workdir)")
    if diff:
      changes = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
      raise ConfigError(f"workdir {workdir!r} holds checkpoints of a run with a different config "
                        f"({changes}); use a new --workdir, or delete that one to start over")
  mesh_lib.barrier("config record read")  # every process read it before process 0 rewrites it
  if jax.process_index() == 0:
    workdir_lib.config_path(workdir).write_text(config.to_json(indent=2))


def check_same_model(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Refuses to evaluate ``workdir``'s checkpoints with a config whose model or input
  normalisation differs from the run's own (``config.json``); ``model.conv_impl`` may differ (it
  picks how the convs are computed, not what they compute)."""
  old, new, diff = workdir_lib.config_changes(workdir, config, MODEL_FIELDS)
  diff = [k for k in diff if k != "model.conv_impl"]
  if diff:
    k = diff[0]
    raise ConfigError(f"config.{k}={new.get(k)!r} is invalid: the run in {workdir!r} was trained "
                      f"with {k}={old.get(k)!r} (allowed: {old.get(k)!r}; see its config.json)")
