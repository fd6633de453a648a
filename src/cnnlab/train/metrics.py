"""Metric sinks: ``WORKDIR/metrics.jsonl`` (one strict-JSON object per line, ``kind`` =
train/eval; NaN/inf written as ``null``) and TensorBoard event files (tensorboardX) under
``WORKDIR/tb``. Only process 0 writes."""

from __future__ import annotations

import math
import sys

import jax

from cnnlab.train import workdir as workdir_lib


def _summary_writer_class():
  """tensorboardX's ``SummaryWriter``, imported without torch: tensorboardX imports torch (about
  2 s) when it is installed, only to name it in type hints (docs/conventions.md, "tensorboardX
  and torch"). Unless torch is loaded already, the import sees it as absent; torch stays
  importable afterwards."""
  hide = "torch" not in sys.modules
  if hide:
    sys.modules["torch"] = None  # `import torch` raises ImportError while this entry stands
  try:
    from tensorboardX import SummaryWriter  # noqa: PLC0415 - heavy; only where metrics are written
  finally:
    if hide:
      del sys.modules["torch"]
  return SummaryWriter


class MetricWriter:

  def __init__(self, workdir: str):
    self.enabled = jax.process_index() == 0
    if self.enabled:
      self._jsonl = open(workdir_lib.metrics_path(workdir), "a")  # noqa: SIM115
      self._tb = _summary_writer_class()(str(workdir_lib.tensorboard_dir(workdir)))

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
