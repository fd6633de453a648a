"""``scripts/bench_train.py`` and ``cnnlab.bench.train_throughput``: the paired windows, the
torch side in 3D with channels_last and in bfloat16, the ``torch.compile`` row and its fallback,
the GPU mode's MFU against LeNet-5's hand-counted multiply-adds, and (slow) smoke runs of the
depthwise-heavy and 3D cases at tiny sizes: rows, summary, JSON and PNG."""

import json
import subprocess
import sys

import matplotlib.image
import pytest
import torch

from cnnlab.bench import report, torch_models, train_throughput
from conftest import REPO

TINY = dict(batch_size=2)


def test_windows_are_timed_in_rotated_rounds_and_ratios_per_round(monkeypatch):
  """A fake clock: every window of round 2 is slow, so rates differ by round while the per-round
  ratios do not; rates = steps x batch / seconds."""
  clock, order = [0.0], []
  monkeypatch.setattr(train_throughput.time, "perf_counter", lambda: clock[0])

  def runner(name, seconds_per_step):
    def run(n):
      clock[0] += seconds_per_step[order.count(name)] * n
      order.append(name)
    return run

  runs = {"ref": runner("ref", [1.0, 4.0, 1.0]), "fast": runner("fast", [0.5, 2.0, 0.25])}
  r = train_throughput.paired_windows(runs, steps=2, repeats=3, batch_size=4, warmup=0)
  assert order == ["ref", "fast", "fast", "ref", "ref", "fast"]
  assert r["ref"]["rates"] == [4.0, 1.0, 4.0] and r["fast"]["rates"] == [8.0, 2.0, 16.0]
  assert (r["ref"]["img_per_s"], r["ref"]["spread"]) == (4.0, 0.75)
  assert report.ratio_per_round(r["fast"]["rates"], r["ref"]["rates"]) == (2.0, 1.0)


def test_each_window_starts_with_untimed_steps(monkeypatch):
  """A fake clock where an entry's first step after the other's window takes 10 s and every
  other step 1 s: the rates leave those first steps out."""
  clock, last = [0.0], [None]
  monkeypatch.setattr(train_throughput.time, "perf_counter", lambda: clock[0])

  def runner(name):
    def run(n):
      clock[0] += n + (9.0 if last[0] != name else 0.0)
      last[0] = name
    return run

  r = train_throughput.paired_windows({"a": runner("a"), "b": runner("b")}, steps=3, repeats=2,
                                      batch_size=2)
  assert r["a"]["rates"] == r["b"]["rates"] == [2.0, 2.0]


def test_torch_3d_channels_last_step_trains():
  """A 2-stage C3D on 16x32x32 clips in NDHWC memory format: the step runs and moves weights."""
  net = torch_models.C3D(widths=(4, 8), depths=(1, 1))
  before = net.fc.weight.detach().clone()
  steps = train_throughput.torch_steps(net, (1, 16, 32, 32), channels_last=True, **TINY)
  assert steps.compile_s == 0.0 and steps.status == "compiled"
  assert not torch.equal(before, net.fc.weight)


def test_failed_torch_compile_becomes_a_reason(monkeypatch):
  """A compile failure (raised lazily at the first call, as Dynamo / Inductor do) gives no
  timing and the exception's first line as the reason."""

  def broken_compile(module):
    def call(*args):
      raise RuntimeError("InductorError: C++ compile failed\ndetails")
    return call

  monkeypatch.setattr(torch, "compile", broken_compile)
  steps = train_throughput.torch_compiled_steps(torch_models.LeNet5(), (1, 32, 32), **TINY)
  assert steps == (None, None, "not compiled: RuntimeError: InductorError: C++ compile failed",
                   None)


def test_torch_bfloat16_autocast_step_trains():
  net = torch_models.LeNet5()
  before = net.output.weight.detach().clone()
  train_throughput.torch_steps(net, (1, 32, 32), dtype="bfloat16", **TINY)
  assert net.output.weight.dtype == torch.float32
  assert not torch.equal(before, net.output.weight)


def test_gpu_mode_mfu_from_lenet_macs(tmp_path):
  """``--torch=false --dtype=bfloat16`` (the GPU mode, here on the CPU): no torch timing, and
  each cnnlab row's MFU is img/s x 6 x LeNet-5's 416,520 multiply-adds per image (conv 117,600
  + 240,000, dense 48,000 + 10,080 + 840) / the recorded peak."""
  cmd = [sys.executable, str(REPO / "scripts" / "bench_train.py"), f"--workdir={tmp_path}",
         "--cases=lenet5", "--impls=lax", "--steps=1", "--repeats=1", "--batch_size=4",
         "--dtype=bfloat16", "--torch=false", "--compile_times=false"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-3000:]
  data = json.loads((tmp_path / "bench_train.json").read_text())
  assert data["dtype"] == "bfloat16" and data["peak_tflops"] > 0
  rows = {(r["framework"], r["impl"]): r for r in data["rows"]}
  assert set(rows) == {("torch eager", "not run"), ("cnnlab jit", "lax"), ("cnnlab jit", "auto")}
  assert rows["torch eager", "not run"]["img_per_s"] is None
  for impl in ("lax", "auto"):
    r = rows["cnnlab jit", impl]
    assert r["mfu"] == pytest.approx(r["img_per_s"] * 6 * 416_520 / (data["peak_tflops"] * 1e12))
  assert matplotlib.image.imread(tmp_path / "bench_train.png").shape[0] > 0


@pytest.mark.slow
def test_torch_compile_is_timed_apart_from_its_compile():
  steps = train_throughput.torch_compiled_steps(torch_models.LeNet5(), (1, 32, 32), **TINY)
  assert steps.status == "compiled" and steps.compile_s > 0
  r = train_throughput.paired_windows({"compiled": steps.run}, steps=1, repeats=1, batch_size=2)
  assert r["compiled"]["img_per_s"] > 0


@pytest.mark.slow  # 20-50 s a case on one core (jit compile of the train step)
@pytest.mark.parametrize("case", ["mobilenet_v2", "efficientnet_b0", "shufflenet_v2", "c3d"])
def test_smoke_run_of_new_case(case, tmp_path):
  cmd = [sys.executable, str(REPO / "scripts" / "bench_train.py"), f"--workdir={tmp_path}",
         f"--cases={case}", "--impls=lax,depthwise", "--steps=1", "--repeats=1",
         "--batch_size=2", "--input_size=32", "--compile_times=false", "--torch_compile=false"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-3000:]
  data = json.loads((tmp_path / "bench_train.json").read_text())
  rows = {(r["framework"], r["impl"]): r for r in data["rows"]}
  # depthwise serves only groups == C_in convs: every one of these nets has others, so skipped;
  # auto (the training configs' conv impl) is always timed, as the default.
  assert set(rows) == {("torch eager", "-"), ("cnnlab jit", "lax"), ("cnnlab jit", "auto")}
  assert rows["cnnlab jit", "auto"]["default"] and not rows["cnnlab jit", "lax"]["default"]
  assert all(r["img_per_s"] > 0 and r["case"] == case for r in rows.values())
  (s,) = data["summary"]
  eager = rows["torch eager", "-"]["img_per_s"]
  best = max(("lax", "auto"), key=lambda i: rows["cnnlab jit", i]["img_per_s"])
  assert s["default_impl"] == "auto" and s["best_impl"] == best and s["torch_compile"] == "not run"
  assert s["best_to_eager"] == pytest.approx(rows["cnnlab jit", best]["img_per_s"] / eager)
  assert matplotlib.image.imread(tmp_path / "bench_train.png").shape[0] > 0
