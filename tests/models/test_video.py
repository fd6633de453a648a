"""Video classifiers on tiny clips: shapes eager and jitted and a finite train step; which frames
each model sees (the support of d logits / d clip); R(2+1)D's parameter budget from Tran et al.
2018's formula; c3d / r2plus1d logits against a torch re-statement with copied weights; MACs
against a hand count. (A single 3D conv against ``F.conv3d``: tests/ops/test_conv_torch.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from torch import nn as tnn

from cnnlab import models
from cnnlab.models.summary import summarize
from models.causal import positive_variables

T = 8
CLIP = (2, T, 32, 32, 1)
# Small variants of each registered model for the (2, 8, 32, 32, 1) clip.
TINY = {
    "c3d": dict(widths=(4, 8, 8), depths=(1, 2, 1)),
    "r2plus1d": dict(widths=(4, 8, 8), depths=(1, 2, 1)),
    "single_frame": dict(widths=(4, 8)),
    "early_fusion": dict(widths=(4, 8)),
    "late_fusion": dict(widths=(4, 8)),
    "slow_fusion": dict(widths=(4, 8, 8), temporal_kernels=(4, 2, 2), temporal_strides=(2, 2, 2)),
}
# Frames the logits depend on.
SEES = {"single_frame": {T // 2}, "late_fusion": {0, T - 1}}


def _clip(seed=0, shape=CLIP):
  return jnp.asarray(np.random.default_rng(seed).uniform(0.0, 1.0, shape), jnp.float32)


def test_every_video_model_is_covered():
  assert set(models.list_models("video")) == set(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_shapes_eager_jit_and_train_step(name):
  model = models.create(name, num_classes=5, **TINY[name])
  x = _clip()
  v = positive_variables(model, x)  # numpy-made: no init to compile
  eager = model.apply(v, x)
  jitted = jax.jit(model.apply)(v, x)
  assert eager.shape == jitted.shape == (2, 5)
  np.testing.assert_allclose(eager, jitted, rtol=1e-5, atol=1e-5)

  def loss(params):
    logits, upd = model.apply({**v, "params": params}, x, train=True, mutable=["batch_stats"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.array([1, 3])).mean(), upd

  (value, upd), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(v["params"])
  leaves = jax.tree.leaves(grads)
  assert np.isfinite(value) and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
  assert all(float(jnp.abs(g).max()) > 0 for g in leaves)
  assert jax.tree.structure(upd["batch_stats"]) == jax.tree.structure(v["batch_stats"])


@pytest.mark.parametrize("name", sorted(TINY))
def test_frames_seen_by_the_logits(name):
  """Positive weights and inputs keep every ReLU open: frame ``t`` is seen iff the gradient of
  the logits w.r.t. it is non-zero somewhere."""
  model = models.create(name, num_classes=3, **TINY[name])
  x = _clip(1)
  v = positive_variables(model, x)
  g = jax.jit(jax.grad(lambda x: model.apply(v, x)[0].sum()))(x)
  per_frame = np.abs(np.asarray(g[0])).sum(axis=(1, 2, 3))
  assert set(np.flatnonzero(per_frame)) == SEES.get(name, set(range(T)))
  assert not np.any(np.asarray(g[1]))  # eval mode: examples independent


def test_r2plus1d_units_have_the_parameters_of_3x3x3_convs():
  """Tran et al. 2018, Sec. 3.5: M = floor(27 N_in N_out / (9 N_in + 3 N_out)), so the
  1x3x3 + 3x1x1 pair has 27 N_in N_out parameters less under one M step (9 N_in + 3 N_out)."""
  x = jax.ShapeDtypeStruct((1, 16, 64, 64, 1), jnp.float32)
  p3d, p21 = (jax.eval_shape(models.create(n).init, jax.random.key(0), x)["params"]
              for n in ("c3d", "r2plus1d"))
  units = [k for k in p3d if k.startswith("conv")]
  assert units == [k for k in p21 if k.startswith("conv")] and len(units) == 8
  for k in units:
    *window, n_in, n_out = p3d[k]["conv"]["kernel"].shape
    spatial, temporal = p21[k]["spatial"]["conv"]["kernel"], p21[k]["temporal"]["conv"]["kernel"]
    m = 27 * n_in * n_out // (9 * n_in + 3 * n_out)
    assert window == [3, 3, 3]
    assert spatial.shape == (1, 3, 3, n_in, m) and temporal.shape == (3, 1, 1, m, n_out)
    full, factorised = 27 * n_in * n_out, spatial.size + temporal.size
    assert factorised == 9 * n_in * m + 3 * m * n_out
    assert 0 <= full - factorised < 9 * n_in + 3 * n_out


def torch_c3d(widths, depths, c_in, num_classes, factorised):
  """C3D / plain R(2+1)D in torch, channels-first; ``units`` lists (conv, bn) pairs in order."""
  layers, units = [], []

  def cna(cin, cout, k, p):
    conv, bn = tnn.Conv3d(cin, cout, k, padding=p, bias=False), tnn.BatchNorm3d(cout)
    units.append((conv, bn))
    layers.extend([conv, bn, tnn.ReLU()])

  for i, (w, d) in enumerate(zip(widths, depths)):
    for _ in range(d):
      if factorised:
        m = 27 * c_in * w // (9 * c_in + 3 * w)
        cna(c_in, m, (1, 3, 3), (0, 1, 1))
        cna(m, w, (3, 1, 1), (1, 0, 0))
      else:
        cna(c_in, w, 3, 1)
      c_in = w
    layers.append(tnn.MaxPool3d((1, 2, 2) if i == 0 else 2))
  fc = tnn.Linear(c_in, num_classes)
  net = tnn.Sequential(*layers, tnn.AdaptiveAvgPool3d(1), tnn.Flatten(), fc)
  return net, units, fc


@pytest.mark.parametrize("name", ["c3d", "r2plus1d"])
def test_logits_match_torch_eval_mode(name):
  kw = TINY[name]
  model = models.create(name, num_classes=4, **kw)
  x = np.asarray(_clip(2))
  shapes = jax.eval_shape(model.init, jax.random.key(0), x)
  rng = np.random.default_rng(3)
  v = jax.tree_util.tree_map_with_path(
      lambda path, a: jnp.asarray(
          rng.uniform(0.5, 1.5, a.shape) if path[-1].key in ("scale", "var")
          else rng.standard_normal(a.shape) * (np.prod(a.shape[:-1]) ** -0.5
                                               if path[-1].key == "kernel" else 0.1),
          jnp.float32), shapes)
  ref, units, fc = torch_c3d(kw["widths"], kw["depths"], 1, 4, name == "r2plus1d")
  ref.eval()
  paths = [(f"conv{i + 1}_{j}", sub) for i, d in enumerate(kw["depths"]) for j in range(d)
           for sub in ((("spatial",), ("temporal",)) if name == "r2plus1d" else ((),))]
  t = lambda a: torch.from_numpy(np.array(a, np.float32))  # noqa: E731
  with torch.no_grad():
    for (unit, sub), (conv, bn) in zip(paths, units, strict=True):
      p = v["params"][unit]
      s = v["batch_stats"][unit]
      for key in sub:
        p, s = p[key], s[key]
      conv.weight.copy_(t(p["conv"]["kernel"]).permute(4, 3, 0, 1, 2))  # DHWIO -> OIDHW
      bn.weight.copy_(t(p["bn"]["scale"]))
      bn.bias.copy_(t(p["bn"]["bias"]))
      bn.running_mean.copy_(t(s["bn"]["mean"]))
      bn.running_var.copy_(t(s["bn"]["var"]))
    fc.weight.copy_(t(v["params"]["fc"]["kernel"]).T)
    fc.bias.copy_(t(v["params"]["fc"]["bias"]))
    expected = ref(t(x).permute(0, 4, 1, 2, 3)).numpy()  # NDHWC -> NCDHW
  np.testing.assert_allclose(jax.jit(model.apply)(v, x), expected, rtol=1e-4, atol=1e-4)


def test_macs_match_hand_count():
  """Per conv: outputs x 27 x C_in (every tap counted, padding included); fc: C x classes."""
  c3d = summarize(models.create("c3d", widths=(2, 4), depths=(1, 2), num_classes=10),
                  (4, 8, 8, 1))
  # conv1_0: 4x8x8 outputs, 1 -> 2; pool 1x2x2 -> 4x4x4; conv2_0: 2 -> 4; conv2_1: 4 -> 4.
  assert c3d.total_macs == (4 * 8 * 8 * 2 * 27 * 1 + 4 * 4 * 4 * 4 * 27 * 2
                            + 4 * 4 * 4 * 4 * 27 * 4 + 4 * 10)
  r21 = summarize(models.create("r2plus1d", widths=(6,), depths=(1,), num_classes=10),
                  (4, 8, 8, 1))
  m = 27 * 6 // (9 + 18)  # = 6
  assert r21.total_macs == 4 * 8 * 8 * (9 * 1 * m + 3 * m * 6) + 6 * 10


def test_rejects_bad_inputs():
  with pytest.raises(ValueError, match=r"T >= 8 and H, W >= 16"):
    models.create("c3d", widths=(4,) * 4, depths=(1,) * 4).init(
        jax.random.key(0), jnp.zeros((1, 4, 16, 16, 1)))
  with pytest.raises(ValueError, match="fusion='mid' is not one of"):
    models.create("single_frame", fusion="mid").init(jax.random.key(0), jnp.zeros(CLIP))
  with pytest.raises(ValueError, match="temporal_kernels"):
    models.create("slow_fusion", widths=(4, 8)).init(jax.random.key(0), jnp.zeros(CLIP))
