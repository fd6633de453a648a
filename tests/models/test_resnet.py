"""ResNet family: parameter counts against torchvision's docs and an independent torch
re-statement, logits against torch with copied weights, training behaviour, options."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from torch import nn as tnn

from cnnlab.bench import torch_models
from cnnlab.models import create, extract_features, get_spec, list_models
from cnnlab.bench.torch_models import TorchResNet
from cnnlab.models.resnet import Bottleneck, ResNet

# torchvision model docs, "num_params" (1000 classes): independent published reference.
TORCHVISION_NUM_PARAMS = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336, "wide_resnet50_2": 68_883_240,
}
# (block, layers, groups, width_per_group) as torchvision's builders pass them.
TORCHVISION_ARGS = {
    "resnet18": ("basic", (2, 2, 2, 2), 1, 64), "resnet34": ("basic", (3, 4, 6, 3), 1, 64),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 1, 64),
    "resnet101": ("bottleneck", (3, 4, 23, 3), 1, 64),
    "resnet152": ("bottleneck", (3, 8, 36, 3), 1, 64),
    "resnext50_32x4d": ("bottleneck", (3, 4, 6, 3), 32, 4),
    "resnext101_32x8d": ("bottleneck", (3, 4, 23, 3), 32, 8),
    "wide_resnet50_2": ("bottleneck", (3, 4, 6, 3), 1, 128),
}


# Flax init accepts any key type; the 'rbg' generator compiles ~3x faster than threefry here.
INIT_KEY = jax.random.key(0, impl="rbg")


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _abstract_params(model, shape):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  return jax.eval_shape(model.init, jax.random.key(0), x)


@pytest.mark.parametrize("name", sorted(TORCHVISION_NUM_PARAMS))
def test_param_count_matches_torchvision(name):
  variables = _abstract_params(create(name), (1, 224, 224, 3))
  with torch.device("meta"):  # shapes only, no memory
    reference = TorchResNet(*TORCHVISION_ARGS[name])
  derived = sum(p.numel() for p in reference.parameters())
  assert derived == TORCHVISION_NUM_PARAMS[name]
  assert _count(variables["params"]) == TORCHVISION_NUM_PARAMS[name]
  assert get_spec(name).num_params == TORCHVISION_NUM_PARAMS[name]
  # batch_stats: running mean and var of every BN = 2 x the BN scale count.
  bn_scales = sum(int(np.prod(x.shape)) for p, x in jax.tree_util.tree_leaves_with_path(
      variables["params"]) if "scale" in jax.tree_util.keystr(p))
  assert _count(variables["batch_stats"]) == 2 * bn_scales


def _cifar_option_a_count(n, num_classes=10):
  """He et al. 2016 Sec. 4.2, option A (parameter-free shortcuts), counted from the text."""
  total = 3 * 9 * 16 + 2 * 16  # stem conv + BN
  cin = 16
  for c in (16, 32, 64):
    for _ in range(n):
      total += 9 * cin * c + 9 * c * c + 4 * c
      cin = c
  return total + 64 * num_classes + num_classes


@pytest.mark.parametrize("name,n,paper_m", [("resnet20", 3, 0.27), ("resnet32", 5, 0.46),
                                            ("resnet44", 7, 0.66), ("resnet56", 9, 0.85),
                                            ("resnet110", 18, 1.7)])
def test_cifar_resnet_param_counts(name, n, paper_m):
  count = _count(_abstract_params(create(name), (1, 32, 32, 3))["params"])
  assert count == _cifar_option_a_count(n)
  digits = 1 if paper_m >= 1 else 2  # the paper's Table 6 rounding
  assert round(count / 1e6, digits) == paper_m


def test_cifar_shortcut_b_adds_projections():
  a = _count(_abstract_params(create("resnet20"), (1, 32, 32, 3))["params"])
  b = _count(_abstract_params(create("resnet20", shortcut="B"), (1, 32, 32, 3))["params"])
  assert b - a == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)  # two 1x1 convs + their BNs


def test_wrn28_10_param_count():
  count = _count(_abstract_params(create("wrn28_10"), (1, 32, 32, 3))["params"])
  assert round(count / 1e6, 1) == 36.5  # Zagoruyko & Komodakis 2016, Table 1/4
  # From the architecture: n=4 pre-act blocks per stage, widths 160/320/640, 1x1 shortcuts.
  total, cin = 3 * 9 * 16, 16
  for c in (160, 320, 640):
    for j in range(4):
      total += 2 * cin + 9 * cin * c + 2 * c + 9 * c * c + (cin * c if j == 0 else 0)
      cin = c
  assert count == total + 2 * 640 + 640 * 10 + 10


def _to_flax(torch_model, abstract_variables):
  """Copies a TorchResNet's weights into our variable tree (OIHW -> HWIO, fc W -> W^T)."""
  sd = {k: v.detach().numpy() for k, v in torch_model.state_dict().items()}

  def torch_prefix(path):  # flax 'layer2_0/downsample_conv' -> torch 'layers.1.0.downsample.0'
    out = []
    for part in path:
      if part.startswith("layer"):
        i, j = part[len("layer"):].split("_")
        out.append(f"layers.{int(i) - 1}.{j}")
      else:
        out.append({"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}.get(
            part, part))
    return ".".join(out)

  def fill(tree, path=()):
    new = {}
    for k, v in tree.items():
      if isinstance(v, dict):
        new[k] = fill(v, path + (k,))
        continue
      t = torch_prefix(path)
      src = sd[{"kernel": f"{t}.weight", "scale": f"{t}.weight", "bias": f"{t}.bias",
                "mean": f"{t}.running_mean", "var": f"{t}.running_var"}[k]]
      if k == "kernel":
        src = src.transpose(2, 3, 1, 0) if src.ndim == 4 else src.T
      assert src.shape == v.shape, (path, k)
      new[k] = jnp.asarray(src)
    return new
  return {c: fill(abstract_variables[c]) for c in ("params", "batch_stats")}


