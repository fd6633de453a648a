"""AlexNet, VGG, SqueezeNet and All-CNN-C against torchvision's documented parameter counts, a
plain torch.nn re-statement of each architecture (counts on the meta device; logits with copied
weights) and the All-CNN-C paper's layer table."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from torch import nn as tnn

from cnnlab import models
from cnnlab.bench.torch_models import TorchFire

# torchvision's weight metadata (``num_params``), https://pytorch.org/vision/stable/models.html
TORCHVISION_NUM_PARAMS = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336, "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848, "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240, "vgg19_bn": 143_678_248,
    "squeezenet1_0": 1_248_424, "squeezenet1_1": 1_235_496,
}
VGG_CFGS = {  # Simonyan & Zisserman, Table 1, configs A, B, D, E ("M" = 2x2 max pool)
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
SQUEEZE_FIRES = {  # torchvision: (in, squeeze, expand) per Fire, "M" = MaxPool 3/2 ceil_mode
    "squeezenet1_0": (96, 7, [(96, 16, 64), (128, 16, 64), (128, 32, 128), "M", (256, 32, 128),
                              (256, 48, 192), (384, 48, 192), (384, 64, 256), "M",
                              (512, 64, 256)]),
    "squeezenet1_1": (64, 3, [(64, 16, 64), (128, 16, 64), "M", (128, 32, 128), (256, 32, 128),
                              "M", (256, 48, 192), (384, 48, 192), (384, 64, 256),
                              (512, 64, 256)]),
}


# ---------------------------------------------------------------- torch re-statements (NCHW)
def torch_squeezenet(name, num_classes=1000):
  stem, k, fires = SQUEEZE_FIRES[name]
  layers = [tnn.Conv2d(3, stem, k, stride=2), tnn.ReLU(), tnn.MaxPool2d(3, 2, ceil_mode=True)]
  layers += [tnn.MaxPool2d(3, 2, ceil_mode=True) if f == "M" else TorchFire(*f) for f in fires]
  return tnn.Sequential(*layers, tnn.Dropout(0.5), tnn.Conv2d(512, num_classes, 1), tnn.ReLU(),
                        tnn.AdaptiveAvgPool2d(1), tnn.Flatten())


def torch_vgg(name, batch_norm=False, num_classes=1000, hidden=4096):
  layers, cin = [], 3
  for v in VGG_CFGS[name]:
    if v == "M":
      layers.append(tnn.MaxPool2d(2, 2))
      continue
    layers.append(tnn.Conv2d(cin, v, 3, padding=1))
    layers += [tnn.BatchNorm2d(v)] if batch_norm else []
    layers.append(tnn.ReLU())
    cin = v
  return tnn.Sequential(*layers, tnn.AdaptiveAvgPool2d(7), tnn.Flatten(),
                        tnn.Linear(512 * 49, hidden), tnn.ReLU(), tnn.Dropout(),
                        tnn.Linear(hidden, hidden), tnn.ReLU(), tnn.Dropout(),
                        tnn.Linear(hidden, num_classes))


def torch_alexnet(num_classes=1000, hidden=4096):
  return tnn.Sequential(
      tnn.Conv2d(3, 64, 11, 4, 2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
      tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
      tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(), tnn.Conv2d(384, 256, 3, padding=1),
      tnn.ReLU(), tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2),
      tnn.AdaptiveAvgPool2d(6), tnn.Flatten(), tnn.Dropout(), tnn.Linear(256 * 36, hidden),
      tnn.ReLU(), tnn.Dropout(), tnn.Linear(hidden, hidden), tnn.ReLU(),
      tnn.Linear(hidden, num_classes))


TORCH_BUILDERS = {
    "alexnet": torch_alexnet,
    **{n: functools.partial(torch_vgg, n) for n in VGG_CFGS},
    **{f"{n}_bn": functools.partial(torch_vgg, n, batch_norm=True) for n in VGG_CFGS},
    **{n: functools.partial(torch_squeezenet, n) for n in SQUEEZE_FIRES},
}


def load_into_torch(tmodel, layers, variables, flatten_hwc=None):
  """Copies Flax ``layers`` (param paths, in the torch module order) into ``tmodel``'s
  Conv2d / BatchNorm2d / Linear modules. ``flatten_hwc=(h, w, c)``: the first Linear's rows
  come from an NHWC flatten and are permuted to torch's (C, H, W) order."""
  tlayers = [m for m in tmodel.modules() if isinstance(m, (tnn.Conv2d, tnn.BatchNorm2d,
                                                           tnn.Linear))]
  assert len(tlayers) == len(layers)
  t = lambda a: torch.from_numpy(np.array(a, np.float32))
  first_linear = True
  with torch.no_grad():
    for m, path in zip(tlayers, layers):
      p = functools.reduce(lambda d, k: d[k], path.split("/"), variables["params"])
      if isinstance(m, tnn.BatchNorm2d):
        s = functools.reduce(lambda d, k: d[k], path.split("/"), variables["batch_stats"])
        m.weight.copy_(t(p["scale"]))
        m.running_mean.copy_(t(s["mean"]))
        m.running_var.copy_(t(s["var"]))
      elif isinstance(m, tnn.Conv2d):
        m.weight.copy_(t(p["kernel"]).permute(3, 2, 0, 1))  # HWIO -> OIHW
      else:
        k = t(p["kernel"])  # (in, out)
        if first_linear and flatten_hwc:
          k = k.reshape(*flatten_hwc, -1).permute(2, 0, 1, 3).reshape(k.shape)
        first_linear = False
        m.weight.copy_(k.T)
      m.bias.copy_(t(p["bias"]))


