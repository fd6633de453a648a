"""EfficientNet B0-B7 against torchvision's documented parameter counts and input sizes, a
plain-torch re-statement of torchvision's EfficientNet (counts, block table, stochastic-depth
rates, eval and train numerics), and DropPath's distribution.

Variables come from ``jax.eval_shape`` or from the torch nets: a real ``init`` compiles for
tens of seconds on CPU.
"""

import functools
import math

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn as tnn

from cnnlab.bench import torch_models
from cnnlab import models
from cnnlab.bench.torch_models import torch_to_flax
from cnnlab.models import blocks, efficientnet

# torchvision/models/efficientnet.py: Weights meta "num_params" and eval crop sizes.
TORCHVISION = {"b0": (5_288_548, 224), "b1": (7_794_184, 240), "b2": (9_109_994, 288),
               "b3": (12_233_232, 300), "b4": (19_341_616, 380), "b5": (30_389_784, 456),
               "b6": (43_040_704, 528), "b7": (66_347_960, 600)}
# torchvision's efficientnet_bX(): (width_mult, depth_mult); B5-B7 use BN(eps=1e-3, momentum=0.01).
TV_SCALING = {"b0": (1.0, 1.0), "b1": (1.0, 1.1), "b2": (1.1, 1.2), "b3": (1.2, 1.4),
              "b4": (1.4, 1.8), "b5": (1.6, 2.2), "b6": (1.8, 2.6), "b7": (2.0, 3.1)}
TV_BN = {v: ((0.01, 1e-3) if v in ("b5", "b6", "b7") else (0.1, 1e-5)) for v in TV_SCALING}


# ---- plain torch re-statement of torchvision's EfficientNet (module names = ours) ----

def tv_make_divisible(v, divisor=8):
  new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
  return new_v + divisor if new_v < 0.9 * v else new_v


class TConvBNAct(tnn.Sequential):
  def __init__(self, cin, cout, k, stride=1, groups=1, act=True, bn=(0.1, 1e-5)):
    super().__init__()
    self.conv = tnn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False)
    self.bn = tnn.BatchNorm2d(cout, eps=bn[1], momentum=bn[0])
    self.act = tnn.SiLU() if act else tnn.Identity()


class TSE(tnn.Module):
  def __init__(self, c, squeeze):
    super().__init__()
    self.fc1, self.fc2 = tnn.Conv2d(c, squeeze, 1), tnn.Conv2d(squeeze, c, 1)

  def forward(self, x):
    return x * torch.sigmoid(self.fc2(tnn.functional.silu(self.fc1(x.mean((2, 3), True)))))


class TMBConv(tnn.Module):
  def __init__(self, cin, cout, expand, k, stride, p, bn):
    super().__init__()
    exp = tv_make_divisible(cin * expand)
    layers = [("expand", TConvBNAct(cin, exp, 1, bn=bn))] if exp != cin else []
    layers += [("depthwise", TConvBNAct(exp, exp, k, stride, groups=exp, bn=bn)),
               ("se", TSE(exp, max(1, cin // 4))), ("project", TConvBNAct(exp, cout, 1,
                                                                          act=False, bn=bn))]
    for name, m in layers:
      self.add_module(name, m)
    self.names = [n for n, _ in layers]
    self.res, self.p = stride == 1 and cin == cout, p
    self.spec = (expand, k, stride, cin, cout, p)

  def forward(self, x):
    y = x
    for n in self.names:
      y = getattr(self, n)(y)
    if not self.res:
      return y
    if self.training and self.p > 0:   # torchvision.ops.stochastic_depth(mode='row')
      keep = 1.0 - self.p
      y = y * torch.empty(y.shape[0], 1, 1, 1).bernoulli_(keep).div_(keep)
    return y + x


class TEfficientNet(tnn.Module):
  def __init__(self, width, depth, dropout=0.2, sd_prob=0.2, bn=(0.1, 1e-5), num_classes=1000):
    super().__init__()
    rows = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
            (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
            (6, 3, 1, 192, 320, 1)]
    rows = [(e, k, s, tv_make_divisible(ci * width), tv_make_divisible(co * width),
             int(math.ceil(n * depth))) for e, k, s, ci, co, n in rows]
    total = sum(r[-1] for r in rows)
    self.stem_conv = TConvBNAct(3, rows[0][3], 3, 2, bn=bn)
    i = 0
    for e, k, s, ci, co, n in rows:
      for j in range(n):
        self.add_module(f"block{i}", TMBConv(co if j else ci, co, e, k, 1 if j else s,
                                             sd_prob * float(i) / total, bn))
        i += 1
    self.nblocks = i
    self.head_conv = TConvBNAct(rows[-1][4], 4 * rows[-1][4], 1, bn=bn)
    self.drop = tnn.Dropout(dropout)
    self.classifier = tnn.Linear(4 * rows[-1][4], num_classes)

  def blocks(self):
    return [getattr(self, f"block{i}") for i in range(self.nblocks)]

  def forward(self, x):
    x = self.stem_conv(x)
    for b in self.blocks():
      x = b(x)
    return self.classifier(self.drop(self.head_conv(x).mean((2, 3))))


def torch_net(seed=0, **kw):
  torch.manual_seed(seed)
  return torch_models.randomize_bn(TEfficientNet(**kw), seed)


def nhwc(x):
  return jnp.asarray(x.permute(0, 2, 3, 1).numpy())


# ---- counts, sizes, block table ----

@pytest.mark.parametrize("variant", sorted(TORCHVISION))
def test_param_count_and_input_size_equal_torchvision(variant):
  name = f"efficientnet_{variant}"
  model, spec = models.create(name), models.get_spec(name)
  v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  ours = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(v["params"]))
  with torch.device("meta"):
    restated = sum(p.numel() for p in TEfficientNet(*TV_SCALING[variant]).parameters())
  assert ours == TORCHVISION[variant][0] == restated == spec.num_params
  assert spec.input_shape == (TORCHVISION[variant][1],) * 2 + (3,)


