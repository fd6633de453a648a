"""Timing for the ``scripts/bench_*.py`` benchmarks, and their result records (``cnnlab.report``
with the torch version and threads added to the machine description)."""

from __future__ import annotations

import statistics
import time

import jax

from cnnlab import report
from cnnlab.report import markdown_table  # noqa: F401  (benchmarks print tables)


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


def median_and_spread(values) -> tuple[float, float]:
  """The median of repeated measurements and their spread, ``(max - min) / median``: what every
  benchmark reports beside a rate or a ratio."""
  median = statistics.median(values)
  return median, (max(values) - min(values)) / median


def paired_rounds(fns: dict, rounds: int) -> dict[str, list]:
  """``{name: [fns[name]() of each round]}``: ``rounds`` rounds, each calling every entry once in
  an order rotated by one per round, so that a slow spell of the machine falls on the reference
  and the candidates alike instead of on whichever ran then."""
  names = list(fns)
  out = {n: [] for n in names}
  for r in range(rounds):
    for n in names[r % len(names):] + names[:r % len(names)]:
      out[n].append(fns[n]())
  return out


def ratio_per_round(num, den) -> tuple[float, float]:
  """:func:`median_and_spread` of the per-round ratios ``num[r] / den[r]`` of two entries of
  :func:`paired_rounds`: a ratio between two measurements of the same round."""
  return median_and_spread([a / b for a, b in zip(num, den)])


def machine() -> dict:
  import torch  # noqa: PLC0415 - the reference; a test dependency
  return {**report.machine(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def write(workdir: str, name: str, rows: list[dict], columns: list[str], extra=None,
          markdown: str | None = None) -> dict:
  """``cnnlab.report.write`` with this machine description (torch included)."""
  return report.write(workdir, name, rows, columns, extra=extra, markdown=markdown,
                      machine_info=machine())
