"""Reading a finished sweep's ``results.csv`` (written by ``cnnlab.sweep.collect``), for the
experiments that analyse a sweep (their config's ``sweep_workdir``)."""

from __future__ import annotations

import csv
import pathlib

from cnnlab.train.errors import ConfigError


def read_finished(csv_path, required: set[str], sweep: str) -> list[dict]:
  """The finished rows of a sweep's ``results.csv`` (strings, as written); a clear error if the
  file is missing or lacks the ``required`` columns of the named ``sweep``."""
  csv_path = pathlib.Path(csv_path)
  if not csv_path.exists():
    raise FileNotFoundError(f"{csv_path} not found: run the sweep first (scripts/sweep.py "
                            f"--config=configs/experiments/{sweep}.py)")
  with open(csv_path, newline="") as f:
    rows = list(csv.DictReader(f))
  missing = set(required) - set(rows[0] if rows else {})
  if missing:
    raise ValueError(f"{csv_path} lacks the columns {sorted(missing)}; is it the results.csv of "
                     f"the {sweep} sweep?")
  return [r for r in rows if r["status"] == "done"]


def finished_table(sweep_workdir, read, tabulate) -> dict:
  """``tabulate(read(SWEEP_WORKDIR/results.csv))`` for an analysis config's ``sweep_workdir``;
  a :class:`ConfigError` if the sweep has no finished points."""
  csv_path = pathlib.Path(sweep_workdir, "results.csv")
  table = tabulate(read(csv_path))
  if not table:
    raise ConfigError(f"config.sweep_workdir={str(sweep_workdir)!r} is invalid: {csv_path} has "
                      "no finished points")
  return table


def finished_points(sweep_workdir, sweep_config: str) -> list[pathlib.Path]:
  """The point folders of a sweep that hold a ``result.json``; a :class:`ConfigError` naming the
  sweep's command if there are none."""
  points = sorted(p.parent for p in pathlib.Path(sweep_workdir).glob("*/result.json"))
  if not points:
    raise ConfigError(f"config.sweep_workdir={str(sweep_workdir)!r} is invalid: no finished "
                      f"points; run the sweep first (scripts/sweep.py --config={sweep_config})")
  return points


def model_macs(point_config, input_shape) -> int:
  """Multiply-accumulates of the point's model on one ``input_shape`` example
  (``cnnlab.models.summary``)."""
  from cnnlab import models  # noqa: PLC0415 - JAX; only for the tables that count MACs
  from cnnlab.models import summary  # noqa: PLC0415
  kw = {k: v for k, v in point_config.model.items() if k != "name"}
  return summary.summarize(models.create(point_config.model.name, **kw), input_shape).total_macs
