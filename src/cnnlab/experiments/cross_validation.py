"""k-fold cross-validation summary of a finished sweep over the folds (e.g.
``configs/sequence/kim_cnn_mr.py``'s ``data.fold`` sweep).

Reads ``results.csv`` (``cnnlab.sweep.collect``) in ``config.sweep_workdir``: one finished row
per fold with its eval ``config.metric``; writes ``cross_validation.{json,md}`` in the workdir:
the metric (%) per fold and its mean ± std over the folds (population std, ``ddof=0``, as the
sweep summaries).
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from cnnlab.experiments import _sweep_results
from cnnlab.report import markdown_table
from cnnlab.train.errors import ConfigError


def summarize(rows: list[dict], metric: str, fold_field: str) -> dict:
  """``{folds, mean, std, per_fold}`` of ``metric`` (in %) over the finished ``rows``."""
  per_fold = {int(r[fold_field]): 100.0 * float(r[metric]) for r in rows}
  if not per_fold:
    return {}
  v = np.array(list(per_fold.values()))
  return {"folds": len(v), "mean": float(v.mean()), "std": float(v.std()),
          "per_fold": dict(sorted(per_fold.items()))}


def run(config, workdir: str) -> dict:
  csv_path = pathlib.Path(config.sweep_workdir, "results.csv")
  if not csv_path.exists():
    raise ConfigError(f"config.sweep_workdir={config.sweep_workdir!r} is invalid: {csv_path} not "
                      f"found; run the sweep first (scripts/sweep.py "
                      f"--config={config.sweep_config})")
  rows = _sweep_results.read_finished(csv_path, {config.fold_field, config.metric, "status"},
                                      config.sweep_config)
  table = summarize(rows, config.metric, config.fold_field)
  if not table:
    raise ConfigError(f"config.sweep_workdir={config.sweep_workdir!r} is invalid: {csv_path} has "
                      "no finished folds")
  os.makedirs(workdir, exist_ok=True)
  pathlib.Path(workdir, "cross_validation.json").write_text(json.dumps(table, indent=2))
  rows = [{"fold": k, f"{config.metric} (%)": v} for k, v in table["per_fold"].items()]
  pathlib.Path(workdir, "cross_validation.md").write_text(
      f"{config.metric} (%) over {table['folds']} folds: {table['mean']:.1f} ± "
      f"{table['std']:.1f}\n\n{markdown_table(rows, list(rows[0]))}\n")
  return {f"{config.metric}_mean": table["mean"], f"{config.metric}_std": table["std"],
          "folds": table["folds"]}
