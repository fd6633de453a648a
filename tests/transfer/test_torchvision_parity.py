"""from_torchvision logit parity (eval mode, <= 1e-4 abs) for GoogLeNet, Inception-v3,
MobileNet v3 and EfficientNet, with random torch weights and BatchNorm statistics.

The torch nets are the re-statements of tests/models (numerics already checked there against
cnnlab under cnnlab's names), rearranged here into torchvision's containers (``features``
Sequentials, ``block`` Sequentials of ``Conv2dNormActivation`` = [conv, bn, act], ``classifier``
Sequentials), so their ``state_dict`` keys are torchvision's by construction; Inception-v3 is
re-stated here under torchvision's ``Inception3`` names."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn as tnn
from torch.nn import functional as F

from cnnlab.bench import torch_models
from cnnlab import models, transfer
from conftest import REPO, load_config_module

_MODELS = REPO / "tests" / "models"


def _cna(m):
  """A re-statement's conv/bn/act module as torchvision's Conv2dNormActivation [0, 1, 2]."""
  return tnn.Sequential(m.conv, m.bn, m.act)


class TVLayout(tnn.Module):
  """Holds ``net``'s modules under torchvision's names; runs ``net``'s own forward."""

  def __init__(self, net, **children):
    super().__init__()
    for k, v in children.items():
      self.add_module(k, v)
    self.forward_fn = [net]  # a list: not a child, so not in the state_dict

  def train(self, mode=True):  # also the re-statement's own modules (EfficientNet's drop path)
    self.forward_fn[0].train(mode)
    return super().train(mode)

  def forward(self, x):
    return self.forward_fn[0](x)


class _Block(tnn.Module):
  def __init__(self, layers):
    super().__init__()
    self.block = tnn.Sequential(*layers)


def mobilenet_v3(variant, num_classes):
  net = torch_models.MobileNetV3(variant, num_classes)
  blocks = []
  for b in net.blocks:
    parts = [_cna(b.expand)] if b.expand is not None else []
    parts += [_cna(b.depthwise), *([b.se] if b.se is not None else []), _cna(b.project)]
    blocks.append(_Block(parts))
  features = tnn.Sequential(_cna(net.stem_conv), *blocks, _cna(net.head_conv))
  classifier = tnn.Sequential(net.classifier_hidden, net.act, net.drop, net.classifier)
  return TVLayout(net, features=features, classifier=classifier)


def efficientnet(width, depth, num_classes):
  net = load_config_module(_MODELS / "test_efficientnet.py").TEfficientNet(
      width, depth, num_classes=num_classes)
  repeats = [math.ceil(n * depth) for n in (1, 2, 2, 3, 3, 4, 1)]  # torchvision's B0 rows
  blocks, stages = net.blocks(), []
  for n in repeats:
    stage, blocks = blocks[:n], blocks[n:]
    stages.append(tnn.Sequential(*[_Block([m if name == "se" else _cna(m) for name, m in (
        (name, getattr(b, name)) for name in b.names)]) for b in stage]))
  features = tnn.Sequential(_cna(net.stem_conv), *stages, _cna(net.head_conv))
  return TVLayout(net, features=features, classifier=tnn.Sequential(net.drop, net.classifier))


def googlenet(num_classes):
  return load_config_module(_MODELS / "test_inception.py").TGoogLeNet(num_classes)


# ------------------------------------------------ Inception-v3 under torchvision's names
class BasicConv2d(tnn.Module):
  def __init__(self, cin, cout, k, stride=1, padding=0):
    super().__init__()
    self.conv = tnn.Conv2d(cin, cout, k, stride, padding, bias=False)
    self.bn = tnn.BatchNorm2d(cout, eps=0.001)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


def _pool3(x):
  return F.avg_pool2d(x, 3, 1, 1)


class InceptionA(tnn.Module):
  def __init__(self, cin, pool):
    super().__init__()
    self.branch1x1 = BasicConv2d(cin, 64, 1)
    self.branch5x5_1, self.branch5x5_2 = BasicConv2d(cin, 48, 1), BasicConv2d(48, 64, 5, 1, 2)
    self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, 1, 1)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, 1, 1)
    self.branch_pool = BasicConv2d(cin, pool, 1)

  def forward(self, x):
    return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                      self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                      self.branch_pool(_pool3(x))], 1)


class InceptionB(tnn.Module):
  def __init__(self, cin):
    super().__init__()
    self.branch3x3 = BasicConv2d(cin, 384, 3, 2)
    self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, 1, 1)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, 2)

  def forward(self, x):
    return torch.cat([self.branch3x3(x),
                      self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                      F.max_pool2d(x, 3, 2)], 1)


