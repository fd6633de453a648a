"""Yu & Koltun's dilated front-end + basic context module: the identity-initialised module returns
its input exactly (``np.maximum(x, 0)`` for signed input: every layer but the last is ReLU'd), also
inside the model at init; its receptive field measured by the gradient of one output equals
``context_receptive_field()`` and their Table 1's 67; output stride ``2**num_pools``; logits the
input's size (odd / even, eager / jitted, pad-then-crop); finite train gradients."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import models
from cnnlab import nn as cnn
from cnnlab.models.dilated_context import ContextModule, context_receptive_field
from models import dense


@pytest.fixture(scope="module")
def net():
  model = models.create("dilated_context")
  return model, dense.init(model)


@pytest.mark.parametrize("jit", [False, True])
def test_identity_init_passes_input(jit):
  m = ContextModule(cnn.Conv)
  x = dense.image(9, 11, n=2, c=3)
  variables = jax.jit(m.init)(dense.key(0), x)
  apply = jax.jit(m.apply) if jit else m.apply
  np.testing.assert_array_equal(apply(variables, jnp.abs(x)), jnp.abs(x))
  np.testing.assert_array_equal(apply(variables, x), np.maximum(np.asarray(x), 0))


def test_model_context_passes_front_end_scores(net):
  """Inside the model at init: context output == relu(front-end scores), at 1/4 resolution of
  the padded input (31 -> 32 -> 8)."""
  model, variables = net
  _, state = jax.jit(lambda v, x: model.apply(v, x, capture_intermediates=True))(
      variables, dense.image(31, 31))
  scores = state["intermediates"]["front_end"]["__call__"][0]
  context = state["intermediates"]["context"]["__call__"][0]
  assert scores.shape == context.shape == (1, 8, 8, dense.NUM_CLASSES)
  np.testing.assert_array_equal(context, np.maximum(np.asarray(scores), 0))


def test_receptive_field_by_gradient():
  """Positive kernels and inputs (every ReLU open, no cancellation): the gradient of output pixel
  (37, 37) w.r.t. the 75x75 input is nonzero exactly on a centred 67x67 square."""
  assert context_receptive_field() == 67  # Yu & Koltun 2015, Table 1
  m = ContextModule(cnn.Conv)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.uniform(0.5, 1.0, (1, 75, 75, 2)), jnp.float32)
  shapes = jax.eval_shape(m.init, dense.key(0), x)
  variables = jax.tree.map(lambda s: jnp.asarray(rng.uniform(0.1, 1.0, s.shape), s.dtype), shapes)
  g = jax.jit(jax.grad(lambda x: m.apply(variables, x)[0, 37, 37].sum()))(x)
  nz = np.asarray(jnp.any(g[0] != 0, axis=-1))
  rows, cols = np.flatnonzero(nz.any(1)), np.flatnonzero(nz.any(0))
  r = context_receptive_field()
  assert rows[-1] - rows[0] + 1 == cols[-1] - cols[0] + 1 == r
  assert (rows[0], cols[0]) == (37 - r // 2, 37 - r // 2)
  assert nz.sum() == r * r


def test_output_sizes(net):
  dense.check_output_sizes(*net)


def test_pad_then_crop(net):
  dense.check_pad_then_crop(*net, 31, 32)


def test_train_step_gradients_finite(net):
  dense.check_train_step(*net)


def test_front_end_dilations_and_stride():
  """Defaults (4 stages, 2 pools kept): VGG's rule, each removed pool doubles the dilation of what
  follows: stages 0-2 dilation 1, stage 3 dilation 2, fc6 4; the context's 1,1,2,4,8,16,1.
  With 3 pools kept: output stride 8. Bad num_pools refused."""
  model = models.create("dilated_context")
  x = jax.ShapeDtypeStruct((1, 40, 40, 1), jnp.float32)
  variables = jax.eval_shape(model.init, dense.key(0), x)
  seen = {}

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, cnn.Conv) and context.module.kernel_size[0] == 3:
      parent = context.module.parent
      seen.setdefault(f"{parent.name}/{context.module.name}", context.module.kernel_dilation)
    return next_fun(*args, **kwargs)

  with flax.linen.intercept_methods(record):
    jax.eval_shape(model.apply, variables, x)
  front = {k: v for k, v in seen.items() if k.startswith("stage") or k.startswith("front_end")}
  assert front == {"stage0/conv0": 1, "stage0/conv1": 1, "stage1/conv0": 1, "stage1/conv1": 1,
                   "stage2/conv0": 1, "stage2/conv1": 1, "stage3/conv0": 2, "stage3/conv1": 2,
                   "front_end/fc6": 4}
  assert [seen[f"context/ctx{i}"] for i in range(7)] == [1, 1, 2, 4, 8, 16, 1]

  model = models.create("dilated_context", num_pools=3)
  _, state = jax.eval_shape(lambda v, x: model.apply(v, x, capture_intermediates=True),
                            variables, x)
  assert state["intermediates"]["front_end"]["__call__"][0].shape == (1, 5, 5, 11)
  with pytest.raises(ValueError, match="num_pools"):
    jax.eval_shape(models.create("dilated_context", num_pools=5).init, dense.key(0), x)
