"""MLP vs 1D CNN on MNIST-1D with and without a fixed permutation of the positions, from a sweep.

Reads the ``results.csv`` that ``scripts/sweep.py`` collects in ``config.sweep_workdir`` for
``configs/experiments/permutation_mnist1d.py`` (columns ``model.name``,
``data.permute_features``, ``seed``, ``status``, ``accuracy``) and writes
``permutation.{md,json,png}``: test accuracy (%), mean ± std over seeds, per model x
(permuted or not), beside the published MNIST-1D figures (Greydanus 2020, the repo README's
table: logistic regression, MLP, CNN, GRU on MNIST-1D and on its "shuffle" variant).
"""

from __future__ import annotations

import collections
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cnnlab import plotting, report
from cnnlab.experiments import _sweep_results

# github.com/greydanus/mnist1d README, "Comparing MNIST and MNIST-1D": test accuracy (%) on
# MNIST-1D as given, and with the spatial dimension shuffled (a fixed permutation).
PUBLISHED = {"logistic": {False: 32.0, True: 32.0}, "mlp": {False: 68.0, True: 68.0},
             "cnn1d": {False: 94.0, True: 56.0}, "gru": {False: 91.0, True: 57.0}}
LABELS = {"logistic": "logistic regression", "mlp": "MLP", "cnn1d": "CNN (1D)", "gru": "GRU"}
MODEL_ORDER = ("logistic", "mlp", "cnn1d", "gru")


def _bool(s: str) -> bool:
  if s not in ("True", "False"):
    raise ValueError(f"data.permute_features must be 'True' or 'False' in the csv; got {s!r}")
  return s == "True"


def read_results(csv_path) -> list[dict]:
  """Finished points as ``{model, permuted, seed, accuracy}`` (accuracy in %)."""
  rows = _sweep_results.read_finished(csv_path, {"model.name", "data.permute_features", "status"},
                              "permutation_mnist1d")
  return [{"model": r["model.name"], "permuted": _bool(r["data.permute_features"]),
           "seed": int(r.get("seed") or 0), "accuracy": 100.0 * float(r["accuracy"])}
          for r in rows]


def accuracy_table(rows: list[dict]) -> dict[tuple[str, bool], dict]:
  """``{(model, permuted): {mean, std, seeds, per_seed}}`` of the test accuracy (%)."""
  groups = collections.defaultdict(dict)
  for r in rows:
    groups[(r["model"], r["permuted"])][r["seed"]] = r["accuracy"]
  return {k: {"mean": float(np.mean(list(v.values()))), "std": float(np.std(list(v.values()))),
              "seeds": len(v), "per_seed": dict(sorted(v.items()))}
          for k, v in sorted(groups.items())}


def _models(table):
  found = {m for m, _ in table}
  return sorted(found, key=lambda m: (MODEL_ORDER + tuple(sorted(found))).index(m))


def markdown(table: dict) -> str:
  """One row per model (ours, then the published ones we did not run); ours as mean ± std."""

  def ours(k):
    t = table.get(k)
    if t is None:
      return "–"
    seeds = ", ".join(f"{a:.1f}" for a in t["per_seed"].values())
    return f"{t['mean']:.1f} ± {t['std']:.1f} ({seeds})"

  def pub(m, p):
    return f"{PUBLISHED[m][p]:.0f}" if m in PUBLISHED else "–"

  lines = ["| model | ours: unpermuted | ours: permuted | published: MNIST-1D | "
           "published: shuffled |", "|---|---:|---:|---:|---:|"]
  models = _models(table) + [m for m in MODEL_ORDER if m not in {k[0] for k in table}]
  for m in models:
    lines.append(f"| {LABELS.get(m, m)} | {ours((m, False))} | {ours((m, True))} | "
                 f"{pub(m, False)} | {pub(m, True)} |")
  return ("\n".join(lines) + "\n\nTest accuracy (%) on the 1,000 MNIST-1D test signals; ours: "
          "mean ± std over seeds (per-seed values in brackets); published: Greydanus 2020, "
          "github.com/greydanus/mnist1d README.\n")


def plot(table: dict, out_path, title: str = "") -> str:
  """Grouped bars: per model, unpermuted and permuted (mean ± std); published values as ticks."""
  models = _models(table)
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  width = 0.38
  for j, (permuted, color) in enumerate(((False, "#4878a8"), (True, "#e1812c"))):
    xs = [i + (j - 0.5) * width for i in range(len(models))]
    keys = [(m, permuted) for m in models]
    means = [table[k]["mean"] if k in table else np.nan for k in keys]
    stds = [table[k]["std"] if k in table else 0.0 for k in keys]
    bars = ax.bar(xs, means, width, yerr=stds, capsize=3, color=color,
                  label="permuted" if permuted else "unpermuted")
    ax.bar_label(bars, fmt="%.1f", fontsize=9, label_type="center", color="white")
    pub = [(x, PUBLISHED[m][permuted]) for x, m in zip(xs, models) if m in PUBLISHED]
    if pub:
      ax.scatter(*zip(*pub), marker="_", s=400, linewidths=2, color="black", zorder=3,
                 label="published (Greydanus 2020)" if permuted else None)
  ax.set_xticks(range(len(models)), [LABELS.get(m, m) for m in models])
  ax.set_ylabel("test accuracy (%)")
  ax.set_ylim(0, 122)
  ax.set_yticks(range(0, 101, 20))
  ax.axhline(10, color="gray", lw=0.8, ls=":", label="chance (10%)")
  ax.grid(axis="y", alpha=0.3)
  ax.legend(fontsize=8, loc="upper center", ncol=2)
  if title:
    ax.set_title(title, fontsize=10)
  return plotting.save(fig, out_path, dpi=100)


def run(config, workdir: str) -> dict:
  """Writes ``permutation.{md,json,png}`` into ``workdir`` from the results.csv of the sweep in
  ``config.sweep_workdir``; returns the table rows."""
  table = _sweep_results.finished_table(config.sweep_workdir, read_results, accuracy_table)
  rows = [{"model": m, "permuted": p, **t} for (m, p), t in table.items()]
  md = markdown(table)
  report.write(workdir, "permutation", rows, markdown=md, extra={"published": PUBLISHED})
  plot(table, os.path.join(workdir, "permutation.png"),
       title="MNIST-1D: a fixed permutation of the 40 positions")
  print(md)
  return {"rows": rows}
