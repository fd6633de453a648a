"""ShuffleNet v1/v2 against published numbers and plain torch.nn re-statements.

v2: torchvision's documented parameter counts and GFLOPS (MACs), its architecture re-stated in
torch (counts; logits with copied weights). v1: the paper's Table 1 complexity (MFLOPs = MACs),
parameter counts of the reference implementations (Megvii's ShuffleNet-Series README: 1.9M for
g=3, 2.4M for g=8 at 1x; OpenMMLab mmpretrain: 1.87M for g=3) and a torch re-statement of
Megvii's unit (exact counts; logits with copied weights).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn as tnn
from torch.nn import functional as F

from cnnlab import models
from cnnlab.models import shufflenet as sn
from test_inception import params_and_macs, random_variables, randomise_bn, torch_to_flax

# torchvision: stage channels (stages 2-4, conv5), num_params, GFLOPS (as printed, MACs).
TORCHVISION_V2 = {
    "x0_5": ((48, 96, 192, 1024), 1_366_792, "0.04"),
    "x1_0": ((116, 232, 464, 1024), 2_278_604, "0.145"),
    "x1_5": ((176, 352, 704, 1024), 3_503_624, "0.296"),
    "x2_0": ((244, 488, 976, 2048), 7_393_996, "0.583"),
}
# Paper Table 1 (1x): stage 2-4 output channels and complexity in MFLOPs (multiply-adds).
PAPER_V1 = {1: ((144, 288, 576), 143), 2: ((200, 400, 800), 140), 3: ((240, 480, 960), 137),
            4: ((272, 544, 1088), 133), 8: ((384, 768, 1536), 137)}
# Reference implementations' parameter counts at 1x (millions, as printed). Megvii's classifier
# has no bias; mmpretrain's head, like ours, has one.
REFERENCE_V1_PARAMS = {3: [("megvii", "1.9"), ("mmpretrain", "1.87")], 8: [("megvii", "2.4")]}


# --------------------------------------------------------------------------- torch re-statements
def torch_shuffle(x, groups):  # torchvision's channel_shuffle (NCHW)
  n, c, h, w = x.shape
  return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def conv_bn(cin, cout, k=1, stride=1, groups=1):
  return [tnn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
          tnn.BatchNorm2d(cout)]


class TV2Unit(tnn.Module):  # torchvision's InvertedResidual
  def __init__(self, cin, cout, stride):
    super().__init__()
    self.stride, half = stride, cout // 2
    if stride > 1:
      self.branch1 = tnn.Sequential(*conv_bn(cin, cin, 3, stride, cin), *conv_bn(cin, half),
                                    tnn.ReLU())
    self.branch2 = tnn.Sequential(*conv_bn(cin if stride > 1 else half, half), tnn.ReLU(),
                                  *conv_bn(half, half, 3, stride, half), *conv_bn(half, half),
                                  tnn.ReLU())

  def forward(self, x):
    if self.stride == 1:
      x1, x2 = x.chunk(2, dim=1)
      return torch_shuffle(torch.cat([x1, self.branch2(x2)], 1), 2)
    return torch_shuffle(torch.cat([self.branch1(x), self.branch2(x)], 1), 2)


class TShuffleNetV2(tnn.Module):
  def __init__(self, channels, num_classes=1000):
    super().__init__()
    self.conv1 = tnn.Sequential(*conv_bn(3, 24, 3, 2), tnn.ReLU())
    cin = 24
    for s, (repeats, cout) in enumerate(zip((4, 8, 4), channels[:3])):
      setattr(self, f"stage{s + 2}", tnn.Sequential(
          *[TV2Unit(cin if i == 0 else cout, cout, 2 if i == 0 else 1) for i in range(repeats)]))
      cin = cout
    self.conv5 = tnn.Sequential(*conv_bn(cin, channels[3]), tnn.ReLU())
    self.fc = tnn.Linear(channels[3], num_classes)

  def forward(self, x):
    x = F.max_pool2d(self.conv1(x), 3, 2, 1)
    x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
    return self.fc(x.mean((2, 3)))


class TV1Unit(tnn.Module):  # Megvii's ShuffleV1Block, with the paper's shuffle order
  def __init__(self, cin, cout, stride, groups, first_groups):
    super().__init__()
    self.stride, self.groups, mid = stride, groups, cout // 4
    out = cout - cin if stride == 2 else cout
    self.pw1, self.pw1_bn = conv_bn(cin, mid, 1, 1, first_groups)
    self.dw, self.dw_bn = conv_bn(mid, mid, 3, stride, mid)
    self.pw2, self.pw2_bn = conv_bn(mid, out, 1, 1, groups)

  def forward(self, x):
    y = torch_shuffle(F.relu(self.pw1_bn(self.pw1(x))), self.groups)
    y = self.pw2_bn(self.pw2(self.dw_bn(self.dw(y))))
    if self.stride == 1:
      return F.relu(x + y)
    return torch.cat([F.avg_pool2d(x, 3, 2, 1), F.relu(y)], 1)


class TShuffleNetV1(tnn.Module):
  def __init__(self, groups, num_classes=1000, classifier_bias=True):
    super().__init__()
    self.conv1, self.conv1_bn = conv_bn(3, 24, 3, 2)
    cin = 24
    for s, (repeats, cout) in enumerate(zip((4, 8, 4), PAPER_V1[groups][0])):
      setattr(self, f"stage{s + 2}", tnn.ModuleList(
          [TV1Unit(cin if i == 0 else cout, cout, 2 if i == 0 else 1, groups,
                   1 if s == 0 and i == 0 else groups) for i in range(repeats)]))
      cin = cout
    self.fc = tnn.Linear(cin, num_classes, bias=classifier_bias)

  def forward(self, x):
    x = F.max_pool2d(F.relu(self.conv1_bn(self.conv1(x))), 3, 2, 1)
    for stage in (self.stage2, self.stage3, self.stage4):
      for unit in stage:
        x = unit(x)
    return self.fc(x.mean((2, 3)))


def torch_count(build):
  with torch.device("meta"):
    return sum(p.numel() for p in build().parameters())


def assert_matches_torch(name, ref, size):
  """Copies ``ref``'s weights (random BN statistics) and compares eval-mode logits, jitted."""
  randomise_bn(ref.eval())
  x = torch.randn(2, 3, size, size)
  with torch.no_grad():
    want = ref(x).numpy()
  model = models.create(name, num_classes=want.shape[-1])
  variables = torch_to_flax(ref)
  init = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, size, size, 3)))
  assert jax.tree.structure(variables) == jax.tree.structure(init)
  got = jax.jit(model.apply)(variables, jnp.asarray(x.numpy().transpose(0, 2, 3, 1)))
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


