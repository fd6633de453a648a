"""GoogLeNet and Inception-v3 against torchvision's documented parameter counts and GFLOPS, a plain
torch.nn re-statement of GoogLeNet (parameter counts; logits with copied weights), a closed-form
count of Inception-v3 from torchvision's layer list, and closed-form naive/reduced block costs."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.extend import core as jex_core
from torch import nn as tnn
from torch.nn import functional as F

from cnnlab import models
from cnnlab import nn as cnn
from cnnlab.experiments import inception_cost as ic
from cnnlab.models import blocks
from cnnlab.models import googlenet as gl

# torchvision weight metadata (num_params, GFLOPS = GMACs), pytorch.org/vision/stable/models.html
TORCHVISION = {"googlenet": (6_624_904, 1.498), "inception_v3": (27_161_264, 5.713)}
GOOGLENET_BLOCKS = {  # torchvision: (in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)
    "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128), "5b": (832, 384, 192, 384, 48, 128, 128)}


# --------------------------------------------------------------------------- helpers
def count_macs(jaxpr) -> int:
  """Multiply-adds of conv_general_dilated and dot_general equations, recursing into calls."""
  total = 0
  for eqn in jaxpr.eqns:
    out = math.prod(eqn.outvars[0].aval.shape) if eqn.outvars else 0
    if eqn.primitive.name == "conv_general_dilated":
      rhs = eqn.invars[1].aval.shape
      total += out * math.prod(rhs) // rhs[eqn.params["dimension_numbers"].rhs_spec[0]]
    elif eqn.primitive.name == "dot_general":
      (contract, _), _ = eqn.params["dimension_numbers"]
      total += out * math.prod(eqn.invars[0].aval.shape[d] for d in contract)
    total += sum(count_macs(sub) for sub in jex_core.jaxprs_in_params(eqn.params))
  return total


def params_and_macs(model, input_shape):
  """(trainable parameter count, forward MACs) of ``model.init`` on one example, abstractly."""
  x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
  closed, (_, variables) = jax.make_jaxpr(
      lambda x: model.init_with_output(jax.random.key(0), x), return_shape=True)(x)
  n = sum(p.size for p in jax.tree.leaves(variables["params"]))
  return n, count_macs(closed.jaxpr)


def n_params(model, input_shape):
  v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *input_shape)))
  return sum(p.size for p in jax.tree.leaves(v["params"]))


def random_variables(model, input_shape, seed=0):
  """Variables of ``model``'s shapes (from ``eval_shape``), filled without compiling ``init`` (whose
  XLA compile dominates a CPU test): kernels N(0, 1/fan_in), BN scale/var 1, the rest 0."""
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *input_shape)))
  rng = np.random.default_rng(seed)

  def fill(path, s):
    name = path[-1].key
    if name == "kernel":
      fan_in = math.prod(s.shape[:-1])
      return jnp.asarray(rng.standard_normal(s.shape, np.float32) / math.sqrt(fan_in))
    return (jnp.ones if name in ("scale", "var") else jnp.zeros)(s.shape, s.dtype)
  return jax.tree_util.tree_map_with_path(fill, shapes)


def torch_to_flax(module: tnn.Module):
  """torch state dict -> Flax ``{'params', 'batch_stats'}``. Names: ``a.b.0.conv`` ->
  ``a/b_0/conv``; 4-d weights are conv kernels (OIHW -> HWIO), 2-d dense (OI -> IO), 1-d BN
  scales."""
  params, stats = {}, {}
  for key, t in module.state_dict().items():
    *path, leaf = key.split(".")
    if leaf == "num_batches_tracked":
      continue
    merged = []
    for p in path:
      if p.isdigit():
        merged[-1] = f"{merged[-1]}_{p}"
      else:
        merged.append(p)
    a = t.detach().numpy()
    if leaf == "weight" and a.ndim == 1:
      leaf = "scale"
    elif leaf == "weight":
      leaf, a = "kernel", a.transpose(2, 3, 1, 0) if a.ndim == 4 else a.T
    tree, leaf = ((stats, {"running_mean": "mean", "running_var": "var"}[leaf])
                  if leaf.startswith("running") else (params, leaf))
    for p in merged:
      tree = tree.setdefault(p, {})
    tree[leaf] = jnp.asarray(a)
  return {"params": params, "batch_stats": stats}


def randomise_bn(module: tnn.Module, seed=0):
  g = torch.Generator().manual_seed(seed)
  for m in module.modules():
    if isinstance(m, tnn.BatchNorm2d):
      c = m.num_features
      m.weight.data = 1 + 0.2 * torch.randn(c, generator=g)
      m.bias.data = 0.2 * torch.randn(c, generator=g)
      m.running_mean = 0.2 * torch.randn(c, generator=g)
      m.running_var = 0.5 + torch.rand(c, generator=g)


# --------------------------------------------------- torch re-statement (torchvision GoogLeNet)
class TBasicConv(tnn.Module):
  def __init__(self, cin, cout, k, padding=0, stride=1):
    super().__init__()
    self.conv = tnn.Conv2d(cin, cout, k, stride, padding, bias=False)
    self.bn = tnn.BatchNorm2d(cout, eps=1e-3)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


class TInception(tnn.Module):
  def __init__(self, cin, c1, r3, c3, r5, c5, pool):
    super().__init__()
    self.branch1 = TBasicConv(cin, c1, 1)
    self.branch2 = tnn.Sequential(TBasicConv(cin, r3, 1), TBasicConv(r3, c3, 3, 1))
    self.branch3 = tnn.Sequential(TBasicConv(cin, r5, 1), TBasicConv(r5, c5, 3, 1))
    self.branch4 = tnn.Sequential(tnn.MaxPool2d(3, 1, 1, ceil_mode=True), TBasicConv(cin, pool, 1))

  def forward(self, x):
    return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class TAux(tnn.Module):
  def __init__(self, cin, num_classes):
    super().__init__()
    self.conv = TBasicConv(cin, 128, 1)
    self.fc1 = tnn.Linear(2048, 1024)
    self.fc2 = tnn.Linear(1024, num_classes)


class TGoogLeNet(tnn.Module):
  def __init__(self, num_classes=1000, aux=False):
    super().__init__()
    self.conv1 = TBasicConv(3, 64, 7, 3, 2)
    self.conv2 = TBasicConv(64, 64, 1)
    self.conv3 = TBasicConv(64, 192, 3, 1)
    for name, cfg in GOOGLENET_BLOCKS.items():
      setattr(self, f"inception{name}", TInception(*cfg))
    if aux:
      self.aux1, self.aux2 = TAux(512, num_classes), TAux(528, num_classes)
    self.fc = tnn.Linear(1024, num_classes)

  def forward(self, x):  # eval mode: the auxiliary heads are not run
    pool = functools.partial(F.max_pool2d, kernel_size=3, stride=2, ceil_mode=True)
    x = pool(self.conv1(x))
    x = pool(self.conv3(self.conv2(x)))
    x = pool(self.inception3b(self.inception3a(x)))
    for name in ("4a", "4b", "4c", "4d", "4e"):
      x = getattr(self, f"inception{name}")(x)
    x = F.max_pool2d(x, 2, 2, ceil_mode=True)
    x = self.inception5b(self.inception5a(x))
    return self.fc(x.mean((2, 3)))


def inception_v3_closed_form(num_classes=1000, aux=True):
  """Trainable parameters from torchvision's Inception3 layer list: (in, out, kh, kw) per
  BasicConv2d (kernel + BN scale and bias) and the dense layers."""
  def conv(i, o, kh, kw=None):
    return i * o * kh * (kw or kh) + 2 * o

  def block_a(i, pool):
    return (conv(i, 64, 1) + conv(i, 48, 1) + conv(48, 64, 5) + conv(i, 64, 1) + conv(64, 96, 3)
            + conv(96, 96, 3) + conv(i, pool, 1))

  def block_c(i, c7):
    return (conv(i, 192, 1) + conv(i, c7, 1) + conv(c7, c7, 1, 7) + conv(c7, 192, 7, 1)
            + conv(i, c7, 1) + 3 * conv(c7, c7, 7, 1) + conv(c7, 192, 1, 7) + conv(i, 192, 1))

  def block_e(i):
    return (conv(i, 320, 1) + conv(i, 384, 1) + 2 * conv(384, 384, 1, 3) + conv(i, 448, 1)
            + conv(448, 384, 3) + 2 * conv(384, 384, 1, 3) + conv(i, 192, 1))

  stem = conv(3, 32, 3) + conv(32, 32, 3) + conv(32, 64, 3) + conv(64, 80, 1) + conv(80, 192, 3)
  mixed5 = block_a(192, 32) + block_a(256, 64) + block_a(288, 64)
  mixed6a = conv(288, 384, 3) + conv(288, 64, 1) + conv(64, 96, 3) + conv(96, 96, 3)
  mixed6 = block_c(768, 128) + 2 * block_c(768, 160) + block_c(768, 192)
  mixed7a = conv(768, 192, 1) + conv(192, 320, 3) + conv(768, 192, 1) + 2 * conv(192, 192, 1, 7) \
      + conv(192, 192, 3)
  mixed7 = block_e(1280) + block_e(2048)
  fc = 2048 * num_classes + num_classes
  aux_head = conv(768, 128, 1) + conv(128, 768, 5) + 768 * num_classes + num_classes
  return stem + mixed5 + mixed6a + mixed6 + mixed7a + mixed7 + fc + (aux_head if aux else 0)


# --------------------------------------------------------------------------- counts
def test_googlenet_params_and_macs():
  """Without aux heads: torchvision's count and GFLOPS; the torch re-statement's count."""
  spec = models.get_spec("googlenet")
  n, macs = params_and_macs(models.create("googlenet"), spec.input_shape)
  with torch.device("meta"):
    ref = sum(p.numel() for p in TGoogLeNet().parameters())
  assert n == ref == TORCHVISION["googlenet"][0] == spec.num_params
  assert macs / 1e9 == pytest.approx(TORCHVISION["googlenet"][1], abs=0.0005)


def test_googlenet_aux_params_match_torch_restatement():
  # No documented count with the heads (torchvision's weights drop them): the re-statement's.
  with torch.device("meta"):
    ref = sum(p.numel() for p in TGoogLeNet(aux=True).parameters())
  assert n_params(models.create("googlenet", aux_logits=True), (224, 224, 3)) == ref


def test_inception_v3_params_and_macs():
  """With AuxLogits: torchvision's 27,161,264 and the closed form; MACs of the eval forward
  (without the training-only head) against torchvision's GFLOPS."""
  spec = models.get_spec("inception_v3")
  assert n_params(models.create("inception_v3"), spec.input_shape) == spec.num_params
  assert inception_v3_closed_form(aux=True) == TORCHVISION["inception_v3"][0] == spec.num_params
  n, macs = params_and_macs(models.create("inception_v3", aux_logits=False), spec.input_shape)
  assert n == inception_v3_closed_form(aux=False)
  assert macs / 1e9 == pytest.approx(TORCHVISION["inception_v3"][1], abs=0.0005)