def key(seed):
  """An RBG key: Flax ``init`` compiles ~3x faster with it than with threefry on CPU."""
  return jax.random.key(seed, impl="rbg")


def random_variables(model, x, seed=0):
  """Variables of ``model`` filled from numpy: He-scaled kernels and non-zero biases, BN
  scales and running statistics, so that every parameter's mapping to torch is exercised."""
  rng = np.random.default_rng(seed)
  fill = {"kernel": lambda s: rng.standard_normal(s) * np.sqrt(2.0 / math.prod(s[:-1])),
          "bias": lambda s: 0.1 * rng.standard_normal(s),
          "mean": lambda s: 0.1 * rng.standard_normal(s),
          "scale": lambda s: rng.uniform(0.5, 1.5, s), "var": lambda s: rng.uniform(0.5, 1.5, s)}
  shapes = jax.eval_shape(model.init, key(0), x)
  return jax.tree_util.tree_map_with_path(
      lambda path, a: jnp.asarray(fill[path[-1].key](a.shape), jnp.float32), shapes)


def num_params(tree):
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def flax_counts(name):
  spec = models.get_spec(name)
  model = models.create(name)
  shapes = jax.eval_shape(model.init, key(0), jnp.zeros((1, *spec.input_shape)))
  return num_params(shapes["params"])


# ---------------------------------------------------------------- parameter counts
@pytest.mark.parametrize("name", sorted(TORCHVISION_NUM_PARAMS))
def test_param_count_matches_torchvision_and_torch_restatement(name):
  with torch.device("meta"):
    torch_count = sum(p.numel() for p in TORCH_BUILDERS[name]().parameters())
  assert torch_count == TORCHVISION_NUM_PARAMS[name]
  assert flax_counts(name) == TORCHVISION_NUM_PARAMS[name]
  assert models.get_spec(name).num_params == TORCHVISION_NUM_PARAMS[name]


def test_allcnn_c_param_count_from_paper_table():
  # Springenberg et al. Table 2 (C): 3x3 convs 3->96, 96->96, 96->96/2, 96->192, 192->192,
  # 192->192/2, 192->192 (valid), 1x1 192->192, 1x1 192->10; all with biases.
  convs = [(3, 3, 96), (3, 96, 96), (3, 96, 96), (3, 96, 192), (3, 192, 192), (3, 192, 192),
           (3, 192, 192), (1, 192, 192), (1, 192, 10)]
  expected = sum(k * k * cin * cout + cout for k, cin, cout in convs)
  assert flax_counts("allcnn_c") == expected == models.get_spec("allcnn_c").num_params
  assert abs(expected - 1.3e6) / 1.3e6 < 0.06  # the paper reports "1.3M"