@pytest.mark.parametrize("variant", sorted(TORCHVISION))
def test_block_table_and_drop_path_rates_equal_torchvision(variant):
  with torch.device("meta"):
    ref = [b.spec for b in TEfficientNet(*TV_SCALING[variant], sd_prob=0.2).blocks()]
  ours = [tuple(s) for s in efficientnet.mbconv_specs(*TV_SCALING[variant], 0.2)]
  assert [o[:5] for o in ours] == [r[:5] for r in ref]
  np.testing.assert_allclose([o[5] for o in ours], [r[5] for r in ref], rtol=1e-12)


@pytest.mark.parametrize("variant", ["b1", "b4", "b7"])
def test_big_variants_eval_shape_at_native_size(variant):
  name = f"efficientnet_{variant}"
  model, spec = models.create(name), models.get_spec(name)
  out = jax.eval_shape(lambda k, x: model.apply(model.init(k, x), x), jax.random.key(0),
                       jnp.zeros((2,) + spec.input_shape))
  assert out.shape == (2, 1000)


# ---- numerics against the torch re-statement ----

def test_b0_eval_logits_match_torch_and_are_finite():
  gen = torch.Generator().manual_seed(1)
  x, x_stats = torch.randn(2, 3, 32, 32, generator=gen), torch.randn(8, 3, 32, 32, generator=gen)
  torch.manual_seed(0)
  net = torch_models.calibrate_bn(TEfficientNet(width=1.0, depth=1.0), x_stats)
  with torch.no_grad():
    ref = net(x).numpy()
  assert np.abs(ref[0] - ref[1]).max() > 1e-2 * np.abs(ref).max()  # the input reaches them
  variables = torch_to_flax(net)
  model = models.create("efficientnet_b0")
  v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((2, 32, 32, 3)))
  assert jax.tree.map(lambda a: a.shape, v) == jax.tree.map(lambda a: a.shape, variables)
  ours = np.asarray(jax.jit(model.apply)(variables, nhwc(x)))
  assert ours.shape == (2, 1000) and np.isfinite(ours).all()
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


TINY = dict(width_multiplier=0.25, depth_multiplier=0.5)   # 10 blocks, 3 residual


