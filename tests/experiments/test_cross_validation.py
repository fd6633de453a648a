"""The k-fold summary of a fold sweep's results.csv (configs/sequence/kim_cnn_mr.py:analysis)."""

import csv
import json

import pytest

from cnnlab import experiments
from cnnlab.train.errors import ConfigError
from conftest import REPO, load_config_module


def _config(sweep_workdir):
  c = load_config_module(REPO / "configs" / "sequence" / "kim_cnn_mr.py").get_config("analysis")
  c.sweep_workdir = str(sweep_workdir)
  return c


def test_mean_and_std_over_the_finished_folds(tmp_path):
  rows = [{"point": f"p{i}", "data.fold": i, "status": "done", "accuracy": a}
          for i, a in enumerate([0.70, 0.80, 0.75])]
  rows.append({"point": "p3", "data.fold": 3, "status": "failed", "accuracy": ""})
  with open(tmp_path / "results.csv", "w", newline="") as f:
    w = csv.DictWriter(f, list(rows[0]))
    w.writeheader()
    w.writerows(rows)
  out = experiments.run(_config(tmp_path), str(tmp_path / "analysis"))
  # mean 75 %, population std sqrt(((-5)^2 + 5^2 + 0) / 3) = 4.0825 %
  assert out["folds"] == 3
  assert out["accuracy_mean"] == pytest.approx(75.0)
  assert out["accuracy_std"] == pytest.approx(4.0824829)
  saved = json.loads((tmp_path / "analysis" / "cross_validation.json").read_text())
  assert saved["per_fold"] == {"0": pytest.approx(70.0), "1": pytest.approx(80.0),
                               "2": pytest.approx(75.0)}
  assert "75.0 ± 4.1" in (tmp_path / "analysis" / "cross_validation.md").read_text()


def test_missing_sweep_is_one_line(tmp_path):
  with pytest.raises(ConfigError, match=r"config\.sweep_workdir=.* is invalid: .*results\.csv not "
                     r"found; run the sweep first \(scripts/sweep\.py "
                     r"--config=configs/sequence/kim_cnn_mr\.py\)"):
    experiments.run(_config(tmp_path), str(tmp_path / "analysis"))
