"""LSTM / GRU baselines: logits against torch's nn.LSTM / nn.GRU with copied weights, the
closed-form parameter counts against Flax's and torch's, and the budget matching to the TCN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn as tnn

from cnnlab import models
from cnnlab.models import rnn

GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_logits_match_torch(cell):
  model = rnn.RNNClassifier(cell=cell, hidden_size=5, num_layers=2, num_classes=3)
  x = np.random.default_rng(0).standard_normal((2, 7, 3)).astype(np.float32)
  v = model.init(jax.random.key(1), x)
  rng = np.random.default_rng(1)  # non-zero biases, so that their mapping is exercised
  p = jax.tree_util.tree_map_with_path(
      lambda path, a: np.array(a, np.float32) + np.float32(path[-1].key == "bias") *
      rng.standard_normal(a.shape).astype(np.float32), v["params"])
  ref = {"lstm": tnn.LSTM, "gru": tnn.GRU}[cell](3, 5, num_layers=2, batch_first=True)
  t = torch.from_numpy
  with torch.no_grad():
    for i in range(2):
      c = p[f"{cell}{i}"]
      w_ih = np.concatenate([c[f"i{g}"]["kernel"].T for g in GATES[cell]])
      w_hh = np.concatenate([c[f"h{g}"]["kernel"].T for g in GATES[cell]])
      if cell == "lstm":  # Flax: one bias per gate, on the hidden-to-hidden dense
        b_ih = np.zeros(20, np.float32)
        b_hh = np.concatenate([c[f"h{g}"]["bias"] for g in GATES[cell]])
      else:  # Flax GRU: input biases for r, z, n; the hidden n bias sits inside r * (...)
        b_ih = np.concatenate([c[f"i{g}"]["bias"] for g in GATES[cell]])
        b_hh = np.concatenate([np.zeros(10, np.float32), c["hn"]["bias"]])
      for name, a in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih),
                      ("bias_hh", b_hh)):
        getattr(ref, f"{name}_l{i}").copy_(t(np.ascontiguousarray(a)))
    out, _ = ref(t(x))
    expected = (out[:, -1].numpy() @ p["fc"]["kernel"]) + p["fc"]["bias"]
  got = jax.jit(model.apply)({"params": p}, x)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell,h,c,out,layers", [("lstm", 7, 3, 2, 1), ("lstm", 4, 1, 10, 3),
                                                 ("gru", 7, 3, 2, 1), ("gru", 5, 2, 4, 2)])
def test_num_params_formula(cell, h, c, out, layers):
  model = rnn.RNNClassifier(cell=cell, hidden_size=h, num_layers=layers, num_classes=out)
  v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 4, c)))
  n = rnn.num_params(cell, h, c, out, layers)
  assert _count(v["params"]) == n
  tmod = {"lstm": tnn.LSTM, "gru": tnn.GRU}[cell](c, h, num_layers=layers)
  torch_rnn = sum(q.numel() for q in tmod.parameters())
  # torch has two bias vectors per gate (b_ih, b_hh); Flax one (two for the GRU's n gate)
  assert torch_rnn - (4 * h if cell == "lstm" else 2 * h) * layers == n - h * out - out


def test_matched_to_tcn_budget():
  budget = models.get_spec("tcn").num_params
  assert budget == 66_910
  for cell, h in (("lstm", 127), ("gru", 146)):
    assert rnn.matched_hidden_size(cell, budget, 1, 10) == h
    assert rnn.num_params(cell, h, 1, 10) <= budget < rnn.num_params(cell, h + 1, 1, 10)
    spec = models.get_spec(cell)
    assert spec.num_params == rnn.num_params(cell, h, 1, 10)
    assert models.create(cell).hidden_size == h


def test_per_timestep_head_and_errors():
  model = rnn.RNNClassifier(cell="gru", hidden_size=4, num_classes=3, head="per_timestep")
  x = jnp.ones((2, 6, 1))
  v = model.init(jax.random.key(0), x)
  y = model.apply(v, x)
  assert y.shape == (2, 6, 3)
  np.testing.assert_allclose(model.clone(head="last").apply(v, x), y[:, -1], rtol=1e-6)
  with pytest.raises(ValueError, match=r"cell='rnn' is not one of \('lstm', 'gru'\)"):
    rnn.RNNClassifier(cell="rnn").init(jax.random.key(0), x)
