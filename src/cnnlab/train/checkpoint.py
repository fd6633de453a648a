"""Orbax checkpoints of the train state and the Grain iterator, and the workdir's config record.

Layout: ``WORKDIR/config.json`` (the resolved config of the run) and
``WORKDIR/checkpoints/<step>/{state,data}``. A workdir is never silently reused by a run whose
config differs in anything that changes the result (see :data:`NON_RESULT_FIELDS`).
"""

from __future__ import annotations

import json
import os

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp

from cnnlab.train.validate import ConfigError

# Fields that may change between a run and its resumption (they do not change the parameters).
NON_RESULT_FIELDS = ("progress_bar", "log_every_steps", "eval_every_steps", "eval_batch_size",
                     "checkpoint_every_steps", "keep_checkpoints", "data.num_workers",
                     "data.eval_split")


def manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, "checkpoints")),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))


def save(mngr: ocp.CheckpointManager, step: int, state, data_iter) -> None:
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          data=grain.checkpoint.CheckpointSave(data_iter)))


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state, data_iter=None):
  """Restores the state at ``step`` (and, in place, ``data_iter``'s position)."""
  items = {"state": ocp.args.StandardRestore(abstract_state)}
  if data_iter is not None:
    items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
  return mngr.restore(step, args=ocp.args.Composite(**items))["state"]


def _flat(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


def check_and_record_config(config: ml_collections.ConfigDict, workdir: str,
                            has_checkpoints: bool) -> None:
  """Refuses to resume a workdir made by a different config; then writes ``config.json``."""
  path = os.path.join(workdir, "config.json")
  new = _flat(json.loads(config.to_json()))
  if has_checkpoints and os.path.exists(path):
    with open(path) as f:
      old = _flat(json.load(f))
    diff = sorted(k for k in set(old) | set(new)
                  if k not in NON_RESULT_FIELDS and old.get(k) != new.get(k))
    if diff:
      changes = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
      raise ConfigError(f"workdir {workdir!r} holds checkpoints of a run with a different config "
                        f"({changes}); use a new --workdir, or delete that one to start over")
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(path, "w") as f:
      f.write(config.to_json(indent=2))