class InceptionC(tnn.Module):
  def __init__(self, cin, c7):
    super().__init__()
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))
    self.branch1x1 = BasicConv2d(cin, 192, 1)
    self.branch7x7_1 = BasicConv2d(cin, c7, 1)
    self.branch7x7_2 = BasicConv2d(c7, c7, row[0], 1, row[1])
    self.branch7x7_3 = BasicConv2d(c7, 192, col[0], 1, col[1])
    self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
    self.branch7x7dbl_2 = BasicConv2d(c7, c7, col[0], 1, col[1])
    self.branch7x7dbl_3 = BasicConv2d(c7, c7, row[0], 1, row[1])
    self.branch7x7dbl_4 = BasicConv2d(c7, c7, col[0], 1, col[1])
    self.branch7x7dbl_5 = BasicConv2d(c7, 192, row[0], 1, row[1])
    self.branch_pool = BasicConv2d(cin, 192, 1)

  def forward(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    d = x
    for i in range(1, 6):
      d = getattr(self, f"branch7x7dbl_{i}")(d)
    return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_pool3(x))], 1)


class InceptionD(tnn.Module):
  def __init__(self, cin):
    super().__init__()
    self.branch3x3_1, self.branch3x3_2 = BasicConv2d(cin, 192, 1), BasicConv2d(192, 320, 3, 2)
    self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
    self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), 1, (0, 3))
    self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), 1, (3, 0))
    self.branch7x7x3_4 = BasicConv2d(192, 192, 3, 2)

  def forward(self, x):
    d = x
    for i in range(1, 5):
      d = getattr(self, f"branch7x7x3_{i}")(d)
    return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), d, F.max_pool2d(x, 3, 2)], 1)


class InceptionE(tnn.Module):
  def __init__(self, cin):
    super().__init__()
    self.branch1x1 = BasicConv2d(cin, 320, 1)
    self.branch3x3_1 = BasicConv2d(cin, 384, 1)
    self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), 1, (0, 1))
    self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), 1, (1, 0))
    self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
    self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, 1, 1)
    self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), 1, (0, 1))
    self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), 1, (1, 0))
    self.branch_pool = BasicConv2d(cin, 192, 1)

  def forward(self, x):
    a = self.branch3x3_1(x)
    d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    return torch.cat([self.branch1x1(x),
                      torch.cat([self.branch3x3_2a(a), self.branch3x3_2b(a)], 1),
                      torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1),
                      self.branch_pool(_pool3(x))], 1)


class Inception3(tnn.Module):
  """torchvision.models.Inception3(aux_logits=False, transform_input=False), eval mode."""

  def __init__(self, num_classes):
    super().__init__()
    self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, 2)
    self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
    self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, 1, 1)
    self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
    self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
    self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = (InceptionA(192, 32), InceptionA(256, 64),
                                                   InceptionA(288, 64))
    self.Mixed_6a = InceptionB(288)
    self.Mixed_6b, self.Mixed_6c = InceptionC(768, 128), InceptionC(768, 160)
    self.Mixed_6d, self.Mixed_6e = InceptionC(768, 160), InceptionC(768, 192)
    self.Mixed_7a, self.Mixed_7b, self.Mixed_7c = (InceptionD(768), InceptionE(1280),
                                                   InceptionE(2048))
    self.fc = tnn.Linear(2048, num_classes)

  def forward(self, x):
    x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
    x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, 2)))
    x = F.max_pool2d(x, 3, 2)
    for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
      x = getattr(self, f"Mixed_{name}")(x)
    return self.fc(x.mean((2, 3)))


# name -> (torch builder of num_classes, create() overrides, input H, W)
CASES = {
    "googlenet": (googlenet, {}, (64, 57)),
    "inception_v3": (Inception3, dict(aux_logits=False), (80, 75)),
    "mobilenet_v3_large": (lambda n: mobilenet_v3("large", n), {}, (48, 40)),
    "mobilenet_v3_small": (lambda n: mobilenet_v3("small", n), {}, (40, 40)),
    "efficientnet_b0": (lambda n: efficientnet(1.0, 1.0, n), {}, (40, 36)),
    "efficientnet_b2": (lambda n: efficientnet(1.1, 1.2, n), {}, (32, 32)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_logits_match_torch(name):
  build, overrides, hw = CASES[name]
  torch.manual_seed(0)
  net = torch_models.randomize_bn(build(7)).eval()
  variables = transfer.from_torchvision(name, net.state_dict(), **overrides)
  x = np.random.default_rng(0).normal(size=(2, 3, *hw)).astype(np.float32)
  with torch.no_grad():
    want = net(torch.from_numpy(x)).numpy()
  model = models.create(name, num_classes=7, **overrides)
  got = np.asarray(jax.jit(model.apply)(variables, jnp.asarray(x.transpose(0, 2, 3, 1))))
  print(f"{name}: max |logit diff| = {np.abs(got - want).max():.2e} "
        f"(logit scale {np.abs(want).max():.2f})")
  assert np.abs(want).max() > 1e-2  # a network that outputs ~0 would match anything
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
