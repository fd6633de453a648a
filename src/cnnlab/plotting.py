"""Figures from run outputs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save(fig, out_path, dpi: int = 100) -> str:
  """Lays out ``fig``, writes it to ``out_path`` (folders made), closes it; returns the path."""
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  fig.tight_layout()
  fig.savefig(out_path, dpi=dpi)
  plt.close(fig)
  return str(out_path)


def plot_metrics(rows: list[dict], out_path: str, title: str = "") -> str:
  """Train/eval loss and accuracy vs step from ``metrics.jsonl`` rows; writes a PNG."""
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for kind, style in (("train", "-"), ("eval", "o-")):
    pts = [r for r in rows if r.get("kind") == kind]
    if not pts:
      continue
    steps = [r["step"] for r in pts]
    axes[0].plot(steps, [r["loss"] for r in pts], style, label=kind, ms=3)
    axes[1].plot(steps, [100 * r["accuracy"] for r in pts], style, label=kind, ms=3)
  for ax, name in zip(axes, ("loss", "accuracy (%)")):
    ax.set_xlabel("step")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
    ax.legend()
  if title:
    fig.suptitle(title)
  return save(fig, out_path, dpi=110)


def bar_chart(labels: list[str], values: list[float], ylabel: str, out_path: str,
              fmt: str = "%.0f", hline: float | None = None) -> str:
  """A labelled bar chart (benchmarks), optionally with a reference line; writes a PNG."""
  fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 3.6))
  bars = ax.bar(range(len(values)), values, color="#4878a8")
  ax.bar_label(bars, fmt=fmt, fontsize=8)
  if hline is not None:
    ax.axhline(hline, color="k", lw=0.8, ls="--")
  ax.set_xticks(range(len(labels)), labels, fontsize=8)
  ax.set_ylabel(ylabel)
  ax.grid(axis="y", alpha=0.3)
  return save(fig, out_path, dpi=110)


def sweep_plot(table: list[dict], x: str | None, metric: str, out_path: str) -> str:
  """``metric`` mean ± std against field ``x``; one line per value of the other fields."""
  fig, ax = plt.subplots(figsize=(6, 4))
  others = [k for k in table[0] if k not in (x, f"{metric}_mean", f"{metric}_std", "seeds")]
  lines: dict = {}
  for r in table:
    lines.setdefault(tuple(r[k] for k in others), []).append(r)
  for key, pts in lines.items():
    pts.sort(key=lambda r: r[x] if x else 0)
    xs = [r[x] if x else 0 for r in pts]
    numeric = all(isinstance(v, (int, float)) for v in xs)
    pos = xs if numeric else list(range(len(xs)))
    label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(others, key)) or metric
    ax.errorbar(pos, [r[f"{metric}_mean"] for r in pts], yerr=[r[f"{metric}_std"] for r in pts],
                marker="o", capsize=3, label=label)
    if not numeric:
      ax.set_xticks(pos, [str(v) for v in xs])
    elif min(xs) > 0 and max(xs) / min(xs) > 20:
      ax.set_xscale("log")
      ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
      ax.set_xticks(xs, [f"{v:g}" for v in xs])
  ax.set_xlabel(x or "")
  ax.set_ylabel(f"{metric} (mean ± std over seeds)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return save(fig, out_path, dpi=110)
