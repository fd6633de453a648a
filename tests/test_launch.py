"""N local processes as one JAX job (``cnnlab.launch``, ``scripts/launch_local.py``): the code path
of a multi-host run — per-process data, collective checkpoints, process-0 outputs, JAX's
preemption sync point — checked against one-process runs of the same checkpoints."""

import json
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from cnnlab import launch, train
from cnnlab.train import workdir as workdir_lib
from conftest import REPO, load_config_module
from train.test_loop import saved_state

DIGITS = f"{REPO}/configs/lenet5_digits.py"


def _launch_argv(workdir, *extra, processes=2, devices=2):
  return [sys.executable, "scripts/launch_local.py", f"--num_processes={processes}",
          f"--devices_per_process={devices}", "--", "python", "scripts/run.py",
          f"--config={DIGITS}:smoke", f"--workdir={workdir}", "--config.progress_bar=False", *extra]


def _run(argv, timeout=600):
  return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _json_lines(stdout):
  return [json.loads(ln) for ln in stdout.splitlines() if ln.startswith("{")]


def test_child_argv_and_env():
  argv = launch.child_argv(["python", "scripts/run.py", "--workdir=w"], 3, 1, 1234)
  assert argv == [sys.executable, "scripts/run.py", "--workdir=w", "--multihost",
                  "--coordinator_address=localhost:1234", "--num_processes=3", "--process_id=1"]
  env = launch.child_env(4, {"XLA_FLAGS": "--xla_force_host_platform_device_count=8 --foo"})
  assert env["XLA_FLAGS"] == "--foo --xla_force_host_platform_device_count=4"
  with pytest.raises(ValueError, match="num_processes=0"):
    launch.launch_local(["python", "-c", "pass"], num_processes=0)


def test_a_failing_process_fails_the_job(tmp_path):
  out = _run(_launch_argv(tmp_path / "w", "--config.batch_size=0"))
  assert out.returncode == 2, out.stderr[-3000:]
  assert "error: config.batch_size=0 is invalid" in out.stderr
  assert not _json_lines(out.stdout)


def test_two_processes_match_one_device_and_count_each_eval_example_once(tmp_path):
  """2 processes x 4 devices, 3 steps: the parameters equal a 1-device run's (momentum SGD, the
  tolerance of the 1-vs-8-device test in tests/train/test_loop.py); the result is printed once;
  eval counted each of 359 examples (an odd split) once across the processes; one process
  evaluating the checkpoint alone gets the same numbers."""
  fields = dict(num_train_steps=3, progress_bar=False)
  opt = ["--config.optimizer.name=momentum", "--config.optimizer.learning_rate=0.05"]
  w = tmp_path / "w"
  out = _run(_launch_argv(w, "--config.num_train_steps=3", "--config.data.eval_split=test[:359]",
                          *opt, devices=4))
  assert out.returncode == 0, out.stderr[-3000:]
  (result,) = _json_lines(out.stdout)
  assert result["num_examples"] == 359
  assert sorted(p.name for p in (workdir_lib.checkpoints_dir(w) / "3" / "data").glob("*.json")
                ) == ["process_0-of-2.json", "process_1-of-2.json"]
  assert [r["step"] for r in workdir_lib.read_metrics(w, "train")] == [1, 2, 3]

  c = load_config_module(DIGITS).get_config("smoke")
  c.update(fields)
  c.optimizer.name, c.optimizer.learning_rate = "momentum", 0.05
  assert jax.device_count() == 1
  train.train_and_evaluate(c, str(tmp_path / "one"))
  a, b = saved_state(tmp_path / "one", 3), saved_state(w, 3)
  for x, y in zip(jax.tree.leaves(a["params"]), jax.tree.leaves(b["params"])):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)

  one = _run([sys.executable, "scripts/evaluate.py", f"--config={DIGITS}:smoke", *opt,
              "--config.num_train_steps=3", "--config.data.eval_split=test[:359]", f"--workdir={w}"])
  assert one.returncode == 0, one.stderr[-3000:]
  (alone,) = _json_lines(one.stdout)
  assert alone["num_examples"] == 359 and alone["accuracy"] == result["accuracy"]
  np.testing.assert_allclose(alone["loss"], result["loss"], rtol=1e-6)


@pytest.mark.slow  # two more multi-process runs: ~60 s on 2 shared cores
def test_two_processes_of_four_devices_match_one_process_of_eight(tmp_path):
  """The same 3 momentum-SGD steps as 2 processes x 4 devices and as 1 process x 8 devices (the
  1-device run is compared with each in the test above and in tests/train/test_loop.py): the
  parameters agree to the same tolerance."""
  extra = ["--config.num_train_steps=3", "--config.optimizer.name=momentum",
           "--config.optimizer.learning_rate=0.05"]
  for name, processes, devices in (("two", 2, 4), ("one", 1, 8)):
    out = _run(_launch_argv(tmp_path / name, *extra, processes=processes, devices=devices))
    assert out.returncode == 0, out.stderr[-3000:]
  a, b = saved_state(tmp_path / "two", 3), saved_state(tmp_path / "one", 3)
  for x, y in zip(jax.tree.leaves(a["params"]), jax.tree.leaves(b["params"]), strict=True):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)


@pytest.mark.slow
def test_sigterm_stops_every_process_at_one_step_and_resume_is_bit_identical(tmp_path):
  long = ["--config.num_train_steps=300", "--config.checkpoint_every_steps=10000",
          "--config.log_every_steps=1", "--config.eval_every_steps=10000",
          "--config.optimizer.schedule=constant"]
  w = tmp_path / "w"
  proc = subprocess.Popen(_launch_argv(w, *long, devices=1), cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  t0 = time.time()
  while len(workdir_lib.read_metrics(w)) < 3 and proc.poll() is None:
    assert time.time() - t0 < 300, "training did not start"
    time.sleep(0.1)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 143, err[-3000:]
  (stopped,) = workdir_lib.steps(w)
  assert 3 <= stopped < 300
  assert err.count(f"error: stopped by SIGTERM at step {stopped} of 300") == 2  # both processes
  resumed = _run(_launch_argv(w, *long, devices=1))
  reference = _run(_launch_argv(tmp_path / "ref", *long, devices=1))
  assert resumed.returncode == 0 and reference.returncode == 0, resumed.stderr[-3000:]
  a, b = saved_state(tmp_path / "ref", 300), saved_state(w, 300)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert [r["step"] for r in workdir_lib.read_metrics(w, "train")] == list(range(1, 301))
