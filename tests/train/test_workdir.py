"""The workdir module: lock, metrics rows (strict JSON, cut on resume), steps, best step."""

import json
import math
import subprocess
import sys

import pytest

from cnnlab.train import errors, workdir as workdir_lib


def _rows(tmp_path, rows):
  workdir_lib.metrics_path(tmp_path).write_text("".join(workdir_lib.metrics_line(r) for r in rows))


def test_metrics_line_is_strict_json():
  line = workdir_lib.metrics_line({"loss": math.nan, "lr": math.inf, "step": 3})
  assert json.loads(line, parse_constant=lambda c: pytest.fail(c)) == {
      "loss": None, "lr": None, "step": 3}


def test_cut_metrics_keeps_rows_up_to_the_step(tmp_path):
  _rows(tmp_path, [{"kind": k, "step": s} for s in (1, 2, 3, 4) for k in ("train", "eval")])
  assert workdir_lib.cut_metrics(tmp_path, 2) == 4
  assert [r["step"] for r in workdir_lib.read_metrics(tmp_path, "eval")] == [1, 2]


def test_steps_best_and_resolve(tmp_path):
  for s in (2, 4, 6):
    (workdir_lib.checkpoints_dir(tmp_path) / str(s) / "state").mkdir(parents=True)
  (workdir_lib.checkpoints_dir(tmp_path) / "8").mkdir()  # empty: not a step
  _rows(tmp_path, [{"kind": "eval", "step": s, "accuracy": a}
                   for s, a in ((2, 0.5), (4, 0.9), (6, 0.7), (9, 1.0))])
  assert workdir_lib.steps(tmp_path) == [2, 4, 6]
  assert workdir_lib.best_step(tmp_path) == 4 and workdir_lib.resolve_step(tmp_path, "latest") == 6
  assert workdir_lib.resolve_step(tmp_path, "4") == 4
  with pytest.raises(errors.ConfigError, match=r"steps \[2, 4, 6\]"):
    workdir_lib.resolve_step(tmp_path, 5)
  assert workdir_lib.set_aside_empty(tmp_path) == [8]
  assert (workdir_lib.checkpoints_dir(tmp_path) / "unusable-8").is_dir()


def test_lock_names_the_holder_and_dies_with_it(tmp_path):
  assert workdir_lib.holder(tmp_path) is None
  code = ("import sys, time; from cnnlab.train import workdir as w\n"
          f"with w.lock({str(tmp_path)!r}):\n  print('locked', flush=True); time.sleep(60)")
  proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
  try:
    assert proc.stdout.readline().strip() == "locked"
    assert workdir_lib.holder(tmp_path) == proc.pid
    with pytest.raises(errors.WorkdirBusy, match=f"in use by another run \\(pid {proc.pid}\\)"):
      with workdir_lib.lock(tmp_path):
        pass
  finally:
    proc.kill()
    proc.wait()
  assert workdir_lib.holder(tmp_path) is None  # the OS dropped it, even after SIGKILL
  with workdir_lib.lock(tmp_path):
    pass
