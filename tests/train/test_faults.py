"""Fault injection: a run never lies. NaN mid-run, corrupt and empty checkpoints, SIGTERM, two
trainers on one workdir, a killed sweep driver.

Reference values come from uninterrupted runs of the same config (bit-identical is the claim)."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import train
from cnnlab.train import cli, errors, steps, workdir as workdir_lib
from conftest import REPO, load_config_module
from test_loop import saved_state

DIGITS = REPO / "configs" / "lenet5_digits.py"
TRAIN_STEP = steps.train_step


def _config(**fields):
  c = load_config_module(DIGITS).get_config("smoke")
  c.update(num_train_steps=6, checkpoint_every_steps=2, keep_checkpoints=5, **fields)
  return c


def _poison(monkeypatch, bad_steps):
  """Makes the inputs of the steps ``bad_steps`` (1-based) NaN inside the jitted train step."""
  original = TRAIN_STEP

  def poisoned(state, metrics, batch, base_key, **kw):
    bad = jnp.isin(state.step + 1, jnp.asarray(bad_steps))
    batch = {**batch, "inputs": jnp.where(bad, jnp.nan, batch["inputs"])}
    return original(state, metrics, batch, base_key, **kw)

  monkeypatch.setattr(steps, "train_step", poisoned)


def _finite(tree):
  return all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(tree)
             if np.issubdtype(np.asarray(x).dtype, np.floating))


def test_nan_mid_run_stops_naming_the_step(monkeypatch, tmp_path, capsys):
  _poison(monkeypatch, [4])
  c = _config()
  code = cli.call(lambda *_: train.train_and_evaluate(c, str(tmp_path)), _Flags())
  err = capsys.readouterr().err.strip().splitlines()
  assert code == errors.NON_FINITE == 3
  assert err[-1].startswith("error: step 4: the loss or gradient norm is NaN/inf"), err
  assert "last checkpoint (step 2)" in err[-1]
  assert workdir_lib.steps(tmp_path) == [2] and _finite(saved_state(tmp_path, 2))
  for line in workdir_lib.metrics_path(tmp_path).read_text().splitlines():
    json.loads(line, parse_constant=lambda x: pytest.fail(f"non-JSON {x} in {line}"))


def test_skip_policy_skips_then_gives_up(monkeypatch, tmp_path):
  _poison(monkeypatch, [3, 5])
  result = train.train_and_evaluate(_config(nonfinite_policy="skip", max_nonfinite_skips=2),
                                    str(tmp_path / "a"))
  assert np.isfinite(result["loss"]) and _finite(saved_state(tmp_path / "a", 6)["params"])
  rows = {r["step"]: r for r in workdir_lib.read_metrics(tmp_path / "a", "train")}
  assert [rows[s]["nonfinite_steps"] for s in range(1, 7)] == [0, 0, 1, 0, 1, 0]
  _poison(monkeypatch, [5, 6])
  with pytest.raises(errors.NonFiniteError, match="2 NaN/inf steps in a row"):
    train.train_and_evaluate(_config(nonfinite_policy="skip", max_nonfinite_skips=2),
                             str(tmp_path / "b"))
  assert workdir_lib.steps(tmp_path / "b") == [2, 4]


class _Flags:
  verbose, multihost = False, False
  config = workdir = None

  def __contains__(self, name):
    return False


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted 6-step run, checkpoints at 2, 4, 6."""
  path = tmp_path_factory.mktemp("reference")
  train.train_and_evaluate(_config(), str(path))
  return path


def _flip_bit(path):
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0x10
  path.write_bytes(bytes(data))


def _garbage(path):
  data = bytearray(path.read_bytes())
  at = max(0, len(data) // 2 - 1000)
  data[at:at + 2000] = np.random.default_rng(0).integers(0, 256, 2000, np.uint8).tobytes()
  path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_flip_bit, _garbage], ids=["flipped_bit", "garbage_block"])
def test_corrupt_latest_checkpoint_falls_back(reference, tmp_path, capsys, damage):
  """Step 6 lost, step 4 damaged, an empty ``checkpoints/999``: the resumed run sets 4 and 999
  aside, restarts from 2 and ends with the reference's parameters; metrics rows stay unique."""
  w = tmp_path / "w"
  shutil.copytree(reference, w)
  ckpts = workdir_lib.checkpoints_dir(w)
  shutil.rmtree(ckpts / "6")
  (ckpts / "999").mkdir()
  files = sorted((p for p in (ckpts / "4" / "state").rglob("*") if p.is_file()),
                 key=lambda p: p.stat().st_size)
  damage(files[-1])
  train.train_and_evaluate(_config(), str(w))
  err = capsys.readouterr().err
  assert f"checkpoint {ckpts / '4'} is unusable" in err, err
  assert (ckpts / "unusable-4").is_dir() and (ckpts / "unusable-999").is_dir()
  a, b = saved_state(reference, 6), saved_state(w, 6)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  rows = workdir_lib.read_metrics(w)
  keys = [(r["kind"], r["step"]) for r in rows]
  assert len(keys) == len(set(keys)) and [s for k, s in keys if k == "train"] == list(range(1, 7))