# ---------------------------------------------------------------- numerics against torch
def _assert_matches_torch(name, tmodel, layers, shape_hw, flatten_hwc=None, **kw):
  model = models.create(name, **kw)
  x = jnp.asarray(np.random.default_rng(1).standard_normal((2, *shape_hw, 3)), jnp.float32)
  variables = random_variables(model, x)
  load_into_torch(tmodel, layers, variables, flatten_hwc)
  tmodel.eval()
  with torch.no_grad():
    expected = tmodel(torch.from_numpy(np.array(x)).permute(0, 3, 1, 2)).numpy()
  got = jax.jit(model.apply)(variables, x)
  np.testing.assert_allclose(np.asarray(got), expected, rtol=2e-4, atol=2e-5)


def test_squeezenet1_1_matches_torch():
  # 41x38: the ceil-mode pools keep a partial last window (floor mode would give 9x8, 4x3, 1x1).
  layers = ["conv1"] + [f"stage{i}_fire{j}/{c}" for i, n in ((1, 2), (2, 2), (3, 4))
                       for j in range(1, n + 1) for c in ("squeeze", "expand1x1", "expand3x3")]
  _assert_matches_torch("squeezenet1_1", torch_squeezenet("squeezenet1_1", 10),
                        layers + ["head"], (41, 38), num_classes=10)


def test_vgg11_bn_matches_torch():
  # 64x64 -> 2x2 features; adaptive pooling to 7x7 uses overlapping bins. Small classifier.
  layers = [f"block{s}/{kind}{i}" for s, n in enumerate((1, 1, 2, 2, 2), start=1)
            for i in range(n) for kind in ("conv", "norm")]
  _assert_matches_torch("vgg11_bn", torch_vgg("vgg11", True, num_classes=5, hidden=16),
                        layers + ["fc1", "fc2", "head"], (64, 64), flatten_hwc=(7, 7, 512),
                        num_classes=5, hidden_features=16)


def test_alexnet_matches_torch():
  # 99x99 -> 2x2 features before adaptive pooling to 6x6.
  layers = [f"conv{i}" for i in range(1, 6)] + ["fc1", "fc2", "head"]
  _assert_matches_torch("alexnet", torch_alexnet(num_classes=5, hidden=16), layers, (99, 99),
                        flatten_hwc=(6, 6, 256), num_classes=5, hidden_features=16)


def test_allcnn_c_matches_torch():
  convs = [(3, 96, 3, 1, 1), (96, 96, 3, 1, 1), (96, 96, 3, 2, 1), (96, 192, 3, 1, 1),
           (192, 192, 3, 1, 1), (192, 192, 3, 2, 1), (192, 192, 3, 1, 0), (192, 192, 1, 1, 0),
           (192, 10, 1, 1, 0)]
  layers = []
  for cin, cout, k, s, p in convs:
    layers += [tnn.Conv2d(cin, cout, k, s, p), tnn.ReLU()]
  tmodel = tnn.Sequential(*layers, tnn.AdaptiveAvgPool2d(1), tnn.Flatten())
  _assert_matches_torch("allcnn_c", tmodel, [f"conv{i}" for i in range(1, 9)] + ["head"],
                        (32, 32))


# ---------------------------------------------------------------- shapes, training, features
FAMILIES = ("alexnet", "vgg", "squeezenet", "allcnn")
ALL = [n for f in FAMILIES for n in models.list_models(f)]
CHEAP = ["squeezenet1_0", "squeezenet1_1", "allcnn_c"]


@pytest.mark.parametrize("name", ALL)
def test_output_shape_at_small_input(name):
  spec = models.get_spec(name)
  model = models.create(name, num_classes=7)
  x = jax.ShapeDtypeStruct((2, *spec.test_input_shape), jnp.float32)
  variables = jax.eval_shape(model.init, key(0), x)
  assert jax.eval_shape(model.apply, variables, x).shape == (2, 7)


@pytest.mark.parametrize("name", CHEAP)
def test_jitted_forward_is_finite(name):
  spec = models.get_spec(name)
  model = models.create(name)
  x = jax.random.normal(key(1), (2, *spec.test_input_shape))
  logits = jax.jit(model.apply)(random_variables(model, x), x)
  assert logits.shape == (2, 1000 if name.startswith("squeeze") else 10)
  assert bool(jnp.all(jnp.isfinite(logits)))


