"""Sweeps: declarations, the local and submitit executors, resume after a kill, failures."""

import csv
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cnnlab import sweep
from cnnlab.sweep import job
from cnnlab.sweep import runner
from cnnlab.train.errors import ConfigError
from conftest import REPO

CONFIG = str(REPO / "configs" / "mlp_digits.py")
FOUR = sweep.product(sweep.grid("optimizer.learning_rate", [1e-3, 3e-3]),
                     sweep.grid("seed", [0, 1]))


def test_declarations():
  a, b = [1, 2], ["x", "y", "z"]
  assert sweep.product(sweep.grid("a", a), sweep.grid("b", b)) == [
      {"a": i, "b": j} for i, j in itertools.product(a, b)]
  assert sweep.zip_(sweep.grid("a", a), sweep.grid("b", b[:2])) == [{"a": 1, "b": "x"},
                                                                    {"a": 2, "b": "y"}]
  assert len(sweep.chain(sweep.grid("a", a), sweep.grid("b", b))) == 5
  r = sweep.log_uniform("lr", 1e-4, 1e-1, 50, seed=3)
  assert len(r) == 50 and all(1e-4 <= p["lr"] <= 1e-1 for p in r)
  assert r == sweep.log_uniform("lr", 1e-4, 1e-1, 50, seed=3)
  with pytest.raises(ValueError, match="equal length"):
    sweep.zip_(sweep.grid("a", a), sweep.grid("b", b))


def _results(workdir):
  with open(workdir / "results.csv") as f:
    return list(csv.DictReader(f))


@pytest.mark.parametrize("executor", [  # submitit's executor: the same points, 50 s more
    "local", pytest.param("submitit_local", marks=pytest.mark.slow)])
def test_four_points_run_and_are_collected(tmp_path, executor, capsys):
  """Four good points and one that fails: the failure is reported with its log, the rest finish."""
  points = FOUR + [{"optimizer.name": "adm"}]
  rows = runner.run_sweep(CONFIG, points, str(tmp_path), arg="smoke", executor=executor,
                          parallel=2)
  assert [r["status"] for r in rows] == ["done"] * 4 + ["failed"]
  assert "optimizer.name='adm'" in rows[-1]["log_tail"]
  assert "FAILED" in capsys.readouterr().out
  got = {(float(r["optimizer.learning_rate"]), int(r["seed"])) for r in _results(tmp_path)
         if r["status"] == "done"}
  assert got == {(p["optimizer.learning_rate"], p["seed"]) for p in FOUR}
  md = (tmp_path / "results.md").read_text()
  assert md.count("| 2 |") == 2  # one row per learning rate, each over 2 seeds
  assert (tmp_path / "results.png").stat().st_size > 1000
  for r in rows[:4]:  # each point trained with its own overrides, in its own workdir
    cfg = json.loads((tmp_path / r["point"] / "config.json").read_text())
    assert cfg["seed"] == r["seed"]
    assert cfg["optimizer"]["learning_rate"] == r["optimizer.learning_rate"]


# README's sweep command (its :smoke form, but for --workdir): tests/test_readme.py leaves it to
# the test below, which runs it to the end after a kill.
README_SWEEP = ("scripts/sweep.py", "--config=configs/mlp_digits.py:smoke", "--parallel=2")


def test_killed_sweep_resumes_skipping_finished_points(tmp_path):
  cmd = [sys.executable, *README_SWEEP, f"--workdir={tmp_path}"]
  proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  while len(list(tmp_path.glob("*/result.json"))) < 2 and time.time() < deadline:
    time.sleep(0.2)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  finished = {p.parent.name: p.stat().st_mtime_ns for p in tmp_path.glob("*/result.json")}
  assert 2 <= len(finished) < 4
  out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
  assert f"{len(finished)} already finished" in out.stdout
  for name, mtime in finished.items():  # not re-run
    assert (tmp_path / name / "result.json").stat().st_mtime_ns == mtime
  assert len(list(tmp_path.glob("*/result.json"))) == 4


