"""MobileNet v1/v2/v3 against torchvision's documented parameter counts, the v1 paper's counts,
and a plain-torch re-statement of torchvision's v2 / v3 (numerics in eval and train mode).

Variables come from ``jax.eval_shape`` (counts) or from the torch nets (numerics): a real
``init`` compiles for tens of seconds on CPU.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn as tnn

from cnnlab.bench import torch_models
from cnnlab import models
from cnnlab.bench.torch_models import torch_to_flax
from cnnlab.models import blocks

# torchvision's Weights meta "num_params" (torchvision/models/mobilenetv2.py, mobilenetv3.py).
TORCHVISION_NUM_PARAMS = {"mobilenet_v2": 3_504_872, "mobilenet_v3_large": 5_483_032,
                          "mobilenet_v3_small": 2_542_856}


def count(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def shapes(name, shape=(32, 32, 3), batch=2, **kw):
  model = models.create(name, **kw)
  return model, jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((batch,) + shape))


def torch_net(name, seed=0, **kw):
  torch.manual_seed(seed)
  net = (torch_models.MobileNetV2(**kw) if name == "mobilenet_v2" else
         torch_models.MobileNetV3(name[-5:], **kw))
  return torch_models.randomize_bn(net, seed)


# ---- parameter counts ----

@pytest.mark.parametrize("name", sorted(TORCHVISION_NUM_PARAMS))
def test_param_count_equals_torchvision(name):
  _, v = shapes(name)
  ours = count(v["params"])
  restated = sum(p.numel() for p in torch_net(name).parameters())
  assert ours == TORCHVISION_NUM_PARAMS[name] == restated
  assert models.get_spec(name).num_params == TORCHVISION_NUM_PARAMS[name]


@pytest.mark.parametrize("width,paper_millions", [(1.0, 4.2), (0.75, 2.6), (0.5, 1.3),
                                                  (0.25, 0.5)])
def test_mobilenet_v1_param_count_matches_paper(width, paper_millions):
  """Paper Table 6 (width multiplier) counts, rounded to 0.1M; and a closed form of Table 1."""
  _, v = shapes("mobilenet_v1", width_multiplier=width)
  ours = count(v["params"])
  assert abs(ours / 1e6 - paper_millions) < 0.05 + 1e-9
  chans = [int(c * width) for c in (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512,
                                     1024, 1024)]
  closed = 27 * chans[0] + 2 * chans[0]                       # stem conv + BN
  for cin, cout in zip(chans[:-1], chans[1:]):
    closed += 9 * cin + 2 * cin + cin * cout + 2 * cout        # dw + BN + pw + BN
  closed += chans[-1] * 1000 + 1000
  assert ours == closed


# ---- numerics against the torch re-statement ----

@functools.lru_cache(maxsize=None)
def jitted_apply(name, train, **kw):
  model = models.create(name, **dict(kw))
  if train:
    return jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))
  return jax.jit(lambda v, x: model.apply(v, x))


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small"])
def test_eval_logits_match_torch(name):
  """32x32 (even sizes: 'SAME' would pad stride-2 convs (0, 1) instead of torch's (1, 1)); BN
  statistics from a batch (``calibrate_bn``), so the logits depend on the input."""
  gen = torch.Generator().manual_seed(1)
  x, x_stats = torch.randn(2, 3, 32, 32, generator=gen), torch.randn(8, 3, 32, 32, generator=gen)
  torch.manual_seed(0)
  net = torch_models.calibrate_bn(torch_models.MobileNetV2() if name == "mobilenet_v2" else
                                  torch_models.MobileNetV3(name[-5:]), x_stats)
  with torch.no_grad():
    ref = net(x).numpy()
  assert np.abs(ref[0] - ref[1]).max() > 1e-2 * np.abs(ref).max()  # the input reaches them
  variables = torch_to_flax(net)
  _, v = shapes(name)
  assert jax.tree.map(lambda a: a.shape, v) == jax.tree.map(lambda a: a.shape, variables)
  x_nhwc = jnp.asarray(x.permute(0, 2, 3, 1).numpy())
  ours = np.asarray(jitted_apply(name, False)(variables, x_nhwc))
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_train_mode_matches_torch_and_updates_batch_stats():
  """Train mode normalises with batch statistics and moves the running means like torch's
  momentum 0.1 (Flax 0.9); dropout off on both sides."""
  net = torch_net("mobilenet_v2", dropout=0.0).train()
  variables = torch_to_flax(net)
  x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
  with torch.no_grad():
    ref = net(x).numpy()
  logits, new = jitted_apply("mobilenet_v2", True, dropout_rate=0.0)(
      variables, jnp.asarray(x.permute(0, 2, 3, 1).numpy()))
  # Looser than eval: the last blocks see 1x1 maps, so each batch variance is over 4 values.
  np.testing.assert_allclose(np.asarray(logits), ref, rtol=1e-3, atol=2e-3 * np.abs(ref).max())
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new["batch_stats"],
                         variables["batch_stats"])
  assert all(jax.tree.leaves(changed))
  # Running means only: torch stores the unbiased batch variance, Flax the biased one.
  means = lambda t: jax.tree.leaves(jax.tree_util.tree_map_with_path(  # noqa: E731
      lambda p, a: a if p[-1].key == "mean" else None, t))
  for ours, theirs in zip(means(new["batch_stats"]), means(torch_to_flax(net)["batch_stats"]),
                          strict=True):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-4, atol=1e-5)


# ---- every registered MobileNet runs; features; options ----

def numpy_variables(name, shape, seed=0, **kw):
  """Variables with the model's shapes, filled with scaled Gaussians (no compiled init)."""
  _, v = shapes(name, shape=shape, **kw)
  rng = np.random.default_rng(seed)

  def fill(path, a):
    leaf = path[-1].key
    if leaf in ("scale", "var"):
      return jnp.ones(a.shape)
    if leaf in ("bias", "mean"):
      return jnp.zeros(a.shape)
    return jnp.asarray(rng.standard_normal(a.shape) / np.sqrt(np.prod(a.shape[:-1])),
                       jnp.float32)
  return jax.tree_util.tree_map_with_path(fill, v)


@pytest.mark.parametrize("name", models.list_models(family="mobilenet"))
def test_registered_forward_jit(name):
  spec = models.get_spec(name)
  assert spec.input_shape == (224, 224, 3)
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2,) + spec.test_input_shape),
                  jnp.float32)
  logits = jitted_apply(name, False)(numpy_variables(name, spec.test_input_shape), x)
  assert logits.shape == (2, 1000) and bool(jnp.isfinite(logits).all())


