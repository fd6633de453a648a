"""Metric sinks: ``WORKDIR/metrics.jsonl`` (one JSON object per line, ``kind`` = train/eval) and
TensorBoard event files (tensorboardX) under ``WORKDIR/tb``. Only process 0 writes."""

from __future__ import annotations

import json
import os

import jax
from tensorboardX import SummaryWriter


class MetricWriter:

  def __init__(self, workdir: str):
    self.enabled = jax.process_index() == 0
    if self.enabled:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
      self._tb = SummaryWriter(os.path.join(workdir, "tb"))

  def write(self, kind: str, step: int, values: dict) -> None:
    if not self.enabled:
      return
    self._jsonl.write(json.dumps({"kind": kind, "step": step, **values}) + "\n")
    self._jsonl.flush()
    for k, v in values.items():
      self._tb.add_scalar(f"{kind}/{k}", v, step)

  def close(self) -> None:
    if self.enabled:
      self._jsonl.close()
      self._tb.close()


def read(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f if line.strip()]
