"""Serialises a trained run's inference function with ``jax.export`` (StableHLO, symbolic batch):

  python scripts/export.py --workdir=runs/lenet5_digits [--step=latest|best|STEP] [--out=FILE]

Writes FILE (default ``WORKDIR/export/step_N.jax_exported``) and FILE.json (input shape,
normalisation, classes); an ``--out`` that exists is refused, never overwritten.
``cnnlab.train.export.load(FILE)`` returns the callable. Prints the record as a JSON line."""

import json
import pathlib
import sys

from absl import app, flags

from cnnlab.train import errors, export

WORKDIR = flags.DEFINE_string("workdir", None, "A trained run's workdir.", required=True)
STEP = flags.DEFINE_string("step", "latest", "Checkpoint: latest, best or a step number.")
OUT = flags.DEFINE_string("out", None, "Output file (default WORKDIR/export/step_N.jax_exported).")


def _fail(message: str):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(errors.BAD_INPUT)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  step = int(STEP.value) if STEP.value.isdigit() else STEP.value
  if OUT.value:  # checked before anything is exported; the default path is the run's own
    out = pathlib.Path(OUT.value)
    if out.exists() or out.with_name(out.name + ".json").exists():
      _fail(f"--out={out} already exists (or its .json); choose another path")
    try:
      out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
      _fail(f"--out={out}: cannot create its folder ({e.strerror})")
  try:
    exported, record = export.export_run(WORKDIR.value, step)
  except errors.ConfigError as e:
    _fail(f"--{e}")
  out = OUT.value or f"{WORKDIR.value}/export/step_{record['step']}.jax_exported"
  print(json.dumps({"path": str(export.save(exported, record, out)), **record}))


if __name__ == "__main__":
  app.run(main)
