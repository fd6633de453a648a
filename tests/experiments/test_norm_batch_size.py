"""norm_batch_size: the table/figure code on a synthetic results.csv, the sweep's declaration, and
small_cnn's norms against torch.nn.functional (group_norm with 1 / num_groups / C groups,
batch_norm) on its first conv's output."""

import csv
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab import models
from cnnlab.experiments import norm_batch_size as nbs
from conftest import REPO, load_config_module

CONFIG = load_config_module(REPO / "configs" / "experiments" / "norm_batch_size.py")


def _write_csv(path, rows):
  cols = ["point", "model.norm", "batch_size", "optimizer.learning_rate", "seed", "status",
          "loss", "accuracy", "num_examples"]
  with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, cols)
    w.writeheader()
    for i, r in enumerate(rows):
      w.writerow({"point": f"{i:03d}", "optimizer.learning_rate": 0.1, "loss": 0.1,
                  "num_examples": 2000, **r})


def _analysis(sweep_workdir):
  config = CONFIG.get_config("analysis")
  config.sweep_workdir = str(sweep_workdir)
  return config


def test_table_json_and_figure_from_synthetic_results(tmp_path):
  acc = {("batch", 2): [0.5, 0.7], ("batch", 64): [0.99, 0.97], ("group", 2): [0.98, 0.98],
         ("group", 64): [0.985, 0.975]}
  rows = [{"model.norm": n, "batch_size": b, "seed": s, "status": "done", "accuracy": a}
          for (n, b), accs in acc.items() for s, a in enumerate(accs)]
  rows.append({"model.norm": "layer", "batch_size": 2, "seed": 0, "status": "failed",
               "accuracy": ""})
  _write_csv(tmp_path / "results.csv", rows)
  rows = nbs.run(_analysis(tmp_path), str(tmp_path / "out"))["rows"]
  table = {(r["norm"], r["batch_size"]): r for r in rows}
  # Error = 100 (1 - accuracy), mean and population std over the two seeds, by hand.
  assert table[("batch", 2)]["mean"] == pytest.approx(40.0)
  assert table[("batch", 2)]["std"] == pytest.approx(10.0)
  assert table[("group", 64)]["mean"] == pytest.approx(2.0)
  assert ("layer", 2) not in table  # failed points are left out
  md = (tmp_path / "out" / "norm_batch_size.md").read_text().splitlines()
  assert md[0] == "| eval error (%) | B = 2 | B = 64 |"
  assert md[2] == "| BatchNorm | 40.00 ± 10.00 | 2.00 ± 1.00 |"
  assert md[3] == "| GroupNorm | 2.00 ± 0.00 | 2.00 ± 0.50 |"
  saved = json.loads((tmp_path / "out" / "norm_batch_size.json").read_text())["rows"]
  assert len(saved) == 4 and {r["seeds"] for r in saved} == {2}
  assert 1000 < (tmp_path / "out" / "norm_batch_size.png").stat().st_size < 150_000


def test_missing_results_and_wrong_csv_are_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="run the sweep first"):
    nbs.run(_analysis(tmp_path), str(tmp_path))
  (tmp_path / "results.csv").write_text("point,status\n000,done\n")
  with pytest.raises(ValueError, match="batch_size"):
    nbs.run(_analysis(tmp_path), str(tmp_path))


def test_sweep_is_norms_times_linearly_scaled_batch_sizes():
  points = CONFIG.get_sweep()
  assert len(points) == 5 * 6 * 2
  assert {(p["model.norm"], p["batch_size"], p["seed"]) for p in points} == {
      (n, b, s) for n in ("batch", "group", "layer", "instance", "none")
      for b in (2, 4, 8, 16, 32, 64) for s in (0, 1)}
  for p in points:  # Wu & He's rule, lr = 0.1 B / 32 (Goyal et al.'s linear scaling)
    assert p["optimizer.learning_rate"] == pytest.approx(0.1 * p["batch_size"] / 32)
  c = CONFIG.get_config()
  assert (c.data.train_split, c.data.eval_split) == ("train[:6000]", "train[6000:8000]")
  assert 2000 % c.eval_batch_size == 0  # the eval split fills whole batches: no padding


def _torch_reference(norm, x, kernel, scale, bias, groups):
  """torch: conv (kernel HWIO -> OIHW, pad 1), then the norm on NCHW, then relu + 2x2 max pool."""
  xt = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2)
  y = F.conv2d(xt, torch.from_numpy(np.array(kernel)).permute(3, 2, 0, 1), padding=1)
  w, b = torch.from_numpy(np.array(scale)), torch.from_numpy(np.array(bias))
  if norm == "batch":  # train mode: batch statistics, biased variance
    y = F.batch_norm(y, None, None, w, b, training=True, eps=1e-5)
  else:
    y = F.group_norm(y, groups, w, b, eps=1e-5)
  return y.permute(0, 2, 3, 1).numpy(), F.max_pool2d(F.relu(y), 2).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("norm,groups,jit", [("group", 3, False), ("layer", 1, False),
                                             ("instance", 6, False), ("batch", None, False),
                                             ("instance", 6, True)])
def test_small_cnn_norms_equal_torch_on_first_conv(norm, groups, jit):
  """'layer' must be 1 group and 'instance' C = 6 groups; 'group' num_groups = 3 of 2 channels."""
  model = models.create("small_cnn", width=6, num_groups=3, norm=norm)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((4, 8, 8, 1)) * 2 + 1, jnp.float32)
  v = model.init(jax.random.key(0), x, train=False)
  # Random scale/bias so that their per-channel placement is checked too.
  v = jax.tree_util.tree_map_with_path(
      lambda p, t: t if "batch_stats" in jax.tree_util.keystr(p) else
      jnp.asarray(rng.standard_normal(t.shape), t.dtype), v)
  apply = functools.partial(model.apply, train=True, capture_intermediates=True,
                            mutable=["intermediates", "batch_stats"])
  _, state = (jax.jit(apply) if jit else apply)(v, x)
  p = v["params"]
  want_norm, want_stage1 = _torch_reference(norm, x, p["conv0"]["kernel"], p["norm0"]["scale"],
                                            p["norm0"]["bias"], groups)
  inter = state["intermediates"]
  np.testing.assert_allclose(inter["norm0"]["__call__"][0], want_norm, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(inter["stage1"][0], want_stage1, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_eval_logits_do_not_depend_on_padding_rows(norm):
  """Eval batches are padded with zeros and masked: in eval mode BN uses running statistics and
  GN (so LN and IN, its 1-group and C-group cases) is per example, so a real example's logits are
  those of the unpadded batch."""
  model = models.create("small_cnn", width=4, num_groups=2, norm=norm)
  x = jnp.asarray(np.random.default_rng(1).standard_normal((3, 8, 8, 1)), jnp.float32)
  v = model.init(jax.random.key(0), x, train=False)
  padded = jnp.concatenate([x, jnp.zeros((5, 8, 8, 1))])
  apply = functools.partial(model.apply, train=False)
  np.testing.assert_allclose(apply(v, padded)[:3], apply(v, x), rtol=1e-5, atol=1e-5)