# ------------------------------------------------------------ naive vs reduced Inception block
def _block(kind, k, channels):
  conv = functools.partial(cnn.Conv, use_bias=False, impl="lax")
  norm = functools.partial(cnn.BatchNorm, use_running_average=True)
  block = functools.partial(blocks.ConvNormAct, conv=conv, norm=norm, padding=0, act=jax.nn.relu)
  return gl.Inception(channels, block, kind, k)


@pytest.mark.parametrize("kernel_5x5", [3, 5])
def test_inception_block_cost_closed_form_matches_module(kernel_5x5):
  for row in ic.inception_cost_table(kernel_5x5):
    for kind in gl.INCEPTION_BLOCKS:
      block = _block(kind, kernel_5x5, gl.INCEPTION_CHANNELS[row["name"]])
      n, macs = params_and_macs(block, (row["hw"], row["hw"], row["c_in"]))
      cost = row[kind]
      assert (n, macs) == (cost["params"], cost["macs"]), (row["name"], kind)


def test_inception_cost_table_sums_to_torchvision_googlenet():
  """Stem + the 9 closed-form (reduced, 3x3) blocks + classifier = torchvision's 6,624,904."""
  stem = (3 * 64 * 49 + 128) + (64 * 64 + 128) + (64 * 192 * 9 + 384)
  blocks = sum(r["reduced"]["params"] for r in ic.inception_cost_table(kernel_5x5=3))
  assert stem + blocks + 1024 * 1000 + 1000 == TORCHVISION["googlenet"][0]


