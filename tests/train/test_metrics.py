"""Metric sinks: the JSONL lines and TensorBoard's event file hold what was written; tensorboardX
is loaded without torch, which stays importable (docs/conventions.md, "tensorboardX and torch")."""

import json
import struct
import subprocess
import sys

from tensorboardX.proto import event_pb2

from conftest import REPO

CODE = """
import sys
from cnnlab.train import metrics
w = metrics.MetricWriter(sys.argv[1])
w.write("train", 1, {"loss": 0.5, "accuracy": float("nan")})
w.write("eval", 2, {"loss": 0.25})
w.close()
print("torch loaded:", "torch" in sys.modules)
import torch
print("torch imports:", torch.ones(2).sum().item())
"""


def _events(path):
  """The ``Event`` records of a TFRecord file: length (u64), its CRC, data, the data's CRC."""
  data, out = path.read_bytes(), []
  while data:
    (n,) = struct.unpack("<Q", data[:8])
    out.append(event_pb2.Event.FromString(data[12:12 + n]))
    data = data[16 + n:]
  return out


def test_scalars_in_both_sinks_and_torch_neither_loaded_nor_broken(tmp_path):
  (tmp_path / "tb").mkdir()
  out = subprocess.run([sys.executable, "-c", CODE, str(tmp_path)], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "torch loaded: False" in out.stdout and "torch imports: 2.0" in out.stdout
  rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert rows == [{"kind": "train", "step": 1, "loss": 0.5, "accuracy": None},
                  {"kind": "eval", "step": 2, "loss": 0.25}]
  (events,) = (tmp_path / "tb").glob("events.out.tfevents.*")
  scalars = {(v.tag, e.step): v.simple_value for e in _events(events) for v in e.summary.value}
  assert scalars == {("train/loss", 1): 0.5, ("eval/loss", 2): 0.25}  # NaN is not written