def test_second_trainer_is_refused(tmp_path, capsys):
  c = _config()
  with workdir_lib.lock(tmp_path):
    code = cli.call(lambda *_: train.train_and_evaluate(c, str(tmp_path)), _Flags())
  err = capsys.readouterr().err.strip().splitlines()
  assert code == errors.BUSY
  assert err[-1] == (f"error: workdir {str(tmp_path)!r} is in use by another run (pid "
                     f"{os.getpid()}); wait for it to end or use another --workdir")
  assert not workdir_lib.steps(tmp_path) and not workdir_lib.metrics_path(tmp_path).exists()


def test_checkpoints_without_config_record_are_refused(reference, tmp_path):
  shutil.copytree(reference, tmp_path / "w")
  workdir_lib.config_path(tmp_path / "w").unlink()
  with pytest.raises(train.ConfigError, match="config.json is unreadable"):
    train.train_and_evaluate(_config(), str(tmp_path / "w"))


def test_evaluate_best_and_step(reference, capsys):
  assert workdir_lib.best_step(reference) in (2, 4, 6)
  assert train.evaluate(_config(), str(reference), step="best")["step"] == (
      workdir_lib.best_step(reference))
  assert train.evaluate(_config(), str(reference), step=4)["step"] == 4
  with pytest.raises(train.ConfigError, match=r"holds checkpoints at steps \[2, 4, 6\]"):
    train.evaluate(_config(), str(reference), step=5)
  c = _config()
  c.data.std = (0.5,)
  with pytest.raises(train.ConfigError, match=r"config.data.std=\[0.5\] is invalid: the run"):
    train.evaluate(c, str(reference))


def _wait(predicate, timeout, what):
  t0 = time.time()
  while not predicate():
    if time.time() - t0 > timeout:
      pytest.fail(f"timed out waiting for {what}")
    time.sleep(0.1)


# Long enough that SIGTERM, sent once 3 steps are logged (polled every 0.1 s), lands mid-run: a
# smoke step takes ~30 ms here.
STEPS = 100
LONG = [f"--config.num_train_steps={STEPS}", "--config.checkpoint_every_steps=10000",
        "--config.log_every_steps=1", "--config.eval_every_steps=10000",
        "--config.optimizer.schedule=constant"]