def test_naive_googlenet_widens_and_costs_more():
  table = ic.inception_cost_table(kernel_5x5=5)
  assert all(r["naive"]["macs"] > r["reduced"]["macs"] for r in table)
  # The naive network feeds each block the previous naive block's (wider) output.
  c, total = 192, 0
  for r in table:
    cost = ic.inception_cost(c, gl.INCEPTION_CHANNELS[r["name"]], r["hw"], block="naive")
    total, c = total + cost["params"], cost["c_out"]
  stem = (3 * 64 * 49 + 128) + (64 * 64 + 128) + (64 * 192 * 9 + 384)
  model = models.create("googlenet", inception_block="naive", kernel_5x5=5)
  assert n_params(model, (224, 224, 3)) == stem + total + c * 1000 + 1000


# --------------------------------------------------------------------------- numerics
def test_googlenet_matches_torch_with_copied_weights():
  """Eval mode, odd input size (41x41) so that ceil_mode pooling matters; jitted."""
  torch.manual_seed(0)
  ref = TGoogLeNet(num_classes=10).eval()
  randomise_bn(ref)
  x = torch.randn(2, 3, 41, 41)
  with torch.no_grad():
    want = ref(x).numpy()
  model = models.create("googlenet", num_classes=10)
  variables = torch_to_flax(ref)
  init = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 41, 41, 3)))
  assert jax.tree.structure(variables) == jax.tree.structure(init)
  got = jax.jit(model.apply)(variables, jnp.asarray(x.numpy().transpose(0, 2, 3, 1)))
  assert got.shape == (2, 10) and bool(jnp.isfinite(got).all())
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_torch_default_initialisers():
  """``torch_default_bias_init`` against torch's ``nn.Linear`` bias: U(+-1/sqrt(fan_in))."""
  bias = np.asarray(blocks.torch_default_bias_init(64)(jax.random.key(0), (20_000,)))
  with torch.no_grad():
    ref = tnn.Linear(64, 20_000).bias.numpy()
  assert np.abs(bias).max() <= 1 / 8 and np.abs(ref).max() <= 1 / 8
  assert bias.std() == pytest.approx(ref.std(), rel=0.03)


