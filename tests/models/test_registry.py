"""One sweep over every registered model: parameter count (eval_shape, no memory) against the
published reference recorded with it (built with ``conv_impl='im2col'``, which must reach every
conv; the models of the forward sweeps below are initialised in train mode, so the same trace
checks their train-mode forward: logits ``(N, classes)``, batch statistics where the model has
them), and a jitted train-mode forward at a small resolution (finite logits of the right shape,
batch statistics updated where the model has them).

Compiling all ~60 models takes several CPU-minutes, so the default suite compiles one
representative of each architecture class (below; not those its family's test file compiles in
train mode already) and checks every other variant -- the same class at another depth or width
-- abstractly (the count's train-mode trace); ``pytest -m slow`` compiles and runs every model and
also traces every variant with ``num_classes=7`` at its small test resolution."""

import dataclasses

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import models
from cnnlab import nn as cnn

# Not (N, *S, C) float -> (N, classes) (token ids, mu-law codes, per-timestep outputs, forecasts,
# images): left out of the forward sweeps; tests/models/test_{kim_cnn,wavenet,tcn,forecast,
# conv_vae,denoise_ae}.py check their shapes (the conv_impl / count sweep takes every model, on
# its spec's input dtype).
OWN_SWEEP = {"kim_cnn", "wavenet", "tcn_copy", "dilated_forecaster", "conv_vae", "denoise_ae"}
# Dense prediction, (N, H, W, C) -> (N, H, W, classes): tests/models/test_{fcn,unet,
# dilated_context}.py check their shapes.
OWN_SWEEP |= set(models.list_models("dense"))
ALL = [n for n in models.list_models() if n not in OWN_SWEEP]
# One per architecture class / block type; the other registered variants differ in depth/width.
REPRESENTATIVES = {
    "alexnet", "allcnn_c", "cnn1d", "densenet_bc_100", "efficientnet_b0", "googlenet",
    "inception_v3", "lenet5", "lenet5_original", "mlp", "mobilenet_v1", "mobilenet_v2",
    "mobilenet_v3_small", "resnet18", "resnet50", "resnext50_32x4d", "resnet20", "wrn28_10",
    "shufflenet_v1_g3", "shufflenet_v2_x0_5", "small_cnn", "squeezenet1_0", "squeezenet1_1",
    "vgg11_bn",
}
# Representatives whose family's test file already compiles and runs a jitted train-mode forward
# of the same class (finite logits, batch statistics updated): compiled here with -m slow only.
COMPILED_ELSEWHERE = {
    "allcnn_c",  # test_classic.py::test_allcnn_overfits_one_batch (width 16)
    "efficientnet_b0",  # test_efficientnet.py::test_train_mode_drop_path_... (width 0.25)
    "googlenet",  # test_inception.py::test_googlenet_train_mode_aux_outputs_and_batch_stats
    "mobilenet_v2",  # test_mobilenet.py::test_train_mode_matches_torch_and_updates_batch_stats
    "resnet20",  # test_resnet.py::test_resnet20_overfits_a_tiny_batch
    "vgg11_bn",  # test_classic.py::test_vgg_bn_train_mode_updates_batch_stats (8 hidden units)
}


def _has_aux(name):
  builder = models.get_spec(name).builder
  return "aux_logits" in {f.name for f in dataclasses.fields(getattr(builder, "func", builder))}


def _create(name, **kw):
  if _has_aux(name):  # aux heads need full-size inputs; their own tests cover them
    kw["aux_logits"] = False
  return models.create(name, **kw)


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_registry_lists_and_rejects():
  assert len(ALL) == len(set(ALL)) >= 50
  with pytest.raises(ValueError, match=r"'resnet51' is not registered\. Did you mean .*resnet50"):
    models.create("resnet51")
  with pytest.raises(ValueError, match=r"no option\(s\) \['depthh'\]; valid options: \["):
    models.create("resnet50", depthh=3)


@pytest.mark.parametrize("name", models.list_models())
def test_parameter_count_and_conv_impl(name):
  """Built with ``conv_impl='im2col'`` (every registered model takes it): every ``cnn.Conv`` the
  model calls gets ``impl='im2col'``; then the count against the published one. A model of the
  forward sweeps is initialised in train mode, its logits ``(2, classes)``."""
  spec = models.get_spec(name)
  model = models.create(name, conv_impl="im2col")
  impls = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, cnn.Conv) and context.method_name == "__call__":
      impls.append(context.module.impl)
    return next_fun(*args, **kwargs)

  # (N, *S, C) float -> (N, classes): its train-mode forward traced too (aux heads: own tests)
  train = name in ALL and not _has_aux(name)
  x = jnp.zeros((2, *spec.input_shape), spec.input_dtype)
  rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
  with flax.linen.intercept_methods(record):
    logits, shapes = jax.eval_shape(lambda: model.init_with_output(rngs, x, train=train))
  if train:
    assert logits.shape[0] == 2 and logits.ndim == 2, logits.shape
  assert set(impls) == ({"im2col"} if spec.family not in ("mlp", "rnn") else set()), set(impls)
  if spec.num_params is None:
    pytest.skip(f"{name}: no exact published count (its family test checks the derivation)")
  assert _count(shapes["params"]) == spec.num_params


def _compiled_or_slow(names):
  compiled = REPRESENTATIVES - COMPILED_ELSEWHERE
  return [n if n in compiled else pytest.param(n, marks=pytest.mark.slow) for n in names]


@pytest.mark.slow  # the count's train-mode trace covers these in the default suite
@pytest.mark.parametrize("name", sorted(set(ALL) - REPRESENTATIVES))
def test_train_forward_shapes_abstract(name):
  spec = models.get_spec(name)
  model = _create(name, num_classes=7)
  x = jax.ShapeDtypeStruct((2, *spec.test_input_shape), jnp.float32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(x.shape), train=False))
  mutable = [k for k in ("batch_stats",) if k in shapes]
  rngs = {"dropout": jax.random.key(2)}
  logits, updates = jax.eval_shape(
      lambda v, x: model.apply(v, x, train=True, mutable=mutable, rngs=rngs), shapes, x)
  assert logits.shape == (2, 7)
  assert jax.tree.structure(updates.get("batch_stats", {})) == jax.tree.structure(
      shapes.get("batch_stats", {}))


@pytest.mark.parametrize("name", _compiled_or_slow(ALL))
def test_jitted_train_forward_small(name):
  spec = models.get_spec(name)
  model = _create(name, num_classes=7)
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, *spec.test_input_shape)),
                  jnp.float32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0, impl="rbg"), x, train=False))
  rng = np.random.default_rng(1)
  variables = jax.tree.map(lambda s: jnp.asarray(0.05 * rng.standard_normal(s.shape), s.dtype),
                           shapes)
  mutable = [k for k in ("batch_stats",) if k in variables]

  @jax.jit
  def step(variables, x):
    return model.apply(variables, x, train=True, mutable=mutable,
                       rngs={"dropout": jax.random.key(2, impl="rbg")})

  logits, updates = step(variables, x)
  assert logits.shape == (2, 7) and bool(jnp.all(jnp.isfinite(logits)))
  if mutable:
    before = jax.tree.leaves(variables["batch_stats"])
    after = jax.tree.leaves(updates["batch_stats"])
    assert all(not np.allclose(a, b) for a, b in zip(before, after))
