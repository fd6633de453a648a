"""``config.profile_steps``: a jax.profiler trace of exactly the window's steps in
``WORKDIR/profile`` and one summary line; nothing outside the window."""

import re

import pytest

from cnnlab import train


def test_window_writes_a_trace_and_one_summary_line(digits_config, tmp_path, capfd):
  digits_config.num_train_steps = 5
  digits_config.profile_steps = (1, 3)
  train.train_and_evaluate(digits_config, str(tmp_path))
  err = capfd.readouterr().err
  lines = [ln for ln in err.splitlines() if ln.startswith("profile:")]
  assert len(lines) == 1, err
  m = re.match(r"profile: steps 2-3: ([\d.]+) ms/step = input wait ([\d.]+) ms \(\d+ %\) \+ "
               r"device compute ([\d.]+) ms; trace in (.+)$", lines[0])
  assert m, lines[0]
  total, wait, compute = map(float, m.groups()[:3])
  assert total == pytest.approx(wait + compute, abs=0.2) and compute > 0
  traces = list((tmp_path / "profile").rglob("*.xplane.pb"))
  assert len(traces) == 1, list((tmp_path / "profile").rglob("*"))


def test_no_window_no_trace(digits_config, tmp_path, capfd):
  train.train_and_evaluate(digits_config, str(tmp_path))
  assert "profile:" not in capfd.readouterr().err
  assert not (tmp_path / "profile").exists()
