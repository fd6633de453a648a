"""The lecture's transfer-learning scenarios: accuracy against labels per class, from a sweep.

Reads the ``results.csv`` that ``scripts/sweep.py`` collects in ``config.sweep_workdir`` for
``configs/transfer/scenarios.py`` (columns ``:arg`` = ``target=T,approach=A``,
``data.labels_per_class`` (0 = all), ``seed``, ``status``, ``accuracy``, ``wall_s``) and writes
``transfer_scenarios.{md,json,png}``: eval accuracy (%) mean ± std over seeds per target x
approach x labels per class (one table per target, the lecture's choice for the small and the
large case marked), and one learning-curve panel per target. With ``config.pretrain_workdir``
set, the source run's final eval accuracy is stated too.
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
from cnnlab.train import workdir as workdir_lib

ARG = ":arg"
TARGETS = {"digits": "sklearn digits (similar domain)",
           "fsdd": "FSDD log-mel, unseen speaker (very different domain)"}
APPROACHES = {"scratch": "from scratch", "probe": "linear probe (F6)",
              "early": "linear on C5 (earlier)", "finetune": "fine-tune all"}
COLORS = {"scratch": "C0", "probe": "C1", "early": "C2", "finetune": "C3"}  # same in every panel
# The lecture's table: (target, small?) -> approach.
LECTURE = {("digits", True): "probe", ("digits", False): "finetune",
           ("fsdd", True): "early", ("fsdd", False): "finetune"}
SMALL = (1, 5, 10)  # labels per class counted as a "small" target here


def _arg(s: str) -> dict:
  out = dict(kv.split("=", 1) for kv in s.split(",") if "=" in kv)
  if "target" not in out or "approach" not in out:
    raise ValueError(f"column {ARG!r} must hold 'target=T,approach=A'; got {s!r}")
  return out


def read_results(csv_path) -> list[dict]:
  """Finished points as ``{target, approach, labels, seed, accuracy, wall_s}`` (accuracy in %,
  labels per class 0 = all)."""
  rows = _sweep_results.read_finished(csv_path, {ARG, "data.labels_per_class", "status"},
                                      "transfer/scenarios")
  out = []
  for r in rows:
    a = _arg(r[ARG])
    out.append({"target": a["target"], "approach": a["approach"],
                "labels": int(r["data.labels_per_class"]), "seed": int(r.get("seed") or 0),
                "accuracy": 100.0 * float(r["accuracy"]),
                "wall_s": float(r.get("wall_s") or 0.0)})
  return out


def accuracy_table(rows: list[dict]) -> dict[tuple[str, str, int], dict]:
  """``{(target, approach, labels): {mean, std, seeds, wall_s}}`` over seeds (population std)."""
  groups = collections.defaultdict(list)
  for r in rows:
    groups[(r["target"], r["approach"], r["labels"])].append(r)
  return {k: {"mean": float(np.mean([r["accuracy"] for r in v])),
              "std": float(np.std([r["accuracy"] for r in v])), "seeds": len(v),
              "wall_s": float(sum(r["wall_s"] for r in v))}
          for k, v in sorted(groups.items())}


def _labels(table):
  """Labels per class in plot order: 1, 5, ..., then 0 (= all) last."""
  return sorted({k[2] for k in table}, key=lambda n: (n == 0, n))


def _targets(table):
  found = {k[0] for k in table}
  return [t for t in TARGETS if t in found] + sorted(found - set(TARGETS))


def _approaches(table, target):
  """The approaches run on ``target``, in :data:`APPROACHES` order, then any others."""
  found = {a for t, a, _ in table if t == target}
  return [a for a in APPROACHES if a in found] + sorted(found - set(APPROACHES))


def _label(n: int) -> str:
  return "all" if n == 0 else str(n)


def markdown(table: dict) -> str:
  """Per target: approaches as rows, labels per class as columns, ``mean ± std``; the lecture's
  approach for a small (<= 10 labels per class) / large (all) target in bold."""
  labels = _labels(table)
  seeds = sorted({t["seeds"] for t in table.values()})
  out = []
  for target in _targets(table):
    out += [f"**{TARGETS.get(target, target)}**", "",
            "| eval accuracy (%) | " + " | ".join(_label(n) for n in labels) + " |",
            "|---|" + "---:|" * len(labels)]
    for a in _approaches(table, target):
      cells = []
      for n in labels:
        t = table.get((target, a, n))
        cell = "–" if t is None else f"{t['mean']:.1f} ± {t['std']:.1f}"
        lecture = (n in SMALL and LECTURE.get((target, True)) == a) or (
            n == 0 and LECTURE.get((target, False)) == a)
        cells.append(f"**{cell}**" if t is not None and lecture else cell)
      out.append(f"| {APPROACHES.get(a, a)} | " + " | ".join(cells) + " |")
    out.append("")
  wall = sum(t["wall_s"] for t in table.values())
  return "\n".join(out) + (
      f"\nColumns: labels per class. Mean ± std (population) over seeds; seeds per cell: "
      f"{', '.join(map(str, seeds))}. Bold: the lecture's choice for a small (1-10 labels per "
      f"class) or large (all) target. Jobs' wall time in total: {wall / 60:.1f} min.\n")


def plot(table: dict, out_path, title: str = "") -> str:
  """One panel per target: accuracy (%) against labels per class, one line per approach."""
  labels = _labels(table)
  targets = _targets(table)
  fig, axes = plt.subplots(1, len(targets), figsize=(5.2 * len(targets), 3.9), squeeze=False)
  xs = np.arange(len(labels))
  for ax, target in zip(axes[0], targets):
    for a in _approaches(table, target):
      pts = [(x, table[(target, a, n)]) for x, n in zip(xs, labels) if (target, a, n) in table]
      ax.errorbar([x for x, _ in pts], [t["mean"] for _, t in pts],
                  yerr=[t["std"] for _, t in pts], marker="o", capsize=3,
                  color=COLORS.get(a), label=APPROACHES.get(a, a))
    ax.axhline(10, color="gray", lw=0.8, ls=":", label="chance")
    ax.set_xticks(xs, [_label(n) for n in labels])
    ax.set_xlabel("labels per class")
    ax.set_ylabel("eval accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(TARGETS.get(target, target), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  return plotting.save(fig, out_path, dpi=100)


def source_accuracy(pretrain_workdir) -> float | None:
  """The source run's last eval accuracy (%), or None without such a run."""
  if not pretrain_workdir or not os.path.isdir(pretrain_workdir):
    return None
  evals = [r for r in workdir_lib.read_metrics(pretrain_workdir) if r["kind"] == "eval"]
  return 100.0 * evals[-1]["accuracy"] if evals else None


def run(config, workdir: str) -> dict:
  """Writes ``transfer_scenarios.{md,json,png}`` into ``workdir`` from the results.csv of the
  sweep in ``config.sweep_workdir``; returns the table rows."""
  table = _sweep_results.finished_table(config.sweep_workdir, read_results, accuracy_table)
  rows = [{"target": t, "approach": a, "labels_per_class": n, **v}
          for (t, a, n), v in table.items()]
  md = markdown(table)
  source = source_accuracy(config.get("pretrain_workdir", ""))
  if source is not None:
    md += f"\nSource network (LeNet-5 on mnist8k): eval accuracy {source:.2f} %.\n"
  report.write(workdir, "transfer_scenarios", rows, markdown=md,
               extra={"source_accuracy": source})
  plot(table, os.path.join(workdir, "transfer_scenarios.png"),
       title="LeNet-5 pretrained on mnist8k: transfer vs labels per class")
  print(md)
  return {"rows": rows}
