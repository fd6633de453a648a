"""Timing for the ``scripts/bench_*.py`` benchmarks, and their result records (``cnnlab.report``
with the torch version and threads added to the machine description)."""

from __future__ import annotations

import statistics
import time

import jax

from cnnlab import report
from cnnlab.report import markdown_table  # noqa: F401  (benchmarks print tables)


def median_seconds(fn, *, warmup: int = 2, iters: int = 10, warmup_s: float = 0.0) -> float:
  """Median wall time of ``fn()`` (its outputs are waited for with ``block_until_ready``) over
  ``iters`` calls, after ``warmup`` calls and at least ``warmup_s`` seconds of calls: after an
  idle spell (:data:`SETTLE_S`) torch's first calls pay for waking its OpenMP team (6 and 3 ms
  against 0.3 for a 56x56x64 depthwise forward on CPU E)."""
  start, done = time.perf_counter(), 0
  while done < warmup or time.perf_counter() - start < warmup_s:
    jax.block_until_ready(fn())
    done += 1
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


# Seconds each entry of :func:`paired_rounds` waits before it runs. torch's OpenMP runtime
# (libgomp) keeps its worker threads spinning for ~8 ms after a parallel call returns (measured on
# CPU E; XLA's pool threads for ~0.1 ms), so whatever ran next had one core fewer: the entry timed
# right after torch's lost a third of its speed on a 2 ms call (docs/performance.md, "torch's
# spinning workers").
SETTLE_S = 0.05


def paired_rounds(fns: dict, rounds: int, settle: float = SETTLE_S) -> dict[str, list]:
  """``{name: [fns[name]() of each round]}``: ``rounds`` rounds, each calling every entry once in
  an order rotated by one per round, so that a slow spell of the machine falls on the reference
  and the candidates alike instead of on whichever ran then; each call after ``settle`` seconds
  of sleep (:data:`SETTLE_S`), so that none runs while the one before it still occupies cores."""
  names = list(fns)
  out = {n: [] for n in names}
  for r in range(rounds):
    for n in names[r % len(names):] + names[:r % len(names)]:
      time.sleep(settle)
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
