"""The command-line entry points, run as a user would (subprocesses)."""

import json
import subprocess
import sys

import pytest

from conftest import REPO


def _run(*args):
  out = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout


def test_train_evaluate_plot(tmp_path):
  cfg = "--config=configs/lenet5_digits.py:smoke"
  trained = json.loads(_run("scripts/train.py", cfg, f"--workdir={tmp_path}").splitlines()[-1])
  evaluated = json.loads(_run("scripts/evaluate.py", cfg, f"--workdir={tmp_path}",
                              "--config.data.eval_split=test[:100]").splitlines()[-1])
  assert set(evaluated) == {"step", "loss", "accuracy", "num_examples"}
  assert evaluated["num_examples"] == 100 and evaluated["step"] == 2
  assert trained["num_examples"] == 360
  png = _run("scripts/plot_metrics.py", str(tmp_path)).strip()
  assert png.endswith("metrics.png") and (tmp_path / "metrics.png").stat().st_size > 1000


def test_bad_config_is_one_line_not_a_traceback(tmp_path):
  out = subprocess.run([sys.executable, "scripts/train.py", "--config=configs/lenet5_digits.py",
                        f"--workdir={tmp_path}", "--config.optimizer.name=adm"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
  assert out.returncode != 0
  assert "error: config.optimizer.name='adm' is invalid" in out.stderr
  assert "Traceback" not in out.stderr


@pytest.mark.parametrize("argv, line", [
    (["scripts/bench_train.py", "--impls=lax,bogus"],
     "flag --impls=['lax', 'bogus']: names conv impls not among ['lax', "),
    (["scripts/bench_accum.py", "--cases=lenet"],
     "flag --cases=['lenet']: names networks not among ['lenet5', 'resnet20']"),
    (["scripts/summarize_model.py", "--model=resnet51"],
     "model='resnet51' is not registered. Did you mean ['resnet56', 'resnet50', 'resnet18']?"),
    (["scripts/convert_weights.py", "--model=resnet51", "--download", "--workdir={tmp}"],
     "flag --model=resnet51: is not a model with torchvision weights; allowed: ['alexnet', "),
    (["scripts/plot_metrics.py", "{tmp}"],
     "error: {tmp} holds no metrics to plot"),
])
def test_bad_flag_of_a_tool_script_is_one_line_before_anything_runs(argv, line, tmp_path):
  """Benchmarks and tools: a bad flag value is one line naming the flag and what is allowed, and
  nothing is written (absl validators run at parsing, before main)."""
  tmp = tmp_path / "w"
  out = subprocess.run([sys.executable, *(a.format(tmp=tmp) for a in argv)], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode != 0
  assert line.format(tmp=tmp) in out.stderr, out.stderr[-2000:]
  assert "Traceback" not in out.stderr
  assert not tmp.exists()
