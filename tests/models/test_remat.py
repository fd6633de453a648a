"""Rematerialisation per block (``remat`` option of the ResNet family, ``blocks.remat``): the
parameter tree is unchanged and the gradients equal those of the model without remat (the
reference: the same model with ``remat=''``) for every policy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import models
from cnnlab.models import blocks

# name, options, input: a bottleneck and a basic-block ImageNet ResNet (one block per stage, tiny
# input), the CIFAR ResNet (one block per stage) and the Wide ResNet's pre-activation blocks.
ONE = {"stage_sizes": (1, 1, 1, 1)}
SLOW = pytest.mark.slow  # compiling 2-3 ImageNet-ResNet gradients: > 30 s on 2 shared cores
CASES = [pytest.param("resnet50", ONE, (32, 32, 3), marks=SLOW, id="resnet50"),
         pytest.param("resnet18", {**ONE, "small_stem": True}, (8, 8, 3), marks=SLOW,
                      id="resnet18"),
         pytest.param("resnet20", {"depth": 8}, (8, 8, 3), id="resnet20"),
         pytest.param("wrn28_10", {"depth": 10, "widen_factor": 1}, (8, 8, 3), id="wrn")]


def _loss_and_grads(name, options, shape, policy):
  model = models.create(name, num_classes=10, remat=policy, **options)
  x = jax.random.normal(jax.random.key(1), (4, *shape))
  variables = model.init(jax.random.key(0), x[:1], train=False)

  def loss(params):
    logits, _ = model.apply({**variables, "params": params}, x, train=True,
                            mutable=["batch_stats"])
    return jnp.mean(jax.nn.log_softmax(logits)[:, 0])
  return jax.jit(jax.value_and_grad(loss))(variables["params"])


@pytest.mark.parametrize("name,options,shape", CASES)
def test_remat_gives_the_same_gradients(name, options, shape):
  ref_loss, ref = _loss_and_grads(name, options, shape, "")
  for policy in ("full", "dots_saveable")[:1 if name != "resnet50" else 2]:
    loss, grads = _loss_and_grads(name, options, shape, policy)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    assert jax.tree.structure(grads) == jax.tree.structure(ref)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref)):
      np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("policy", [p for p in blocks.REMAT_POLICIES if p])
def test_remat_keeps_the_parameter_tree(policy):
  """ResNet-50 at 224 (abstractly): the same variable paths, shapes and dtypes."""
  def tree(p):
    model = models.create("resnet50", remat=p)
    return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)),
                                             train=False))
  assert jax.tree.map(lambda s: (s.shape, s.dtype), tree(policy)) == \
      jax.tree.map(lambda s: (s.shape, s.dtype), tree(""))


def test_unknown_policy_is_named():
  model = models.create("resnet20", remat="some")
  with pytest.raises(ValueError, match="remat='some' is not one of"):
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