# --------------------------------------------------------------------------- running
def test_googlenet_train_mode_aux_outputs_and_batch_stats():
  model = models.create("googlenet", num_classes=7, aux_logits=True)
  variables = random_variables(model, (32, 32, 3))
  x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))

  @jax.jit
  def train_forward(variables, x):
    return model.apply(variables, x, train=True, mutable=["batch_stats"],
                       rngs={"dropout": jax.random.key(2)})
  out, state = train_forward(variables, x)
  assert isinstance(out, gl.GoogLeNetOutputs)
  assert all(o.shape == (2, 7) and bool(jnp.isfinite(o).all()) for o in out)
  before, after = variables["batch_stats"]["conv1"]["bn"], state["batch_stats"]["conv1"]["bn"]
  assert not np.allclose(before["mean"], after["mean"])
  assert jax.tree.structure(state["batch_stats"]) == jax.tree.structure(variables["batch_stats"])


def test_inception_v3_small_forward_and_train_shapes():
  model = models.create("inception_v3", num_classes=5)
  variables = random_variables(model, (75, 75, 3))
  assert "AuxLogits" in variables["params"]
  logits = jax.jit(model.apply)(variables, jax.random.normal(jax.random.key(0), (2, 75, 75, 3)))
  assert logits.shape == (2, 5) and bool(jnp.isfinite(logits).all())
  out, state = jax.eval_shape(
      lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"],
                               rngs={"dropout": jax.random.key(0)}),
      variables, jax.ShapeDtypeStruct((2, 299, 299, 3), jnp.float32))
  assert out.logits.shape == out.aux_logits.shape == (2, 5)
  assert jax.tree.structure(state["batch_stats"]) == jax.tree.structure(variables["batch_stats"])


def test_sown_features():
  model = models.create("googlenet", num_classes=3)
  x = jnp.zeros((1, 64, 64, 3))
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  _, feats = jax.eval_shape(lambda v, x: models.extract_features(model, v, x), variables, x)
  assert {k: v.shape for k, v in feats.items()} == {
      "stem": (1, 8, 8, 192), "stage1": (1, 8, 8, 480), "stage2": (1, 4, 4, 832),
      "stage3": (1, 2, 2, 1024), "pre_logits": (1, 1024)}


@pytest.mark.parametrize("name, kwargs, shape, match", [
    ("googlenet", {"inception_block": "wide"}, (32, 32, 3), "inception_block"),
    ("googlenet", {"kernel_5x5": 7}, (32, 32, 3), "kernel_5x5"),
    ("inception_v3", {}, (64, 64, 3), "75x75"),
])
def test_bad_options_raise_value_error(name, kwargs, shape, match):
  with pytest.raises(ValueError, match=match):
    jax.eval_shape(models.create(name, **kwargs).init, jax.random.key(0), jnp.zeros((1, *shape)))


def test_inception_v3_aux_training_needs_299():
  model = models.create("inception_v3")
  x = jnp.zeros((1, 75, 75, 3))
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  with pytest.raises(ValueError, match="aux_logits"):
    jax.eval_shape(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"],
                                         rngs={"dropout": jax.random.key(0)}), variables)