@pytest.mark.parametrize("name,n_stages", [("mobilenet_v1", 5), ("mobilenet_v2", 5),
                                           ("mobilenet_v3_small", 4), ("mobilenet_v3_large", 5)])
def test_sown_features_have_expected_strides(name, n_stages):
  model = models.create(name)
  _, state = jax.eval_shape(
      functools.partial(model.apply, mutable=["intermediates"]),
      numpy_variables(name, (64, 64, 3)), jnp.zeros((1, 64, 64, 3)))
  feats = {k: v[-1].shape for k, v in state["intermediates"].items()}
  assert set(feats) == {"stem", "pre_logits"} | {f"stage{i}" for i in range(1, n_stages + 1)}
  assert feats["stem"][1] == 32 and feats[f"stage{n_stages}"][1] == 2
  sizes = [feats[f"stage{i}"][1] for i in range(1, n_stages + 1)]
  assert sizes == sorted(set(sizes), reverse=True)        # one resolution per stage
  assert len(feats["pre_logits"]) == 2


def test_bad_options_raise_value_error():
  x = jnp.zeros((1, 32, 32, 3))
  for name, kw, field in [("mobilenet_v2", {"width_multiplier": 0.0}, "width_multiplier"),
                          ("mobilenet_v1", {"dropout_rate": 1.5}, "dropout_rate"),
                          ("mobilenet_v3_small", {"drop_path_rate": -0.1}, "drop_path_rate"),
                          ("mobilenet_v3_small", {"variant": "tiny"}, "variant")]:
    with pytest.raises(ValueError, match=field):
      jax.eval_shape(models.create(name, **kw).init, jax.random.key(0), x)
  with pytest.raises(ValueError, match="impl"):
    jax.eval_shape(models.create("mobilenet_v2", conv_impl="nope").init, jax.random.key(0), x)
  with pytest.raises(ValueError, match="N, H, W, C"):
    jax.eval_shape(models.create("mobilenet_v2").init, jax.random.key(0), jnp.zeros((32, 32, 3)))


def test_conv_init_matches_torch_kaiming_fan_out():
  """torchvision's conv init: kaiming_normal_(mode='fan_out'); depthwise fan_out = C*k*k."""
  for oihw in [(64, 1, 3, 3), (256, 32, 1, 1)]:
    w = torch.empty(oihw)
    tnn.init.kaiming_normal_(w, mode="fan_out")
    hwio = oihw[2:] + (oihw[1], oihw[0])
    ours = np.asarray(blocks.kaiming_normal_fan_out(jax.random.key(0), hwio))
    assert abs(ours.std() / w.std().item() - 1) < 0.1
    assert abs(ours.mean()) < 0.1 * ours.std()


def test_bfloat16_compute_keeps_float32_params():
  model = models.create("mobilenet_v3_small", dtype=jnp.bfloat16)
  x = jnp.zeros((2, 32, 32, 3))
  out, v = jax.eval_shape(lambda k: (lambda v: (model.apply(v, x), v))(model.init(k, x)),
                          jax.random.key(0))
  assert out.dtype == jnp.bfloat16 and out.shape == (2, 1000)
  assert {a.dtype for a in jax.tree.leaves(v)} == {jnp.dtype(jnp.float32)}