def test_a_different_sweep_does_not_reuse_the_workdir(tmp_path):
  runner._prepare(CONFIG, "smoke", FOUR, tmp_path)
  with pytest.raises(ValueError, match="records a different sweep"):
    runner._prepare(CONFIG, "smoke", FOUR[:3], tmp_path)
  with pytest.raises(ValueError, match="executor='pbs' is not one of"):
    runner.run_sweep(CONFIG, FOUR, str(tmp_path), executor="pbs")


def test_a_finished_point_whose_config_changed_since_is_refused(tmp_path):
  """The config file's defaults changed after the point finished: the sweep names the field
  instead of reporting the old result as the new config's."""
  dirs = runner._prepare(CONFIG, "smoke", FOUR[:2], tmp_path)
  for d, point in zip(dirs, FOUR[:2]):
    config = json.loads(job.load_config(CONFIG, "smoke", {}).to_json())
    config["optimizer"]["learning_rate"] = point["optimizer.learning_rate"]
    config["seed"] = point["seed"]
    (d / "config.json").write_text(json.dumps(config))
    (d / "result.json").write_text("{}")
  runner._check_finished(dirs)  # as recorded: finished
  config["num_epochs"] = config["num_epochs"] + 1  # the file's default has moved on
  (dirs[1] / "config.json").write_text(json.dumps(config))
  with pytest.raises(ConfigError, match=r"001_.*finished with a different config \(num_epochs: "):
    runner._check_finished(dirs)


def test_a_config_can_sweep_a_benchmark_instead_of_training(tmp_path):
  """configs/bench/conv_sweep.py defines run(): each point times conv impls vs torch."""
  config = str(REPO / "configs" / "bench" / "conv_sweep.py")
  points = [{"k": 3, "channels": 4}, {"k": 11, "channels": 4}]
  rows = runner.run_sweep(config, points, str(tmp_path), arg="smoke", parallel=2,
                          metric="fft_speedup_vs_lax")
  assert [r["status"] for r in rows] == ["done", "done"]
  for r in rows:
    assert r["fft_speedup_vs_lax"] == pytest.approx(r["lax_ms"] / r["fft_ms"])
    assert r["fastest"] in ("lax", "fft") and r["torch_ms"] > 0
  assert "| k | channels | fft_speedup_vs_lax_mean" in (tmp_path / "results.md").read_text()


@pytest.mark.slow  # two JAX processes through submitit: ~40 s on 2 shared cores
def test_one_run_as_a_two_task_submitit_job(tmp_path):
  """A config without a sweep is one point; with 2 tasks it trains as one 2-process JAX job
  (``jax.distributed.initialize`` from submitit's task rank): both processes write their input
  position into the checkpoint, process 0 the result."""
  config = str(REPO / "configs" / "lenet5_digits.py")
  rows = runner.run_sweep(config, [{}], str(tmp_path), arg="smoke", executor="submitit_local",
                          slurm=runner.SlurmOptions(nodes=2, tasks_per_node=1))
  assert [r["status"] for r in rows] == ["done"], rows[0].get("log_tail")
  (point,) = tmp_path.glob("000_*")
  assert sorted(p.name for p in point.glob("checkpoints/2/data/*.json")) == [
      "process_0-of-2.json", "process_1-of-2.json"]
  assert json.loads((point / "result.json").read_text())["num_examples"] > 0


def test_slurm_job_of_one_multi_node_run(tmp_path, monkeypatch):
  """The sbatch script submitit writes for 2 nodes x 1 task x 8 GPUs (no SLURM here: a dummy
  ``srun`` on PATH is what submitit looks for)."""
  srun = tmp_path / "bin" / "srun"
  srun.parent.mkdir()
  srun.write_text("#!/bin/sh\n")
  srun.chmod(0o755)
  monkeypatch.setenv("PATH", f"{srun.parent}{os.pathsep}{os.environ['PATH']}")
  ex = runner.executor_for("slurm", tmp_path, 1, runner.SlurmOptions(
      partition="gpu", nodes=2, tasks_per_node=1, gpus_per_task=8))
  text = ex._executor._make_submission_file_text("python -m x", "uid")
  for line in ("--nodes=2", "--ntasks-per-node=1", "--gpus-per-task=8", "--partition=gpu"):
    assert f"#SBATCH {line}\n" in text, text
