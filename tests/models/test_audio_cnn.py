"""M5 / M11 (Dai et al. 2017, Table 1) re-stated in torch: parameter counts, feature lengths,
and eval-mode logits with copied weights; the spectrogram CNN's shapes and input check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn as tnn

from cnnlab import models

# Dai et al. 2017, Table 1: stem [80/4, c], then (features, convs) per stage, pool after stage?
TABLE = {
    "m5": (128, [(128, 1), (256, 1), (512, 1)], [True, True, True]),
    "m11": (64, [(64, 2), (128, 2), (256, 3), (512, 2)], [True, True, True, False]),
}


def torch_mnet(name, num_classes=10):
  stem, stages, pools = TABLE[name]
  layers = [tnn.Conv1d(1, stem, 80, stride=4, padding=38, bias=False), tnn.BatchNorm1d(stem),
            tnn.ReLU(), tnn.MaxPool1d(4)]
  c = stem
  for (f, n), pool in zip(stages, pools):
    for _ in range(n):
      layers += [tnn.Conv1d(c, f, 3, padding=1, bias=False), tnn.BatchNorm1d(f), tnn.ReLU()]
      c = f
    layers += [tnn.MaxPool1d(4)] if pool else []
  return tnn.Sequential(*layers, tnn.AdaptiveAvgPool1d(1), tnn.Flatten(),
                        tnn.Linear(c, num_classes))


@pytest.mark.parametrize("name", ["m5", "m11"])
def test_counts_and_lengths_match_torch(name):
  spec = models.get_spec(name)
  model = models.create(name)
  x = jax.ShapeDtypeStruct((2, *spec.input_shape), jnp.float32)
  v = jax.eval_shape(model.init, jax.random.key(0), x)
  with torch.device("meta"):
    ref = torch_mnet(name)
    ref_count = sum(p.numel() for p in ref.parameters())
    y, lengths = torch.zeros(2, 1, 8000), []
    for layer in ref:
      y = layer(y)
      lengths += [y.shape[-1]] if isinstance(layer, tnn.MaxPool1d) else []
  assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(v["params"])) == ref_count
  assert spec.num_params == ref_count  # m5 558,090 (paper 0.5M), m11 1,784,202 (paper 1.8M)
  _, inter = jax.eval_shape(lambda v, x: model.apply(v, x, mutable="intermediates"), v, x)
  sown = [inter["intermediates"][k][0].shape[1] for k in ["stem"] + [
      f"stage{i + 1}" for i, p in enumerate(TABLE[name][2]) if p]]
  assert sown == lengths == [500, 125, 31, 7]


def test_m5_logits_match_torch_eval_mode():
  model = models.create("m5", num_classes=4)
  x = np.random.default_rng(0).standard_normal((2, 1024, 1)).astype(np.float32)
  shapes = jax.eval_shape(model.init, jax.random.key(0), x)
  rng = np.random.default_rng(1)
  v = jax.tree_util.tree_map_with_path(
      lambda path, a: jnp.asarray(
          rng.uniform(0.5, 1.5, a.shape) if path[-1].key in ("scale", "var")
          else rng.standard_normal(a.shape) * (np.sqrt(2 / np.prod(a.shape[:-1]))
                                               if path[-1].key == "kernel" else 0.1),
          jnp.float32), shapes)
  ref = torch_mnet("m5", 4).eval()
  t = lambda a: torch.from_numpy(np.array(a, np.float32))  # noqa: E731
  names = ["conv0"] + [f"stage{i + 1}_0" for i in range(3)]
  convs = [m for m in ref if isinstance(m, tnn.Conv1d)]
  bns = [m for m in ref if isinstance(m, tnn.BatchNorm1d)]
  with torch.no_grad():
    for n, conv, bn in zip(names, convs, bns):
      conv.weight.copy_(t(v["params"][n]["conv"]["kernel"]).permute(2, 1, 0))
      bn.weight.copy_(t(v["params"][n]["bn"]["scale"]))
      bn.bias.copy_(t(v["params"][n]["bn"]["bias"]))
      bn.running_mean.copy_(t(v["batch_stats"][n]["bn"]["mean"]))
      bn.running_var.copy_(t(v["batch_stats"][n]["bn"]["var"]))
    ref[-1].weight.copy_(t(v["params"]["fc"]["kernel"]).T)
    ref[-1].bias.copy_(t(v["params"]["fc"]["bias"]))
    expected = ref(t(x).permute(0, 2, 1)).numpy()
  np.testing.assert_allclose(jax.jit(model.apply)(v, x), expected, rtol=1e-4, atol=1e-4)


def test_spectrogram_cnn():
  model = models.create("spectrogram_cnn", num_classes=5)
  x = jax.ShapeDtypeStruct((3, 40, 101, 1), jnp.float32)
  v = jax.eval_shape(model.init, jax.random.key(0), x)
  assert jax.eval_shape(model.apply, v, x).shape == (3, 5)
  with pytest.raises(ValueError, match=r"\(N, H, W, C\) with H, W >= 8"):
    model.init(jax.random.key(0), jnp.zeros((1, 4, 101, 1)))
