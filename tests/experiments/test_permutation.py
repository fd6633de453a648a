"""The permutation experiment: the ``cnn1d`` model against a torch re-statement of the MNIST-1D
paper's ConvBase, the pipeline's fixed permutation read back from position-coded signals, and a
smoke run of the table/figure code on a synthetic results.csv."""

import csv
import json
import statistics
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from cnnlab import models
from cnnlab.data import DataInfo, pipeline
from cnnlab.experiments import permutation
from cnnlab.train import config as config_lib

from conftest import REPO, load_config_module

CONFIG = "configs/experiments/permutation_mnist1d.py"


class TorchConvBase(torch.nn.Module):
  """Greydanus 2020 (mnist1d repo, notebooks/models.py) ConvBase, restated."""

  def __init__(self, channels=25, num_classes=10):
    super().__init__()
    self.conv1 = torch.nn.Conv1d(1, channels, 5, stride=2, padding=1)
    self.conv2 = torch.nn.Conv1d(channels, channels, 3, stride=2, padding=1)
    self.conv3 = torch.nn.Conv1d(channels, channels, 3, stride=2, padding=1)
    self.linear = torch.nn.Linear(channels * 5, num_classes)

  def forward(self, x_NxCxL):
    h = self.conv3(self.conv2(self.conv1(x_NxCxL).relu()).relu()).relu()
    return self.linear(h.flatten(1))


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_cnn1d_parameter_count_matches_torch():
  ref = sum(p.numel() for p in TorchConvBase().parameters())
  shapes = jax.eval_shape(lambda: models.create("cnn1d").init(jax.random.key(0),
                                                              jnp.zeros((1, 40, 1))))
  assert _count(shapes["params"]) == ref == models.get_spec("cnn1d").num_params


def _to_torch(params, tm):
  """Copies Flax params into ``tm``: conv (k, I, O) -> (O, I, k); the head's rows from
  position-major (l*C + c) to torch's channel-major flatten (c*L + l)."""
  with torch.no_grad():
    for i, conv in enumerate((tm.conv1, tm.conv2, tm.conv3)):
      p = params[f"conv{i}"]
      conv.weight.copy_(torch.from_numpy(np.asarray(p["kernel"]).transpose(2, 1, 0).copy()))
      conv.bias.copy_(torch.from_numpy(np.array(p["bias"])))
    k = np.asarray(params["head"]["kernel"])
    c = tm.conv3.out_channels
    tm.linear.weight.copy_(torch.from_numpy(
        k.reshape(-1, c, k.shape[-1]).transpose(2, 1, 0).reshape(k.shape[-1], -1).copy()))
    tm.linear.bias.copy_(torch.from_numpy(np.array(params["head"]["bias"])))


@pytest.mark.parametrize("conv_impl", ["lax", "im2col"])
@pytest.mark.parametrize("use_jit", [False, True])
def test_cnn1d_logits_match_torch(conv_impl, use_jit):
  model = models.create("cnn1d", num_classes=7, conv_impl=conv_impl)
  x = np.random.default_rng(0).standard_normal((3, 40, 1)).astype(np.float32)
  variables = model.init(jax.random.key(1), jnp.asarray(x))
  # Non-zero biases so that a mis-copied bias would show.
  variables = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.key(2), a.shape),
                           variables)
  apply = jax.jit(model.apply) if use_jit else model.apply
  ours = np.asarray(apply(variables, jnp.asarray(x)))
  tm = TorchConvBase(num_classes=7)
  _to_torch(variables["params"], tm)
  ref = tm(torch.from_numpy(x.transpose(0, 2, 1).copy())).detach().numpy()
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_cnn1d_rejects_non_1d_input():
  with pytest.raises(ValueError, match=r"\(N, L, C\)"):
    models.create("cnn1d").init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))


# --- the pipeline's permutation ------------------------------------------------------------

N, L = 24, 40
INFO = DataInfo(input_key="signal", label_key="label", input_shape=(L, 1),
                input_dtype="float32", num_classes=10, splits={"train": N})


def _coded_source():
  """Signal value = 1000 * example + position: any output sample says where it came from."""
  x = (1000 * np.arange(N)[:, None] + np.arange(L)[None, :]).astype(np.float32)[..., None]
  return [{"signal": x[i], "label": i % 10} for i in range(N)], x


def _data_cfg(permute, seed=0):
  cfg = config_lib.base().data
  cfg.permute_features, cfg.permute_seed = permute, seed
  return cfg


def _decode(x_BxLx1):
  v = np.asarray(x_BxLx1[..., 0]).astype(np.int64)
  return v // 1000, v % 1000  # example index, source position (per output position)


