"""DenseNet against torchvision's documented parameter counts, a closed-form count from the
layer table, the DenseNet-BC-100 paper figure, and a torch.nn re-statement (logits and running
statistics with copied weights)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn as tnn
from torch.nn import functional as F

from cnnlab import models
from cnnlab.models.densenet import DenseNet

# torchvision's weight metadata (``num_params``), https://pytorch.org/vision/stable/models.html
TORCHVISION_NUM_PARAMS = {"densenet121": 7_978_856, "densenet161": 28_681_000,
                          "densenet169": 14_149_480, "densenet201": 20_013_928}
# Huang et al. 2017, Tables 1-2: (growth rate k, initial features, layers per block).
CONFIGS = {"densenet121": (32, 64, (6, 12, 24, 16)), "densenet161": (48, 96, (6, 12, 36, 24)),
           "densenet169": (32, 64, (6, 12, 32, 32)), "densenet201": (32, 64, (6, 12, 48, 32)),
           "densenet_bc_100": (12, 24, (16, 16, 16))}


def key(seed):
  """An RBG key: Flax ``init`` compiles ~3x faster with it than with threefry on CPU."""
  return jax.random.key(seed, impl="rbg")


def closed_form_params(k, init, blocks, bn_size=4, num_classes=1000, stem="imagenet"):
  """Trainable parameters of DenseNet-BC from its layer table (BN: scale + bias per channel)."""
  n = 7 * 7 * 3 * init + 2 * init if stem == "imagenet" else 3 * 3 * 3 * init
  c = init
  for i, layers in enumerate(blocks):
    for _ in range(layers):
      n += 2 * c + c * bn_size * k + 2 * bn_size * k + 9 * bn_size * k * k
      c += k
    if i < len(blocks) - 1:
      n += 2 * c + c * (c // 2)
      c //= 2
  return n + 2 * c + c * num_classes + num_classes


def flax_count(model, hw):
  shapes = jax.eval_shape(model.init, key(0), jnp.zeros((1, hw, hw, 3)))
  return sum(math.prod(x.shape) for x in jax.tree.leaves(shapes["params"]))


@pytest.mark.parametrize("name", sorted(TORCHVISION_NUM_PARAMS))
def test_imagenet_param_counts(name):
  expected = TORCHVISION_NUM_PARAMS[name]
  assert closed_form_params(*CONFIGS[name]) == expected
  assert flax_count(models.create(name), 224) == expected
  assert models.get_spec(name).num_params == expected


def test_densenet_bc_100_param_count():
  expected = closed_form_params(*CONFIGS["densenet_bc_100"], num_classes=10, stem="cifar")
  assert flax_count(models.create("densenet_bc_100"), 32) == expected
  assert models.get_spec("densenet_bc_100").num_params == expected
  assert abs(expected - 0.8e6) / 0.8e6 < 0.05  # paper, Table 2: 0.8M


# ---------------------------------------------------------------- torch re-statement (NCHW)
class TorchDenseLayer(tnn.Module):
  def __init__(self, cin, k, bn_size):
    super().__init__()
    self.norm1 = tnn.BatchNorm2d(cin)
    self.conv1 = tnn.Conv2d(cin, bn_size * k, 1, bias=False)
    self.norm2 = tnn.BatchNorm2d(bn_size * k)
    self.conv2 = tnn.Conv2d(bn_size * k, k, 3, padding=1, bias=False)

  def forward(self, x):
    y = self.conv2(F.relu(self.norm2(self.conv1(F.relu(self.norm1(x))))))
    return torch.cat([x, y], 1)


def torch_densenet(k, init, blocks, bn_size, num_classes, stem):
  if stem == "imagenet":
    layers = [tnn.Conv2d(3, init, 7, 2, 3, bias=False), tnn.BatchNorm2d(init), tnn.ReLU(),
              tnn.MaxPool2d(3, 2, 1)]
  else:
    layers = [tnn.Conv2d(3, init, 3, 1, 1, bias=False)]
  c = init
  for i, n in enumerate(blocks):
    for _ in range(n):
      layers.append(TorchDenseLayer(c, k, bn_size))
      c += k
    if i < len(blocks) - 1:
      layers += [tnn.BatchNorm2d(c), tnn.ReLU(), tnn.Conv2d(c, c // 2, 1, bias=False),
                 tnn.AvgPool2d(2, 2)]
      c //= 2
  return tnn.Sequential(*layers, tnn.BatchNorm2d(c), tnn.ReLU(), tnn.AdaptiveAvgPool2d(1),
                        tnn.Flatten(), tnn.Linear(c, num_classes))


def flax_layer_paths(blocks, stem):
  paths = ["conv0"] + (["norm0"] if stem == "imagenet" else [])
  for i, n in enumerate(blocks, start=1):
    paths += [f"denseblock{i}_layer{j}/{m}" for j in range(1, n + 1)
              for m in ("norm1", "conv1", "norm2", "conv2")]
    paths += [f"transition{i}/norm", f"transition{i}/conv"] if i < len(blocks) else []
  return paths + ["norm5", "classifier"]


def get(tree, path):
  return functools.reduce(lambda d, k: d[k], path.split("/"), tree)


def load_into_torch(tmodel, paths, variables):
  tlayers = [m for m in tmodel.modules()
             if isinstance(m, (tnn.Conv2d, tnn.BatchNorm2d, tnn.Linear))]
  assert len(tlayers) == len(paths)
  t = lambda a: torch.from_numpy(np.array(a, np.float32))
  with torch.no_grad():
    for m, path in zip(tlayers, paths):
      p = get(variables["params"], path)
      if isinstance(m, tnn.BatchNorm2d):
        m.weight.copy_(t(p["scale"]))
        m.running_mean.copy_(t(get(variables["batch_stats"], path)["mean"]))
        m.running_var.copy_(t(get(variables["batch_stats"], path)["var"]))
      elif isinstance(m, tnn.Conv2d):
        m.weight.copy_(t(p["kernel"]).permute(3, 2, 0, 1))  # HWIO -> OIHW
      else:
        m.weight.copy_(t(p["kernel"]).T)
      if m.bias is not None:
        m.bias.copy_(t(p["bias"]))
  return tlayers


def random_variables(model, x, seed=0):
  """Numpy-filled variables: He-scaled kernels, non-zero biases, BN scales and statistics."""
  rng = np.random.default_rng(seed)
  fill = {"kernel": lambda s: rng.standard_normal(s) * np.sqrt(2.0 / math.prod(s[:-1])),
          "bias": lambda s: 0.1 * rng.standard_normal(s),
          "mean": lambda s: 0.1 * rng.standard_normal(s),
          "scale": lambda s: rng.uniform(0.5, 1.5, s), "var": lambda s: rng.uniform(0.5, 1.5, s)}
  shapes = jax.eval_shape(model.init, key(0), x)
  return jax.tree_util.tree_map_with_path(
      lambda path, a: jnp.asarray(fill[path[-1].key](a.shape), jnp.float32), shapes)


@pytest.mark.parametrize("stem, hw", [("imagenet", (37, 35)), ("cifar", (9, 8))])
def test_tiny_densenet_matches_torch(stem, hw):
  # Odd sizes: the padded 3x3/2 max pool and the 2x2 average pools drop a row/column.
  k, init, blocks, bn_size = 4, 8, (2, 3), 2
  model = DenseNet(block_sizes=blocks, growth_rate=k, num_init_features=init, bn_size=bn_size,
                   stem=stem, num_classes=5)
  x = jnp.asarray(np.random.default_rng(1).standard_normal((3, *hw, 3)), jnp.float32)
  variables = random_variables(model, x)
  tmodel = torch_densenet(k, init, blocks, bn_size, 5, stem)
  paths = flax_layer_paths(blocks, stem)
  tlayers = load_into_torch(tmodel, paths, variables)
  x_t = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2)

  tmodel.eval()
  with torch.no_grad():
    expected = tmodel(x_t).numpy()
  np.testing.assert_allclose(jax.jit(model.apply)(variables, x), expected, rtol=2e-4, atol=2e-5)

  # Train mode: batch statistics in the forward, running statistics with torch's momentum 0.1.
  tmodel.train()
  with torch.no_grad():
    expected = tmodel(x_t).numpy()
  logits, state = jax.jit(functools.partial(model.apply, train=True, mutable=["batch_stats"]))(
      variables, x)
  np.testing.assert_allclose(logits, expected, rtol=2e-4, atol=2e-4)
  for m, path in zip(tlayers, paths):
    if isinstance(m, tnn.BatchNorm2d):
      np.testing.assert_allclose(get(state["batch_stats"], path)["mean"], m.running_mean,
                                 rtol=1e-4, atol=1e-5)


def test_running_var_is_biased_unlike_torch():
  # Flax folds the biased batch variance into ``var``; torch folds the unbiased one (n / (n-1)).
  model = DenseNet(block_sizes=(1,), growth_rate=2, num_init_features=4, bn_size=1, stem="cifar",
                   num_classes=2)
  x = jnp.asarray(np.random.default_rng(2).standard_normal((2, 4, 4, 3)), jnp.float32)
  variables = random_variables(model, x)
  tmodel = torch_densenet(2, 4, (1,), 1, 2, "cifar")
  paths = flax_layer_paths((1,), "cifar")
  tlayers = load_into_torch(tmodel, paths, variables)
  tmodel.train()
  with torch.no_grad():
    tmodel(torch.from_numpy(np.array(x)).permute(0, 3, 1, 2))
  _, state = model.apply(variables, x, train=True, mutable=["batch_stats"])
  n = 2 * 4 * 4
  old = variables["batch_stats"]["denseblock1_layer1"]["norm1"]["var"]
  torch_batch_var = (tlayers[1].running_var.numpy() - 0.9 * np.asarray(old)) / 0.1
  np.testing.assert_allclose(state["batch_stats"]["denseblock1_layer1"]["norm1"]["var"],
                             0.9 * old + 0.1 * torch_batch_var * (n - 1) / n, rtol=1e-4)


# ---------------------------------------------------------------- shapes, training, features
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_output_shape_and_features(name):
  spec = models.get_spec(name)
  model = models.create(name, num_classes=7)
  x = jax.ShapeDtypeStruct((2, *spec.test_input_shape), jnp.float32)
  variables = jax.eval_shape(model.init, key(0), x)
  logits, feats = jax.eval_shape(functools.partial(models.extract_features, model), variables, x)
  assert logits.shape == (2, 7)
  stages = len(CONFIGS[name][2])
  assert set(feats) == {"stem", "pre_logits"} | {f"stage{i + 1}" for i in range(stages)}
  k, c, blocks = CONFIGS[name]
  for i, n in enumerate(blocks):
    c = (c + n * k) // (2 if i < len(blocks) - 1 else 1)
  assert feats["pre_logits"].shape == (2, c)  # 1024 / 2208 / 1664 / 1920 / 342 (paper)


@pytest.mark.slow  # the default suite compiles this train forward in test_registry
def test_densenet_bc_100_jitted_train_forward():
  # One compile (train mode; eval mode is compared with torch above): finite logits of the right
  # shape and every running statistic updated.
  model = models.create("densenet_bc_100")
  x = jax.random.normal(key(1), (2, 8, 8, 3))
  variables = random_variables(model, x)
  logits, state = jax.jit(functools.partial(model.apply, train=True, mutable=["batch_stats"]))(
      variables, x)
  assert logits.shape == (2, 10) and bool(jnp.all(jnp.isfinite(logits)))
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"],
                         state["batch_stats"])
  assert all(jax.tree.leaves(changed))


@pytest.mark.parametrize("kw, match", [({"stem": "resnet"}, "stem"),
                                       ({"compression": 0.0}, "compression")])
def test_bad_config_raises_value_error(kw, match):
  with pytest.raises(ValueError, match=match):
    jax.eval_shape(DenseNet(**kw).init, key(0), jnp.zeros((1, 32, 32, 3)))


def test_too_small_input_raises_value_error():
  with pytest.raises(ValueError, match="29"):
    jax.eval_shape(models.create("densenet121").init, key(0), jnp.zeros((1, 28, 40, 3)))
