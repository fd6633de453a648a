"""LeNet-5: parameter counts against the paper, outputs against the same network in torch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from cnnlab import models
from cnnlab.bench import torch_models


def _counts(name):
  params = jax.eval_shape(lambda: models.create(name).init(
      jax.random.key(0), jnp.zeros((1, 32, 32, 1))))["params"]
  per_layer = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    layer = path[0].key.split("_")[0]
    per_layer[layer] = per_layer.get(layer, 0) + int(np.prod(leaf.shape))
  return per_layer


def test_original_counts_match_lecun_1998():
  # LeCun et al. 1998, section II.B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164.
  # Output: linear 84 -> 10 (850) in place of the paper's RBF units.
  assert _counts("lenet5_original") == {"C1": 156, "S2": 12, "C3": 1516, "S4": 32,
                                        "C5": 48120, "F6": 10164, "output": 850}


def test_modern_count():
  assert sum(_counts("lenet5").values()) == 61_706  # full C3, no trainable subsampling


@pytest.mark.parametrize("jit", [False, True])
def test_matches_torch(jit):
  model = models.create("lenet5")
  x = np.random.default_rng(0).standard_normal((3, 32, 32, 1), dtype=np.float32)
  variables = model.init(jax.random.key(1), x)
  apply = jax.jit(model.apply) if jit else model.apply
  ours = apply(variables, x)
  ref = torch_models.load_flax_params(torch_models.LeNet5(), variables["params"])
  theirs = ref(torch.from_numpy(x).permute(0, 3, 1, 2)).detach().numpy()
  np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-5)
