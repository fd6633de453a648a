"""The torch re-statements in ``cnnlab.bench.torch_models`` that ``scripts/bench_train.py`` times
against cnnlab's MobileNet-v2, EfficientNet-B0, ShuffleNet-v2 and C3D: the same architecture,
checked layer by layer (every parameter's Flax path and shape, via ``torch_to_flax``), by total
parameter count, by output shape, and (eval mode, copied weights) by logits.

cnnlab's parameter shapes come from ``jax.eval_shape`` of ``init`` (no compile)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from cnnlab import models
from cnnlab.bench import torch_models
from cnnlab.train.config import VIDEO_MODELS

# cnnlab name -> (model options, torch factory, one example's shape).
NETS = {
    "mobilenet_v2": ({}, lambda: torch_models.MobileNetV2(num_classes=10), (32, 32, 3)),
    "efficientnet_b0": ({}, lambda: torch_models.EfficientNetB0(num_classes=10), (32, 32, 3)),
    "shufflenet_v2_x1_0": ({}, lambda: torch_models.ShuffleNetV2(num_classes=10), (32, 32, 3)),
    "c3d": (VIDEO_MODELS["c3d"], lambda: torch_models.C3D(VIDEO_MODELS["c3d"]["widths"]),
            (16, 32, 32, 1)),
}


def leaf_shapes(tree) -> dict:
  return {"/".join(k.key for k in path): tuple(v.shape)
          for path, v in jax.tree_util.tree_leaves_with_path(tree)}


def cnnlab_variables(name, batch=2):
  kw, _, shape = NETS[name]
  model = models.create(name, num_classes=10, **kw)
  return model, jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((batch, *shape)))


@pytest.mark.parametrize("name", sorted(NETS))
def test_same_parameters_layer_by_layer_and_in_total(name):
  _, variables = cnnlab_variables(name)
  net = NETS[name][1]()
  ours = leaf_shapes(variables["params"])
  assert leaf_shapes(torch_models.torch_to_flax(net)["params"]) == ours
  assert sum(p.numel() for p in net.parameters()) == sum(int(np.prod(s)) for s in ours.values())
  assert (leaf_shapes(torch_models.torch_to_flax(net)["batch_stats"])
          == leaf_shapes(variables["batch_stats"]))


def test_torchvision_parameter_counts_at_1000_classes():
  """The published counts (torchvision's weights meta), independent of cnnlab."""
  counts = {torch_models.MobileNetV2: 3_504_872, torch_models.EfficientNetB0: 5_288_548,
            torch_models.ShuffleNetV2: 2_278_604}
  for cls, n in counts.items():
    with torch.device("meta"):
      assert sum(p.numel() for p in cls(num_classes=1000).parameters()) == n, cls.__name__


@pytest.mark.parametrize("name", sorted(NETS))
def test_forward_shape(name):
  model, _ = cnnlab_variables(name)
  shape = NETS[name][2]
  out = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x)[0],
                       jnp.zeros((2, *shape)))
  with torch.no_grad():
    y = NETS[name][1]().eval()(torch.zeros(2, shape[-1], *shape[:-1]))
  assert tuple(y.shape) == out.shape == (2, 10)


def to_torch(x):
  return torch.from_numpy(np.moveaxis(x, -1, 1).copy())


@pytest.mark.parametrize("name", sorted(NETS))
def test_eval_logits_match_with_copied_weights(name):
  """Eval mode, copied weights and statistics: the same function, not only the same shapes."""
  torch.manual_seed(0)
  shape = NETS[name][2]
  x, x_stats = np.split(np.random.default_rng(0).standard_normal((10, *shape), dtype=np.float32),
                        [2])
  net = torch_models.calibrate_bn(NETS[name][1](), to_torch(x_stats))
  with torch.no_grad():
    want = net(to_torch(x)).numpy()
  assert np.abs(want[0] - want[1]).max() > 1e-2  # the input reaches the logits
  model, _ = cnnlab_variables(name)
  got = jax.jit(model.apply)(torch_models.torch_to_flax(net), x)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