@pytest.mark.parametrize("name,args,use_jit", [
    ("resnet18", ("basic", (2, 2, 2, 2), 1, 64), False),
    ("resnet18", ("basic", (2, 2, 2, 2), 1, 64), True),
    # a one-block-per-stage ResNeXt: grouped 3x3, stride on the 3x3 (v1.5), projections.
    ("resnext_tiny", ("bottleneck", (1, 1, 1, 1), 32, 4), True),
])
def test_logits_match_torch(name, args, use_jit):
  torch.manual_seed(0)
  ref = TorchResNet(*args, num_classes=10).eval()
  torch_models.randomize_bn(ref)
  if name == "resnet18":
    model = create("resnet18", num_classes=10)
  else:
    model = ResNet(stage_sizes=(1, 1, 1, 1), block_cls=Bottleneck, groups=32, width_per_group=4,
                   num_classes=10)
  # Even H: stride-2 SAME padding would be asymmetric there; odd W: checks the floor rule.
  x = np.random.default_rng(0).normal(size=(2, 3, 64, 45)).astype(np.float32)
  variables = _to_flax(ref, _abstract_params(model, (2, 64, 45, 3)))
  apply = jax.jit(model.apply) if use_jit else model.apply
  got = apply(variables, jnp.asarray(x.transpose(0, 2, 3, 1)))
  with torch.no_grad():
    want = ref(torch.from_numpy(x)).numpy()
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def small_resnet18():
  model = create("resnet18", small_stem=True, num_classes=10, zero_init_residual=True)
  x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  return model, jax.jit(model.init)(INIT_KEY, x), x


def test_small_stem_forward_and_train_mode_updates_batch_stats(small_resnet18):
  model, variables, x = small_resnet18
  logits = jax.jit(model.apply)(variables, x)
  assert logits.shape == (2, 10) and bool(jnp.all(jnp.isfinite(logits)))
  _, new_state = jax.jit(functools.partial(model.apply, train=True, mutable=["batch_stats"]))(
      variables, x)
  old, new = variables["batch_stats"]["bn1"], new_state["batch_stats"]["bn1"]
  assert not np.allclose(old["mean"], new["mean"])
  # torch's momentum 0.1: running mean 0 -> 0.1 * batch mean of bn1's input (the stem conv).
  conv_out = nn.Conv(64, (3, 3), padding=((1, 1), (1, 1)), use_bias=False).apply(
      {"params": {"kernel": variables["params"]["conv1"]["kernel"]}}, x)
  np.testing.assert_allclose(new["mean"], 0.1 * conv_out.mean((0, 1, 2)), rtol=1e-4, atol=1e-6)


def test_init_follows_torchvision(small_resnet18):
  _, variables, _ = small_resnet18
  kernel = np.asarray(variables["params"]["layer4_1"]["conv2"]["kernel"])  # 3x3x512x512
  ref = torch.empty(512, 512, 3, 3)
  tnn.init.kaiming_normal_(ref, mode="fan_out", nonlinearity="relu")
  assert abs(kernel.std() / ref.std().item() - 1) < 0.01
  assert abs(kernel.mean()) < 1e-3
  fc = np.asarray(variables["params"]["fc"]["kernel"])
  bound = 1 / np.sqrt(512)  # torch.nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  assert np.abs(fc).max() <= bound and np.abs(fc).max() > 0.9 * bound
  for block in ("layer1_0", "layer4_1"):  # zero_init_residual: last BN scale 0, others 1
    np.testing.assert_array_equal(variables["params"][block]["bn2"]["scale"], 0.0)
    np.testing.assert_array_equal(variables["params"][block]["bn1"]["scale"], 1.0)