def test_sigterm_saves_the_step_and_resume_is_bit_identical(tmp_path):
  w = tmp_path / "w"
  proc = subprocess.Popen([sys.executable, "scripts/train.py", f"--config={DIGITS}:smoke",
                           f"--workdir={w}", *LONG], cwd=REPO, stderr=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
  _wait(lambda: len(workdir_lib.read_metrics(w)) >= 3 or proc.poll() is not None, 240,
        "training to start")
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 143, err[-2000:]
  stopped = workdir_lib.steps(w)
  assert len(stopped) == 1 and 3 <= stopped[0] < STEPS, stopped
  assert f"error: stopped by SIGTERM at step {stopped[0]} of {STEPS}" in err
  assert not list(workdir_lib.checkpoints_dir(w).glob("*tmp*"))
  c = load_config_module(DIGITS).get_config("smoke")
  c.update(num_train_steps=STEPS, checkpoint_every_steps=10000, log_every_steps=1,
           eval_every_steps=10000)
  c.optimizer.schedule = "constant"
  train.train_and_evaluate(c, str(w))
  train.train_and_evaluate(c, str(tmp_path / "ref"))
  a, b = saved_state(tmp_path / "ref", STEPS), saved_state(w, STEPS)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  steps_logged = [r["step"] for r in workdir_lib.read_metrics(w, "train")]
  assert steps_logged == list(range(1, STEPS + 1))


def _alive(pid):
  try:
    state = pathlib.Path(f"/proc/{pid}/status").read_text()
  except FileNotFoundError:
    return False
  return "\nState:\tZ" not in state


@pytest.mark.slow
def test_killed_sweep_driver_leaves_no_orphans(tmp_path):
  cfg = tmp_path / "long.py"
  cfg.write_text(f"import importlib.util\nspec = importlib.util.spec_from_file_location("
                 f"'d', {str(DIGITS)!r})\nm = importlib.util.module_from_spec(spec); "
                 "spec.loader.exec_module(m)\ndef get_config(arg=None):\n"
                 "  c = m.get_config('smoke')\n  c.num_train_steps = 10**6\n"
                 "  c.checkpoint_every_steps = 10**6\n  c.log_every_steps = 100\n  return c\n")
  sweep_dir = tmp_path / "sweep"
  code = ("import sys; from cnnlab.sweep import runner; "
          f"runner.run_sweep({str(cfg)!r}, [{{'seed': 0}}], {str(sweep_dir)!r}, parallel=1)")
  driver = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
  point = sweep_dir / "000_seed=0"
  _wait(lambda: workdir_lib.holder(point) is not None, 240, "the job to start training")
  job = workdir_lib.holder(point)
  from cnnlab.sweep import runner  # noqa: PLC0415
  rows = runner.run_sweep(str(cfg), [{"seed": 0}], str(sweep_dir), parallel=1)  # a re-run
  assert rows[0]["status"] != "done" and workdir_lib.holder(point) == job  # none started
  driver.kill()
  driver.wait()
  _wait(lambda: not _alive(job), 120, f"job {job} to die with its driver")


def test_second_signal_exits_at_once():
  """The first SIGTERM only asks the loop to stop after its step; a second one ends the process
  at once, by the signal's default action (exit status -SIGTERM), with nothing after it run."""
  code = ("import os, signal\nfrom cnnlab.train import loop\n"
          "with loop._SignalStop() as stop:\n"
          "  os.kill(os.getpid(), signal.SIGTERM)\n"
          "  print('asked', stop.requested(1), flush=True)\n"
          "  os.kill(os.getpid(), signal.SIGTERM)\n"
          "  print('still running', flush=True)\n")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == -signal.SIGTERM, out.stderr[-2000:]
  assert out.stdout.splitlines() == ["asked True"], out.stdout
  assert "stopping after this step" in out.stderr


def _children(pid):
  kids = []
  for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
    try:
      fields = stat.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
      continue
    if int(fields[1]) == pid:
      kids.append(int(stat.parent.name))
  return kids


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux only)")
def test_killed_trainer_leaves_no_grain_workers(tmp_path):
  w = tmp_path / "w"
  proc = subprocess.Popen([sys.executable, "scripts/train.py", f"--config={DIGITS}:smoke",
                           f"--workdir={w}", *LONG, "--config.num_train_steps=100000",
                           "--config.data.num_workers=2"], cwd=REPO,
                          stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
  _wait(lambda: len(workdir_lib.read_metrics(w)) >= 3 or proc.poll() is not None, 240,
        "training to start")
  workers = _children(proc.pid)
  assert len(workers) >= 2 and proc.poll() is None, workers
  proc.kill()
  proc.wait()
  _wait(lambda: not any(_alive(p) for p in workers), 60, f"Grain workers {workers} to die")


def test_new_checkpoint_that_does_not_read_back_deletes_nothing(monkeypatch, tmp_path):
  """keep_checkpoints=1: each verified save deletes the one before; when the save of step 4
  reads back wrong (an array changed on disk after writing), step 2 must still be there."""
  from cnnlab.train import checkpoint  # noqa: PLC0415
  real_restore = checkpoint.restore

  def flaky(mngr, step, *args, **kw):
    if step == 4:
      raise checkpoint.CorruptCheckpoint("array(s) ['params'] differ from the digest")
    return real_restore(mngr, step, *args, **kw)

  monkeypatch.setattr(checkpoint, "restore", flaky)
  c = _config()
  c.keep_checkpoints = 1
  with pytest.raises(checkpoint.CorruptCheckpoint, match="checkpoint 4 .* older checkpoints"):
    train.train_and_evaluate(c, str(tmp_path))
  assert 2 in workdir_lib.steps(tmp_path) and _finite(saved_state(tmp_path, 2))


def test_keeps_the_last_k_and_the_best(tmp_path):
  """keep_checkpoints=2 over saves at 2, 4, 6, 8, 10 with eval accuracies 0.9 (step 4) and lower
  elsewhere: steps 4, 8, 10 remain (a brute-force reading of the rule)."""
  import orbax.checkpoint as ocp  # noqa: PLC0415
  from cnnlab.train import checkpoint  # noqa: PLC0415
  mngr = checkpoint.manager(str(tmp_path))
  acc = {2: 0.5, 4: 0.9, 6: 0.7, 8: 0.8, 10: None}
  for s, a in acc.items():
    mngr.save(s, metrics={workdir_lib.BEST_METRIC: a},
              args=ocp.args.Composite(state=ocp.args.StandardSave({"w": np.full(2, s)})))
    mngr.wait_until_finished()
    checkpoint.prune(mngr, 2)
  mngr.close()
  assert sorted(int(p.name) for p in workdir_lib.checkpoints_dir(tmp_path).iterdir()) == [4, 8, 10]