def _perms(cfg):
  """The position map read back from eval batches and from two epochs of train batches."""
  source, x = _coded_source()
  eval_x = np.concatenate([b["inputs"][b["mask"]] for b in
                           pipeline.eval_batches(source, INFO, cfg, batch_size=10)])
  it = iter(pipeline.train_dataset(source, INFO, cfg, batch_size=8, seed=3))
  train_x = np.concatenate([next(it)["inputs"] for _ in range(6)])
  return x, eval_x, train_x


@pytest.mark.parametrize("permute_seed", [0, 5])
def test_permutation_is_one_fixed_bijection_for_train_and_eval(permute_seed):
  x, eval_x, train_x = _perms(_data_cfg(True, permute_seed))
  ex, pos = _decode(eval_x)
  np.testing.assert_array_equal(ex, np.arange(N)[:, None].repeat(L, 1))  # rows kept
  perm = pos[0]
  assert sorted(perm) == list(range(L)) and not np.array_equal(perm, np.arange(L))
  assert (pos == perm).all()                               # the same for every eval example
  np.testing.assert_array_equal(eval_x, x[:, perm])        # numpy fancy indexing
  tex, tpos = _decode(train_x)
  assert (tex == tex[:, :1]).all() and (tpos == perm).all()  # train: same map, shuffled rows
  np.testing.assert_array_equal(train_x, x[tex[:, 0]][:, perm])


def test_permutation_depends_on_seed_and_is_off_by_default():
  perms = [_decode(_perms(_data_cfg(True, s))[1])[1][0] for s in (0, 1)]
  assert not np.array_equal(*perms)
  x, eval_x, train_x = _perms(_data_cfg(False))
  np.testing.assert_array_equal(eval_x, x)
  assert (_decode(train_x)[1] == np.arange(L)).all()


# --- table and figure ----------------------------------------------------------------------

ACC = {("mlp", False): [0.70, 0.72, 0.71], ("mlp", True): [0.71, 0.70, 0.69],
       ("cnn1d", False): [0.92, 0.93, 0.91], ("cnn1d", True): [0.60, 0.58, 0.62]}


def _write_csv(path):
  fields = ["point", "model.name", "data.permute_features", "seed", "status", "loss",
            "accuracy", "num_examples"]
  with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fields)
    w.writeheader()
    for (m, p), accs in ACC.items():
      for s, a in enumerate(accs):
        w.writerow({"point": f"{m}{p}{s}", "model.name": m, "data.permute_features": p,
                    "seed": s, "status": "done", "loss": 1.0, "accuracy": a,
                    "num_examples": 1000})
    w.writerow({"point": "failed", "model.name": "mlp", "data.permute_features": False,
                "seed": 9, "status": "failed"})


def _analysis(sweep_workdir):
  config = load_config_module(REPO / CONFIG).get_config("analysis")
  config.sweep_workdir = str(sweep_workdir)
  return config


def test_table_and_figure_from_synthetic_csv(tmp_path):
  _write_csv(tmp_path / "results.csv")
  rows = permutation.run(_analysis(tmp_path), str(tmp_path / "out"))["rows"]
  table = {(r["model"], r["permuted"]): r for r in rows}
  for k, accs in ACC.items():
    pct = [100 * a for a in accs]
    assert table[k]["seeds"] == 3  # the failed point is left out
    assert table[k]["mean"] == pytest.approx(statistics.mean(pct))
    assert table[k]["std"] == pytest.approx(statistics.pstdev(pct))
  md = (tmp_path / "out" / "permutation.md").read_text()
  assert "| CNN (1D) | 92.0 ± 0.8 (92.0, 93.0, 91.0) | 60.0 ± 1.6 (60.0, 58.0, 62.0) | 94 | 56 |" \
      in md
  assert "| GRU | – | – | 91 | 57 |" in md
  saved = json.loads((tmp_path / "out" / "permutation.json").read_text())
  assert len(saved["rows"]) == 4 and saved["published"]["cnn1d"]["true"] == 56.0
  assert (tmp_path / "out" / "permutation.png").stat().st_size > 5000


def test_script_smoke_and_missing_csv(tmp_path):
  _write_csv(tmp_path / "results.csv")
  out = subprocess.run([sys.executable, str(REPO / "scripts" / "run.py"),
                        f"--config={REPO / CONFIG}:analysis",
                        f"--config.sweep_workdir={tmp_path}", f"--workdir={tmp_path / 'o'}"],
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  assert (tmp_path / "o" / "permutation.png").exists()
  with pytest.raises(FileNotFoundError, match="run the sweep first"):
    permutation.run(_analysis(tmp_path / "nowhere"), str(tmp_path))


def test_rejects_a_csv_of_another_sweep(tmp_path):
  (tmp_path / "results.csv").write_text("point,model.norm,status\na,batch,done\n")
  with pytest.raises(ValueError, match=r"lacks the columns \['data.permute_features', "
                                       r"'model.name'\]"):
    permutation.read_results(tmp_path / "results.csv")