def test_intermediates_have_torchvision_stage_shapes():
  model = create("resnet50")
  variables = _abstract_params(model, (1, 224, 224, 3))
  _, feats = jax.eval_shape(lambda v, x: extract_features(model, v, x), variables,
                            jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))
  assert {k: v.shape for k, v in feats.items()} == {
      "stem": (1, 56, 56, 64), "stage1": (1, 56, 56, 256), "stage2": (1, 28, 28, 512),
      "stage3": (1, 14, 14, 1024), "stage4": (1, 7, 7, 2048), "pre_logits": (1, 2048)}
  cifar = create("wrn28_10")
  variables = _abstract_params(cifar, (1, 32, 32, 3))
  _, feats = jax.eval_shape(lambda v, x: extract_features(cifar, v, x), variables,
                            jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))
  assert {k: v.shape for k, v in feats.items()} == {
      "stem": (1, 32, 32, 16), "stage1": (1, 32, 32, 160), "stage2": (1, 16, 16, 320),
      "stage3": (1, 8, 8, 640), "pre_logits": (1, 640)}


@pytest.fixture(scope="module")
def resnet20():
  """resnet20 variables (4 classes) and a batch; drop-path / shortcut options share them."""
  x = jax.random.normal(jax.random.key(0), (8, 32, 32, 3))
  return jax.jit(create("resnet20", num_classes=4).init)(INIT_KEY, x), x


def test_resnet20_overfits_a_tiny_batch(resnet20):
  variables, x = resnet20
  model = create("resnet20", num_classes=4)
  y = jnp.arange(8) % 4
  tx = optax.adam(3e-3)
  state = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))

  @jax.jit
  def step(state):
    params, stats, opt = state
    def loss_fn(p):
      logits, new = model.apply({"params": p, "batch_stats": stats}, x, train=True,
                                mutable=["batch_stats"])
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new
    (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt = tx.update(grads, opt, params)
    return (optax.apply_updates(params, updates), new["batch_stats"], opt), loss

  losses = []
  for _ in range(12):
    state, loss = step(state)
    losses.append(float(loss))
  assert np.isfinite(losses).all()
  assert losses[-1] < 0.5 * losses[0], losses


def test_drop_path_is_stochastic_only_in_training(resnet20):
  variables, x = resnet20
  model = create("resnet20", num_classes=4, drop_path_rate=0.5)
  run = jax.jit(lambda r, train: model.apply(variables, x, train=train, mutable=["batch_stats"],
                                             rngs={"dropout": r})[0], static_argnums=1)
  assert not np.allclose(run(jax.random.key(2), True), run(jax.random.key(3), True))
  np.testing.assert_array_equal(run(jax.random.key(2), False), run(jax.random.key(3), False))


def test_cifar_shortcut_b_forward(resnet20):
  variables, x = resnet20
  np.testing.assert_array_equal(variables["params"]["layer1_0"]["bn2"]["scale"], 1.0)
  model = create("resnet20", shortcut="B")
  rng = np.random.default_rng(0)
  fill = lambda path, a: jnp.asarray(  # BN scale/var 1, everything else small and random
      np.ones(a.shape, np.float32) if path[-1].key in ("scale", "var")
      else rng.normal(size=a.shape).astype(np.float32) * 0.1)
  filled = jax.tree_util.tree_map_with_path(fill, _abstract_params(model, x.shape))
  assert "downsample_conv" in filled["params"]["layer2_0"]
  out = jax.jit(model.apply)(filled, x)
  assert out.shape == (8, 10) and bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize("name,kw,field", [
    ("resnet20", dict(depth=21), "depth"), ("resnet20", dict(shortcut="C"), "shortcut"),
    ("resnet20", dict(drop_path_rate=1.0), "drop_path_rate"),
    ("resnet18", dict(dropout_rate=-0.1), "dropout_rate"), ("resnet18", dict(groups=32), "groups"),
    ("wrn28_10", dict(depth=27), "depth"), ("wrn28_10", dict(widen_factor=0), "widen_factor"),
])
def test_bad_options_raise_value_error(name, kw, field):
  with pytest.raises(ValueError, match=field):
    jax.eval_shape(create(name, **kw).init, jax.random.key(0),
                   jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))


def test_registered_names():
  assert set(TORCHVISION_NUM_PARAMS) <= set(list_models("resnet"))
  assert {"resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "wrn28_10"} <= set(
      list_models("resnet_cifar"))
