"""Checks shared by the dense-prediction model tests (test_fcn, test_unet, test_dilated_context):
the logits have the input's size for odd and even sizes, eager and jitted; an odd-size output is
the top-left crop of the output for the input zero-padded by hand; a train step's gradients are
finite and reach every parameter. The parameters of these fully convolutional models do not
depend on the input size, so one init (``init``, jitted, rbg keys: cheap to compile) serves
every size."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

SIZES = ((31, 31), (32, 32), (45, 64), (64, 45), (64, 64))
NUM_CLASSES = 11


def key(seed):
  return jax.random.key(seed, impl="rbg")


def image(h, w, n=1, c=1, seed=0):
  return jnp.asarray(np.random.default_rng(seed).standard_normal((n, h, w, c)), jnp.float32)


def init(model, h=32, w=32, c=1):
  return jax.jit(model.init)(key(0), image(h, w, c=c))


def check_output_sizes(model, variables, sizes=SIZES, computed=(31, 45)):
  """Every size abstractly (``jax.eval_shape``), both through ``model.apply`` and
  ``jax.jit(model.apply)``; the ``computed`` size eager and jitted, same values."""
  for h, w in sizes:
    x = jax.ShapeDtypeStruct((1, h, w, 1), jnp.float32)
    for apply in (model.apply, jax.jit(model.apply)):
      assert jax.eval_shape(apply, variables, x).shape == (1, h, w, NUM_CLASSES), (h, w)
  x = image(*computed)
  eager, jitted = model.apply(variables, x), jax.jit(model.apply)(variables, x)
  assert eager.shape == jitted.shape == (1, *computed, NUM_CLASSES)
  np.testing.assert_allclose(eager, jitted, rtol=1e-4, atol=1e-4)


def check_pad_then_crop(model, variables, size, padded):
  """The model zero-pads ``size`` up to ``padded`` and crops: doing the padding by hand must give
  the same logits on the ``size`` corner."""
  x = image(size, size)
  x_pad = jnp.pad(x, ((0, 0), (0, padded - size), (0, padded - size), (0, 0)))
  apply = jax.jit(model.apply)
  big = apply(variables, x_pad)
  assert big.shape[1:3] == (padded, padded)
  np.testing.assert_allclose(apply(variables, x), big[:, :size, :size], rtol=1e-5, atol=1e-5)


def check_train_step(model, variables, size=21):
  """Per-pixel softmax cross-entropy, train mode (dropout on): finite loss, every gradient leaf
  finite and not all zero."""
  x = image(size, size, n=2)
  labels = jnp.asarray(np.random.default_rng(1).integers(0, NUM_CLASSES, (2, size, size)))

  @jax.jit
  def loss_and_grads(params):
    def loss(p):
      logits = model.apply({**variables, "params": p}, x, train=True, rngs={"dropout": key(1)})
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return jax.value_and_grad(loss)(params)

  value, grads = loss_and_grads(variables["params"])
  assert np.isfinite(float(value))
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert bool(jnp.all(jnp.isfinite(g))), path
    assert bool(jnp.any(g != 0)), path
