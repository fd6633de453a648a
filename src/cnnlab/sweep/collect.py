"""Collects a sweep's point results into ``results.csv``, ``results.md`` and ``results.png``
(the metric against the first swept field other than ``seed``, mean ± std over seeds, one line
per combination of the remaining fields)."""

from __future__ import annotations

import collections
import csv
import json
import pathlib

import numpy as np

from cnnlab import plotting
from cnnlab.report import markdown_table
from cnnlab.train.errors import ConfigError


def _rows(workdir: pathlib.Path) -> tuple[list[dict], list[str]]:
  """One row per point (its overrides, ``status`` and its result or log tail), and the swept
  field names."""
  rows, fields = [], {}
  for d in sorted(p for p in workdir.iterdir() if (p / "point.json").exists()):
    overrides = json.loads((d / "point.json").read_text())["overrides"]
    # JSON turns tuple values (e.g. model.hidden) into lists; group by them as tuples.
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    fields.update(dict.fromkeys(overrides))
    row = {"point": d.name, **overrides}
    if (d / "result.json").exists():
      row.update(status="done", **json.loads((d / "result.json").read_text()))
    else:
      log = d / "log.txt"
      tail = log.read_text().strip().splitlines()[-8:] if log.exists() else ["(no log)"]
      row.update(status="failed", log_tail="\n".join(tail))
    rows.append(row)
  return rows, list(fields)


def summarize(rows: list[dict], fields: list[str], metric: str) -> tuple[str | None, list[dict]]:
  """Mean ± std of ``metric`` over seeds for each combination of the other swept ``fields``."""
  fields = [f for f in fields if f != "seed"]
  groups = collections.defaultdict(list)
  for r in rows:
    if r["status"] == "done":
      if metric not in r:
        numbers = sorted(k for k, v in r.items() if isinstance(v, (int, float)) and k != "wall_s")
        raise ConfigError(f"--metric={metric} is invalid: point {r['point']} has no {metric!r} "
                         f"(allowed: {', '.join(numbers)}); its results are in results.csv")
      groups[tuple(r.get(f) for f in fields)].append(r[metric])
  table = [{**dict(zip(fields, key)), f"{metric}_mean": float(np.mean(v)),
            f"{metric}_std": float(np.std(v)), "seeds": len(v)} for key, v in groups.items()]
  return (fields[0] if fields else None), table


def collect(workdir, metric: str = "accuracy") -> list[dict]:
  workdir = pathlib.Path(workdir)
  rows, fields = _rows(workdir)
  columns = list(dict.fromkeys(k for r in rows for k in r if k != "log_tail"))
  with open(workdir / "results.csv", "w", newline="") as f:
    w = csv.DictWriter(f, columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
  x, table = summarize(rows, fields, metric)
  if table:
    cols = list(table[0])
    (workdir / "results.md").write_text(markdown_table(table, cols) + "\n")
    plotting.sweep_plot(table, x, metric, str(workdir / "results.png"))
  return rows
