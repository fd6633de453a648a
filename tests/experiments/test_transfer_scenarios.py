"""transfer_scenarios: the table and learning-curve figure from a tiny fake sweep, against means
and stds computed by hand; the sweep's declaration (every scenario, approach, label count and
seed; batch sizes fit the subsets)."""

import csv
import json

import pytest

from cnnlab.experiments import transfer_scenarios as ts
from conftest import REPO, load_config_module

CONFIG = load_config_module(REPO / "configs" / "transfer" / "scenarios.py")


def _write_csv(path, rows):
  cols = [":arg", "data.labels_per_class", "batch_size", "seed", "point", "status", "loss",
          "accuracy", "num_examples", "wall_s"]
  with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, cols)
    w.writeheader()
    for i, r in enumerate(rows):
      w.writerow({"point": f"{i:03d}", "batch_size": 32, "loss": 0.5, "num_examples": 360,
                  "wall_s": 30.0, **r})


def test_table_json_and_figure_from_a_fake_sweep(tmp_path):
  acc = {("digits", "probe", 1): [0.5, 0.7, 0.6], ("digits", "probe", 0): [0.9, 0.9, 0.9],
         ("digits", "finetune", 0): [0.96, 0.98, 0.97], ("fsdd", "early", 5): [0.2, 0.4, 0.3]}
  rows = [{":arg": f"target={t},approach={a}", "data.labels_per_class": n, "seed": s,
           "status": "done", "accuracy": x}
          for (t, a, n), xs in acc.items() for s, x in enumerate(xs)]
  rows.append({":arg": "target=fsdd,approach=scratch", "data.labels_per_class": 5, "seed": 0,
               "status": "failed", "accuracy": ""})
  _write_csv(tmp_path / "results.csv", rows)
  config = CONFIG.get_config("analysis")
  config.sweep_workdir, config.pretrain_workdir = str(tmp_path), ""
  out = ts.run(config, str(tmp_path / "out"))["rows"]
  table = {(r["target"], r["approach"], r["labels_per_class"]): r for r in out}
  assert set(table) == set(acc)  # the failed point is left out
  # 60 +- population std of (50, 70, 60) = sqrt(200/3) = 8.165
  assert table[("digits", "probe", 1)]["mean"] == pytest.approx(60.0)
  assert table[("digits", "probe", 1)]["std"] == pytest.approx(8.16497, abs=1e-4)
  assert table[("fsdd", "early", 5)]["seeds"] == 3
  md = (tmp_path / "out" / "transfer_scenarios.md").read_text()
  lines = md.splitlines()
  i = lines.index("| eval accuracy (%) | 1 | 5 | all |")  # 'all' (0) last
  # probe is the lecture's choice for a small similar target, fine-tune for a large one
  assert lines[i + 2] == "| linear probe (F6) | **60.0 ± 8.2** | – | 90.0 ± 0.0 |"
  assert lines[i + 3] == "| fine-tune all | – | – | **97.0 ± 0.8** |"
  assert "| linear on C5 (earlier) | – | **30.0 ± 8.2** | – |" in lines
  assert "wall time in total: 6.0 min" in md  # 12 finished points x 30 s
  saved = json.loads((tmp_path / "out" / "transfer_scenarios.json").read_text())
  assert len(saved["rows"]) == 4 and saved["source_accuracy"] is None
  assert (tmp_path / "out" / "transfer_scenarios.png").stat().st_size > 10_000


def test_missing_columns_are_named(tmp_path):
  (tmp_path / "results.csv").write_text("point,status,accuracy\n000,done,0.5\n")
  config = CONFIG.get_config("analysis")
  config.sweep_workdir = str(tmp_path)
  with pytest.raises(ValueError, match=r"lacks the columns \[':arg', 'data.labels_per_class'\]"):
    ts.run(config, str(tmp_path / "out"))


def test_the_sweep_covers_every_scenario_label_count_and_seed():
  points = CONFIG.get_sweep()
  keys = {(p[":arg"], p["data.labels_per_class"], p["seed"]) for p in points}
  assert len(keys) == len(points) == 7 * 5 * 3
  for p in points:
    n = p["data.labels_per_class"]
    assert p["batch_size"] <= (10 * n if n else 1437)  # a batch fits the subset
    config = CONFIG.get_config(p[":arg"])
    config.update_from_flattened_dict({k: v for k, v in p.items() if k != ":arg"})
    assert config.data.subset_seed == p["seed"]  # each seed draws its own subset
    scratch = "approach=scratch" in p[":arg"]
    assert bool(config.init_from.workdir) != scratch