def test_vgg_bn_train_mode_updates_batch_stats():
  model = models.create("vgg11_bn", num_classes=3, hidden_features=8)
  x = jax.random.normal(key(1), (2, 32, 32, 3)) + 2.0
  variables = random_variables(model, x)
  _, state = jax.jit(functools.partial(model.apply, train=True, mutable=["batch_stats"]))(
      variables, x, rngs={"dropout": key(2)})
  conv = variables["params"]["block1"]["conv0"]
  y = jax.lax.conv_general_dilated(x, conv["kernel"], (1, 1), ((1, 1), (1, 1)),
                                   dimension_numbers=("NHWC", "HWIO", "NHWC")) + conv["bias"]
  # Flax momentum 0.9 (= torch's 0.1): new = 0.9 * old + 0.1 * batch mean.
  old = variables["batch_stats"]["block1"]["norm0"]["mean"]
  np.testing.assert_allclose(state["batch_stats"]["block1"]["norm0"]["mean"],
                             0.9 * old + 0.1 * y.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_feature_names(name):
  spec = models.get_spec(name)
  model = models.create(name)
  x = jax.ShapeDtypeStruct((1, *spec.test_input_shape), jnp.float32)
  variables = jax.eval_shape(model.init, key(0), x)
  _, feats = jax.eval_shape(functools.partial(models.extract_features, model), variables, x)
  stages = {"alexnet": 2, "vgg": 5, "squeezenet": 3, "allcnn": 2}[spec.family]
  expected = {f"stage{i}" for i in range(1, stages + 1)} | {"pre_logits"}
  assert set(feats) == expected | ({"stem"} if spec.family != "vgg" else set())


def test_feature_shapes_squeezenet():
  model = models.create("squeezenet1_1", num_classes=4)
  x = jax.ShapeDtypeStruct((2, 41, 38, 3), jnp.float32)
  variables = jax.eval_shape(model.init, key(0), x)
  _, feats = jax.eval_shape(functools.partial(models.extract_features, model), variables, x)
  shapes = {k: v.shape for k, v in feats.items()}
  # Ceil-mode pools: 41x38 -conv 3x3/2-> 20x18 -pool-> 10x9 -pool-> 5x4 -pool-> 2x2.
  assert shapes == {"stem": (2, 10, 9, 64), "stage1": (2, 5, 4, 128), "stage2": (2, 2, 2, 256),
                    "stage3": (2, 2, 2, 512), "pre_logits": (2, 512)}


def test_allcnn_overfits_one_batch():
  model = models.create("allcnn_c", width=16, input_dropout_rate=0.0, dropout_rate=0.0)
  x = jax.random.normal(key(1), (8, 16, 16, 3))
  y = jnp.arange(8) % 10
  params = jax.jit(model.init)(key(0), x)["params"]
  tx = optax.adam(3e-3)
  opt_state = tx.init(params)

  def loss_fn(p):
    logits = model.apply({"params": p}, x, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def step(p, s):
    loss, g = jax.value_and_grad(loss_fn)(p)
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s, loss

  losses = []
  for _ in range(40):
    params, opt_state, loss = step(params, opt_state)
    losses.append(float(loss))
  assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name, shape, match", [
    ("alexnet", (1, 62, 62, 3), "63"),
    ("vgg11", (1, 31, 40, 3), "32"),
    ("squeezenet1_1", (1, 16, 16, 3), "17"),
    ("allcnn_c", (32, 32, 3), "N, H, W, C"),
])
def test_bad_input_raises_value_error(name, shape, match):
  model = models.create(name)
  with pytest.raises(ValueError, match=match):
    jax.eval_shape(model.init, key(0), jnp.zeros(shape))


@pytest.mark.parametrize("name", ["alexnet", "vgg11_bn", "squeezenet1_0", "allcnn_c"])
def test_conv_impl_is_forwarded(name):
  with pytest.raises(ValueError, match="impl='bogus'"):
    jax.eval_shape(models.create(name, conv_impl="bogus").init, key(0),
                   jnp.zeros((1, 64, 64, 3)))


def test_bad_vgg_config_raises_value_error():
  with pytest.raises(ValueError, match="stage_sizes"):
    jax.eval_shape(models.vgg.VGG(stage_sizes=(1, 1, 2)).init, key(0),
                   jnp.zeros((1, 32, 32, 3)))
