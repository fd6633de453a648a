"""Eval error against batch size for each normalisation (Wu & He 2018, fig. 1), from a sweep.

Reads the ``results.csv`` that ``scripts/sweep.py`` collects in ``config.sweep_workdir`` for
``configs/experiments/norm_batch_size.py`` (columns ``model.norm``, ``batch_size``, ``seed``,
``status``, ``accuracy``) and writes ``norm_batch_size.{md,json,png}``: eval error (%) = 100 x
(1 - accuracy), mean ± std over seeds, one row / line per norm, batch sizes on a log2 axis.
"""

from __future__ import annotations

import collections
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
import numpy as np  # noqa: E402

from cnnlab import plotting, report
from cnnlab.experiments import _sweep_results

NORM_ORDER = ("batch", "group", "layer", "instance", "none")
LABELS = {"batch": "BatchNorm", "group": "GroupNorm", "layer": "LayerNorm",
          "instance": "InstanceNorm", "none": "no norm"}


def read_results(csv_path) -> list[dict]:
  """Finished points of the sweep as ``{norm, batch_size, seed, error}`` (error in %)."""
  rows = _sweep_results.read_finished(csv_path, {"model.norm", "batch_size", "status"},
                              "norm_batch_size")
  return [{"norm": r["model.norm"], "batch_size": int(r["batch_size"]),
           "seed": int(r.get("seed") or 0), "error": 100.0 * (1.0 - float(r["accuracy"]))}
          for r in rows]


def error_table(rows: list[dict]) -> dict[tuple[str, int], dict]:
  """``{(norm, batch_size): {mean, std, seeds}}`` of the eval error (%) over seeds."""
  groups = collections.defaultdict(list)
  for r in rows:
    groups[(r["norm"], r["batch_size"])].append(r["error"])
  return {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "seeds": len(v)}
          for k, v in sorted(groups.items())}


def _axes(table):
  norms = sorted({n for n, _ in table}, key=lambda n: (NORM_ORDER + (n,)).index(n))
  return norms, sorted({b for _, b in table})


def markdown(table: dict) -> str:
  """Norms as rows, batch sizes as columns; cells ``mean`` or ``mean ± std`` (several seeds)."""
  norms, sizes = _axes(table)

  def cell(k):
    if k not in table:
      return "–"
    t = table[k]
    return f"{t['mean']:.2f}" + (f" ± {t['std']:.2f}" if t["seeds"] > 1 else "")

  seeds = sorted({t["seeds"] for t in table.values()})
  lines = ["| eval error (%) | " + " | ".join(f"B = {b}" for b in sizes) + " |",
           "|---|" + "---:|" * len(sizes)]
  lines += [f"| {LABELS.get(n, n)} | " + " | ".join(cell((n, b)) for b in sizes) + " |"
            for n in norms]
  return "\n".join(lines) + f"\n\nSeeds per cell: {', '.join(map(str, seeds))}.\n"


def plot(table: dict, out_path, title: str = "") -> str:
  """Eval error (%) against batch size (log2 axis), one line per norm; log y for a wide range."""
  norms, sizes = _axes(table)
  fig, ax = plt.subplots(figsize=(6, 4))
  for n in norms:
    bs = [b for b in sizes if (n, b) in table]
    ax.errorbar(bs, [table[(n, b)]["mean"] for b in bs], yerr=[table[(n, b)]["std"] for b in bs],
                marker="o", capsize=3, label=LABELS.get(n, n))
  ax.set_xscale("log", base=2)
  ax.set_xticks(sizes, [str(b) for b in sizes])
  means = [t["mean"] for t in table.values() if t["mean"] > 0]
  if means and max(means) / min(means) > 5:
    ax.set_yscale("log")
    for axis_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
      axis_formatter(ticker.FormatStrFormatter("%g"))
  ax.set_xlabel("batch size (per device = whole batch)")
  ax.set_ylabel("eval error (%)")
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  if title:
    ax.set_title(title, fontsize=10)
  return plotting.save(fig, out_path, dpi=100)


def run(config, workdir: str) -> dict:
  """Writes ``norm_batch_size.{md,json,png}`` into ``workdir`` from the results.csv of the sweep
  in ``config.sweep_workdir`` (figure title ``config.title``); returns the table rows."""
  table = _sweep_results.finished_table(config.sweep_workdir, read_results, error_table)
  rows = [{"norm": n, "batch_size": b, **t} for (n, b), t in table.items()]
  md = markdown(table)
  report.write(workdir, "norm_batch_size", rows, markdown=md)
  plot(table, os.path.join(workdir, "norm_batch_size.png"), title=config.title)
  print(md)
  return {"rows": rows}