# --------------------------------------------------------------------------- counts
@pytest.mark.parametrize("variant", list(TORCHVISION_V2))
def test_v2_params_and_macs_match_torchvision(variant):
  channels, num_params, gflops = TORCHVISION_V2[variant]
  spec = models.get_spec(f"shufflenet_v2_{variant}")
  n, macs = params_and_macs(models.create(spec.name), spec.input_shape)
  assert n == num_params == spec.num_params == torch_count(lambda: TShuffleNetV2(channels))
  assert f"{macs / 1e9:.{len(gflops) - 2}f}" == gflops


@pytest.mark.parametrize("groups", list(PAPER_V1))
def test_v1_macs_match_paper_and_params_match_reference(groups):
  n, macs = params_and_macs(models.create(f"shufflenet_v1_g{groups}"), (224, 224, 3))
  # Table 1 gives MFLOPs without a counting convention; ours (convs + FC) are within 1.5M (1%).
  assert abs(macs / 1e6 - PAPER_V1[groups][1]) < 1.5
  assert n == torch_count(lambda: TShuffleNetV1(groups))
  counts = {"megvii": torch_count(lambda: TShuffleNetV1(groups, classifier_bias=False)),
            "mmpretrain": n}
  for source, printed in REFERENCE_V1_PARAMS.get(groups, []):
    assert f"{counts[source] / 1e6:.{len(printed) - 2}f}" == printed, source


# --------------------------------------------------------------------------- numerics
@given(groups=st.sampled_from([1, 2, 3, 4, 8]), per_group=st.integers(1, 5),
       hw=st.integers(1, 4))
@settings(max_examples=12, deadline=None)
def test_channel_shuffle_matches_torchvision(groups, per_group, hw):
  x = np.random.default_rng(0).standard_normal((2, groups * per_group, hw, hw), np.float32)
  want = torch_shuffle(torch.from_numpy(x), groups).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_array_equal(sn.channel_shuffle(jnp.asarray(x.transpose(0, 2, 3, 1)), groups),
                                want)


def test_v2_x0_5_matches_torch_with_copied_weights():
  torch.manual_seed(0)
  assert_matches_torch("shufflenet_v2_x0_5", TShuffleNetV2(TORCHVISION_V2["x0_5"][0], 10), 37)


def test_v1_g3_matches_torch_with_copied_weights():
  torch.manual_seed(0)
  assert_matches_torch("shufflenet_v1_g3", TShuffleNetV1(3, 10), 37)


# --------------------------------------------------------------------------- running
@pytest.mark.parametrize("name", ["shufflenet_v1_g1", "shufflenet_v1_g8", "shufflenet_v2_x2_0"])
def test_jit_train_forward_updates_batch_stats(name):
  model = models.create(name, num_classes=4, dropout_rate=0.2)
  shape = models.get_spec(name).test_input_shape
  variables = random_variables(model, shape)
  x = jax.random.normal(jax.random.key(0), (2, *shape))
  logits, state = jax.jit(lambda v, x: model.apply(
      v, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(1)}))(variables, x)
  assert logits.shape == (2, 4) and bool(jnp.isfinite(logits).all())
  # Every running variance moves (means after a 1x1 conv fed by a train-mode BN stay exactly 0).
  var = lambda tree: [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
                      if path[-1].key == "var"]
  old, new = var(variables["batch_stats"]), var(state["batch_stats"])
  assert len(old) == len(new) > 0 and all(not np.allclose(a, b) for a, b in zip(old, new))


@pytest.mark.parametrize("name", ["shufflenet_v1_g2", "shufflenet_v2_x1_0"])
def test_sown_features(name):
  model = models.create(name)
  x = jnp.zeros((1, 224, 224, 3))
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  _, feats = jax.eval_shape(lambda v, x: models.extract_features(model, v, x), variables, x)
  c = sn.V1_STAGE_CHANNELS[2] if "v1" in name else TORCHVISION_V2["x1_0"][0]
  assert {k: v.shape for k, v in feats.items()} == {
      "stem": (1, 56, 56, 24), "stage1": (1, 28, 28, c[0]), "stage2": (1, 14, 14, c[1]),
      "stage3": (1, 7, 7, c[2]), "pre_logits": (1, 1024 if "v2" in name else c[2])}


@pytest.mark.parametrize("name, kwargs, match", [
    ("shufflenet_v1_g3", {"groups": 5}, "groups"),
    ("shufflenet_v2_x1_0", {"stage_channels": (115, 232, 464, 1024)}, "stage_channels"),
    ("shufflenet_v2_x1_0", {"stage_channels": (116, 232, 464)}, "stage_channels"),
])
def test_bad_options_raise_value_error(name, kwargs, match):
  model = models.create(name, **kwargs)
  with pytest.raises(ValueError, match=match):
    jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
