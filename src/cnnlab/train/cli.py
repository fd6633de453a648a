"""Flags shared by ``scripts/train.py`` and ``scripts/evaluate.py``:
``--config=configs/X.py[:arg]`` (+ ``--config.field=value`` overrides), ``--workdir``,
``--multihost`` (``jax.distributed.initialize()`` first, for multi-host TPU/GPU)."""

import json

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from cnnlab.train.validate import ConfigError


def define_flags():
  config_flags.DEFINE_config_file("config", None, "Config file, path[:arg].", lock_config=True)
  flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the config record.")
  flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() first (multi-host).")
  flags.mark_flags_as_required(["config", "workdir"])


def main(fn):
  """An absl ``main`` that runs ``fn(config, workdir)`` and prints its result as a JSON line;
  a bad config or missing checkpoint exits with one ``error: ...`` line instead of a trace."""
  def _main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)  # Orbax's per-save INFO lines drown the progress bar
    if flags.FLAGS.multihost:
      jax.distributed.initialize()
    try:
      result = fn(flags.FLAGS.config, flags.FLAGS.workdir)
    except (ConfigError, FileNotFoundError) as e:
      raise SystemExit(f"error: {e}") from None
    print(json.dumps(result))
  return _main
