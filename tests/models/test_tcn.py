"""TCN: Bai et al.'s network re-stated in torch (weight_norm Conv1d, pad + chomp, residual)
for parameter counts and outputs with copied weights; causality for every conv impl that serves
causal dilated 1D convs; analytic receptive field == the gradient's; heads; big configs
abstractly."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn as tnn
from torch.nn.utils.parametrizations import weight_norm

from cnnlab import models
from cnnlab import nn as cnn
from cnnlab.models import tcn
from cnnlab.ops import conv_registry
from models.causal import grad_at

CAUSAL_IMPLS = conv_registry.impls_supporting((1, 16, 3), (3, 3, 3), padding="CAUSAL",
                                              dilation=4)


class TorchTemporalBlock(tnn.Module):
  """Bai et al.'s TemporalBlock (their repo's tcn.py): conv -> chomp -> ReLU -> dropout, twice."""

  def __init__(self, n_in, n_out, k, d):
    super().__init__()
    self.pad = (k - 1) * d
    self.conv1 = weight_norm(tnn.Conv1d(n_in, n_out, k, padding=self.pad, dilation=d))
    self.conv2 = weight_norm(tnn.Conv1d(n_out, n_out, k, padding=self.pad, dilation=d))
    self.downsample = tnn.Conv1d(n_in, n_out, 1) if n_in != n_out else None

  def forward(self, x):
    y = torch.relu(self.conv1(x)[..., :-self.pad])
    y = torch.relu(self.conv2(y)[..., :-self.pad])
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchTCN(tnn.Module):
  def __init__(self, n_in, channels, k, n_out):
    super().__init__()
    blocks, c = [], n_in
    for i, h in enumerate(channels):
      blocks.append(TorchTemporalBlock(c, h, k, 2 ** i))
      c = h
    self.network = tnn.Sequential(*blocks)
    self.linear = tnn.Linear(c, n_out)

  def forward(self, x_ncl):
    return self.linear(self.network(x_ncl)[:, :, -1])


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("name,n_in,channels,k,n_out", [
    ("tcn", 1, (25,) * 8, 7, 10), ("tcn_adding", 2, (30,) * 8, 7, 1),
    ("tcn_copy", 1, (10,) * 8, 8, 10)])
def test_parameter_count_matches_torch(name, n_in, channels, k, n_out):
  spec = models.get_spec(name)
  v = jax.eval_shape(models.create(name).init, jax.random.key(0),
                     jnp.zeros((1, *spec.input_shape)))
  with torch.device("meta"):
    ref = sum(p.numel() for p in TorchTCN(n_in, channels, k, n_out).parameters())
  assert _count(v["params"]) == ref
  assert spec.num_params in (None, ref)


def test_outputs_match_torch_with_copied_weights():
  model = tcn.TCN(num_classes=3, channels=(4, 4, 5), kernel_size=3, dropout_rate=0.0)
  x = np.random.default_rng(0).standard_normal((2, 20, 2)).astype(np.float32)
  v = model.init(jax.random.key(1), x)
  p = jax.tree.map(np.asarray, v["params"])
  rng = np.random.default_rng(1)
  ref = TorchTCN(2, (4, 4, 5), 3, 3)
  t = lambda a: torch.from_numpy(np.array(a, np.float32))  # noqa: E731
  with torch.no_grad():
    for i, block in enumerate(ref.network):
      lv = p[f"level{i}"]
      for j in (1, 2):
        conv, g = getattr(block, f"conv{j}"), rng.uniform(0.5, 1.5, lv[f"conv{j}"]["bias"].shape)
        lv[f"conv{j}_wn"][f"conv{j}/kernel/scale"] = g  # a non-trivial g, copied to torch too
        conv.parametrizations.weight.original1.copy_(t(lv[f"conv{j}"]["kernel"].transpose(2, 1, 0)))
        conv.parametrizations.weight.original0.copy_(t(g[:, None, None]))
        conv.bias.copy_(t(lv[f"conv{j}"]["bias"] + 0.1))
        lv[f"conv{j}"]["bias"] = lv[f"conv{j}"]["bias"] + 0.1
      if block.downsample is not None:
        block.downsample.weight.copy_(t(lv["downsample"]["kernel"].transpose(2, 1, 0)))
        block.downsample.bias.copy_(t(lv["downsample"]["bias"]))
    ref.linear.weight.copy_(t(p["fc"]["kernel"].T))
    ref.linear.bias.copy_(t(p["fc"]["bias"]))
    expected = ref(t(x.transpose(0, 2, 1))).numpy()
  got = jax.jit(model.apply)({"params": p}, x)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("impl", CAUSAL_IMPLS)
def test_causal_for_every_impl(impl):
  model = tcn.TCN(num_classes=2, channels=(3, 3), kernel_size=3, head="per_timestep",
                  conv_impl=impl)
  x = jnp.abs(jax.random.normal(jax.random.key(0), (1, 16, 2)))
  t, r = 12, model.receptive_field
  assert r == 13  # 1 + 2*(3-1)*(1+2)
  g = np.abs(grad_at(model, x, t)).max(-1)
  outside = np.concatenate([g[t + 1:], g[:t - r + 1]])
  if impl == "fft":  # the FFT product mixes every position: round-off leaks, ~1e-8 relative
    assert outside.max() <= 1e-6 * g.max()
  else:
    assert outside.max() == 0.0  # nothing after t, nothing before the receptive field
  assert np.all(g[t - r + 1:t + 1] > 1e-6 * g.max())


@pytest.mark.parametrize("k,levels", [(7, 8), (2, 4), (3, 5)])
def test_receptive_field_analytic_equals_gradient(k, levels):
  r = tcn.receptive_field(k, levels)
  assert r == 1 + 2 * (k - 1) * (2 ** levels - 1)
  model = tcn.TCN(num_classes=1, channels=(2,) * levels, kernel_size=k, head="per_timestep",
                  dropout_rate=0.0)
  length = r + 30
  x = jnp.abs(jax.random.normal(jax.random.key(0), (1, length, 1))) + 0.1
  g = np.abs(grad_at(model, x, length - 1))[:, 0]
  nz = np.flatnonzero(g)
  assert (nz[0], nz[-1]) == (length - r, length - 1)


def test_heads_and_dropout():
  last = tcn.TCN(num_classes=3, channels=(4, 4), kernel_size=3, dropout_rate=0.5)
  every = last.clone(head="per_timestep")
  x = jax.random.normal(jax.random.key(0), (2, 10, 1))
  v = last.init(jax.random.key(1), x)
  np.testing.assert_allclose(last.apply(v, x), every.apply(v, x)[:, -1], rtol=1e-6, atol=1e-7)
  a = last.apply(v, x, train=True, rngs={"dropout": jax.random.key(2)})
  assert a.shape == (2, 3) and not np.allclose(a, last.apply(v, x))
  with pytest.raises(ValueError, match=r"head='first' is not one of \('last', 'per_timestep'\)"):
    last.clone(head="first").init(jax.random.key(0), x)


def test_big_configs_abstract_and_conv_impl():
  impls = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, cnn.Conv) and context.method_name == "__call__":
      impls.append((context.module.path, context.module.impl))
    return next_fun(*args, **kwargs)

  model = models.create("tcn_copy", conv_impl="shift")
  x = jax.ShapeDtypeStruct((4, 1020, 1), jnp.float32)
  with flax.linen.intercept_methods(record):
    v = jax.eval_shape(model.init, jax.random.key(0), x)
  assert {impl for _, impl in impls} == {"shift"} and len(set(impls)) == 8 * 2 + 1
  assert jax.eval_shape(model.apply, v, x).shape == (4, 1020, 10)
  assert models.create("tcn").receptive_field == 3061 >= 784
