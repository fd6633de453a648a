"""Metric sinks: ``WORKDIR/metrics.jsonl`` (one strict-JSON object per line, ``kind`` =
train/eval; NaN/inf written as ``null``) and TensorBoard event files (tensorboardX) under
``WORKDIR/tb``. Only process 0 writes."""

from __future__ import annotations

import math

import jax

from cnnlab.train import workdir as workdir_lib


class MetricWriter:

  def __init__(self, workdir: str):
    self.enabled = jax.process_index() == 0
    if self.enabled:
      from tensorboardX import SummaryWriter  # noqa: PLC0415 - imports torch if installed
      self._jsonl = open(workdir_lib.metrics_path(workdir), "a")  # noqa: SIM115
      self._tb = SummaryWriter(str(workdir_lib.tensorboard_dir(workdir)))

  def write(self, kind: str, step: int, values: dict) -> None:
    if not self.enabled:
      return
    self._jsonl.write(workdir_lib.metrics_line({"kind": kind, "step": step, **values}))
    self._jsonl.flush()
    for k, v in values.items():
      if isinstance(v, (int, float)) and math.isfinite(v):
        self._tb.add_scalar(f"{kind}/{k}", v, step)

  def close(self) -> None:
    if self.enabled:
      self._jsonl.close()
      self._tb.close()