def test_b5_bn_train_mode_matches_torch_momentum_and_eps():
  """B5's BatchNorm (torch eps 1e-3, momentum 0.01): train-mode logits and running means."""
  net = torch_net(width=0.25, depth=0.5, dropout=0.0, sd_prob=0.0, bn=TV_BN["b5"]).train()
  variables = torch_to_flax(net)
  x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
  with torch.no_grad():
    ref = net(x).numpy()
  model = models.create("efficientnet_b5", dropout_rate=0.0, drop_path_rate=0.0, **TINY)
  logits, new = jax.jit(functools.partial(model.apply, train=True, mutable=["batch_stats"]))(
      variables, nhwc(x))
  # The last blocks see 1x1 maps: each batch variance is over 4 values, so float32 rounding
  # is amplified more than in eval mode.
  np.testing.assert_allclose(np.asarray(logits), ref, rtol=1e-3, atol=2e-3 * np.abs(ref).max())
  ours_f = flax.traverse_util.flatten_dict(new["batch_stats"])
  theirs_f = flax.traverse_util.flatten_dict(torch_to_flax(net)["batch_stats"])
  assert ours_f.keys() == theirs_f.keys()
  for k in ours_f:
    if k[-1] == "mean":   # torch's running_var is unbiased, Flax's biased: compare means.
      np.testing.assert_allclose(np.asarray(ours_f[k]), np.asarray(theirs_f[k]), atol=1e-5,
                                 rtol=1e-4)


def test_train_mode_drop_path_is_stochastic_and_eval_is_not():
  model = models.create("efficientnet_b0", dropout_rate=0.0, drop_path_rate=0.5, **TINY)
  net = torch_net(width=0.25, depth=0.5)
  variables = torch_to_flax(net)
  x = nhwc(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)))
  train = jax.jit(lambda v, x, k: model.apply(v, x, train=True, mutable=["batch_stats"],
                                              rngs={"dropout": k}))
  outs = [np.asarray(train(variables, x, jax.random.key(s))[0]) for s in range(4)]
  assert any(not np.allclose(outs[0], o) for o in outs[1:])
  ev = [np.asarray(jax.jit(model.apply)(variables, x, rngs={"dropout": jax.random.key(s)}))
        for s in range(2)]
  np.testing.assert_array_equal(ev[0], ev[1])


# ---- DropPath (eager and jitted) ----

@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
def test_drop_path_distribution(rate, use_jit):
  """Whole examples dropped w.p. ``rate``, survivors scaled by 1/(1-rate) (torchvision
  StochasticDepth 'row'), so E[out] = x; identity in eval."""
  n = 20_000
  x = jnp.ones((n, 2, 2, 3))
  f = lambda x, k: blocks.DropPath(rate).apply({}, x, deterministic=False,  # noqa: E731
                                               rngs={"dropout": k})
  f = jax.jit(f) if use_jit else f
  y = np.asarray(f(x, jax.random.key(0)))
  per_example = y.reshape(n, -1)
  assert (per_example == per_example[:, :1]).all()           # one decision per example
  dropped = (per_example[:, 0] == 0).mean()
  assert abs(dropped - rate) < 5 * math.sqrt(rate * (1 - rate) / n) + 1e-12
  if rate < 1:
    np.testing.assert_allclose(per_example[per_example[:, 0] != 0], 1 / (1 - rate), rtol=1e-6)
    assert abs(y.mean() - 1) < 5 * math.sqrt(rate / (1 - rate) / n) + 1e-12
  assert blocks.DropPath(rate).apply({}, x, deterministic=True) is x


def test_drop_path_needs_rng_and_valid_rate():
  x = jnp.ones((2, 4, 4, 3))
  with pytest.raises(flax.errors.InvalidRngError):
    blocks.DropPath(0.5).apply({}, x, deterministic=False)
  with pytest.raises(ValueError, match="rate"):
    blocks.DropPath(1.5).apply({}, x, deterministic=True)


def test_bad_options_raise_value_error():
  x = jnp.zeros((1, 32, 32, 3))
  for kw, field in [({"depth_multiplier": 0.0}, "depth_multiplier"),
                    ({"drop_path_rate": 1.0}, "drop_path_rate"),
                    ({"dropout_rate": -0.5}, "dropout_rate")]:
    with pytest.raises(ValueError, match=field):
      jax.eval_shape(models.create("efficientnet_b0", **kw).init, jax.random.key(0), x)


def test_sown_features_one_stage_per_output_stride():
  model = models.create("efficientnet_b0")
  x = jnp.zeros((1, 64, 64, 3))
  _, state = jax.eval_shape(
      lambda k: model.apply(model.init(k, x), x, mutable=["intermediates"]), jax.random.key(0))
  feats = {k: v[-1].shape for k, v in state["intermediates"].items()}
  assert feats == {"stem": (1, 32, 32, 32), "stage1": (1, 32, 32, 16), "stage2": (1, 16, 16, 24),
                   "stage3": (1, 8, 8, 40), "stage4": (1, 4, 4, 112), "stage5": (1, 2, 2, 320),
                   "pre_logits": (1, 1280)}
