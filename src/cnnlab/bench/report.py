"""Timing and report writing shared by the ``scripts/bench_*.py`` benchmarks."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time

import jax


def median_seconds(fn, *, warmup: int = 2, iters: int = 10) -> float:
  """Median wall time of ``fn()`` (its outputs are waited for with ``block_until_ready``)."""
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(iters):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def machine() -> dict:
  import torch  # the reference; a test dependency
  return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "jax": jax.__version__,
          "jax_backend": jax.default_backend(), "torch": torch.__version__,
          "torch_threads": torch.get_num_threads()}


def markdown_table(rows: list[dict], columns: list[str]) -> str:
  def fmt(v):
    if isinstance(v, float):
      return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return str(v)
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
  return "\n".join(lines)


def write(workdir: str, name: str, rows: list[dict], columns: list[str], extra=None) -> dict:
  """Writes ``name.json`` (rows + machine info) and ``name.md`` (table); returns the paths."""
  os.makedirs(workdir, exist_ok=True)
  paths = {"json": os.path.join(workdir, f"{name}.json"), "md": os.path.join(workdir, f"{name}.md")}
  with open(paths["json"], "w") as f:
    json.dump({"machine": machine(), "rows": rows, **(extra or {})}, f, indent=2)
  with open(paths["md"], "w") as f:
    f.write(markdown_table(rows, columns) + "\n")
  return paths
