"""Model summary: totals against torchvision's published numbers, torch's FLOP counter and
XLA's cost analysis; receptive fields against a brute-force gradient support."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models import create
from cnnlab.models.summary import GLOBAL, summarize


# torchvision model docs: num_params and "GFLOPS" (which counts multiply-adds), 224x224.
@pytest.mark.parametrize("name,params,gmacs", [("resnet18", 11_689_512, 1.81),
                                               ("resnet50", 25_557_032, 4.09)])
def test_totals_match_torchvision(name, params, gmacs):
  s = summarize(name)
  assert s.input_shape == (1, 224, 224, 3)
  assert s.total_params == params
  assert abs(s.total_macs / 1e9 / gmacs - 1) < 0.02
  assert sum(r.params for r in s.rows) == s.total_params
  assert sum(r.macs for r in s.rows) == s.total_macs


def test_resnet18_rows():
  s = summarize("resnet18")
  rows = {"/".join(r.path): r for r in s.rows}
  conv1 = rows["conv1"]  # 7x7x3x64 on 112x112 outputs
  assert (conv1.output_shape, conv1.params, conv1.macs) == ((1, 112, 112, 64), 9408,
                                                           112 * 112 * 64 * 7 * 7 * 3)
  assert rows["fc"].macs == 512 * 1000 and rows["fc"].receptive_field == GLOBAL
  # Published theoretical receptive field of ResNet-18's last conv: 435 pixels.
  assert rows["layer4_1"].receptive_field == (435.0, 435.0)
  assert rows["layer1_0/conv1"].receptive_field == (19.0, 19.0)  # 7, +2*2 (pool), +2*4
  collapsed = s.collapsed(1)
  assert [r.path for r in collapsed][:3] == [(), ("conv1",), ("bn1",)]
  assert sum(r.macs for r in collapsed) == s.total_macs
  assert sum(r.params for r in collapsed) == s.total_params
  assert collapsed[3].params == 2 * 3 * 3 * 64 * 64 + 2 * 2 * 64  # layer1_0: 2 convs, 2 BNs
  md = s.to_markdown(depth=1)
  assert "| layer1_0 | BasicBlock | 1x56x56x64 | 73,984 |" in md and "1,814,073,344" in md


class Generic(nn.Module):
  """Depthwise, grouped, dilated, anisotropic and strided convs, pooling and dense layers."""

  @nn.compact
  def __call__(self, x, train=False):
    x = cnn.Conv(8, (3, 3), 2, padding=((1, 1), (1, 1)), name="stem")(x)
    x = cnn.Conv(8, (3, 3), padding=((1, 1), (1, 1)), feature_group_count=8, name="dw")(x)
    x = cnn.Conv(12, (3, 3), padding=((2, 2), (2, 2)), kernel_dilation=2,
                 feature_group_count=4, name="grouped_dilated")(x)
    x = cnn.Conv(6, (1, 7), padding=((0, 0), (3, 3)), name="wide")(x)
    x = ops.avg_pool(x, 3, 2, 1)
    x = nn.Dense(5, name="pointwise")(x)  # a dense on NHWC acts per pixel
    x = x.reshape(x.shape[0], -1)
    return nn.Dense(3, name="head")(x)


class TorchGeneric(torch.nn.Module):
  def __init__(self, spatial):
    super().__init__()
    c = torch.nn.Conv2d
    self.convs = torch.nn.Sequential(
        c(3, 8, 3, 2, 1), c(8, 8, 3, 1, 1, groups=8), c(8, 12, 3, 1, 2, dilation=2, groups=4),
        c(12, 6, (1, 7), 1, (0, 3)), torch.nn.AvgPool2d(3, 2, 1))
    self.pointwise = torch.nn.Linear(6, 5)
    self.head = torch.nn.Linear(5 * spatial * spatial, 3)

  def forward(self, x):
    x = self.pointwise(self.convs(x).permute(0, 2, 3, 1))
    return self.head(x.flatten(1))


def test_generic_model_macs_match_torch_flop_counter():
  s = summarize(Generic(), (20, 20, 3), batch_size=2)
  ref = TorchGeneric(5)
  with FlopCounterMode(display=False) as counter:
    ref(torch.zeros(2, 3, 20, 20))
  assert s.total_macs == counter.get_total_flops() // 2  # torch counts 2 flops per MAC
  assert s.total_params == sum(p.numel() for p in ref.parameters())


def _xla_macs(model, shape):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  compiled = jax.jit(functools.partial(model.apply, train=False)).lower(variables, x).compile()
  return compiled.cost_analysis()["flops"] / 2


def _check_against_xla(model, shape):
  """XLA counts 2 flops per MAC but skips taps on zero padding, and adds the element-wise ops
  (BN, ReLU, adds, pooling): between 1x and ~1.05x our padding-free MAC count."""
  ours = summarize(model, shape[1:], batch_size=shape[0], count_padding=False).total_macs
  ratio = _xla_macs(model, shape) / ours
  assert 1.0 <= ratio < 1.05, ratio
  return ours


@pytest.mark.parametrize("name,kw", [("resnet18", dict(small_stem=True)), ("resnet20", {}),
                                     ("resnext50_32x4d", {})])
def test_macs_match_xla_cost_analysis_small(name, kw):
  _check_against_xla(create(name, **kw), (1, 32, 32, 3))


def test_generic_model_macs_match_xla():
  _check_against_xla(Generic(), (2, 20, 20, 3))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"])
def test_macs_match_xla_cost_analysis_224(name):
  _check_against_xla(create(name), (1, 224, 224, 3))


class RFNet(nn.Module):
  """Strides, padding, dilation, a 1x7 kernel, pooling and a branch + add."""

  @nn.compact
  def __call__(self, x, train=False):
    x = cnn.Conv(2, (3, 3), 2, padding=((1, 1), (1, 1)), name="a")(x)
    x = ops.avg_pool(x, 3, 2, 1)
    y = cnn.Conv(2, (3, 3), padding=((2, 2), (2, 2)), kernel_dilation=2, name="b")(x)
    x = cnn.Conv(2, (1, 7), padding=((0, 0), (3, 3)), name="c")(x + y)
    return x[:, ::2, ::2, :]


def test_receptive_field_matches_gradient_support():
  """Brute force: with positive weights, d out[centre] / d input is non-zero exactly on the
  receptive field (avg-pool keeps every path; max-pool would not)."""
  model, size = RFNet(), 129
  x = jax.ShapeDtypeStruct((1, size, size, 1), jnp.float32)
  variables = jax.tree.map(lambda p: jnp.full(p.shape, 0.5), jax.eval_shape(
      model.init, jax.random.key(0), x))
  c = jax.eval_shape(model.apply, variables, x).shape[1] // 2
  grad = jax.jit(jax.grad(lambda x: model.apply(variables, x)[0, c, c, 0]))(
      jnp.zeros(x.shape))
  rows, cols = np.nonzero(np.asarray(grad[0, :, :, 0]))
  support = (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
  s = summarize(model, (size, size, 1))
  assert s.rows[0].receptive_field == tuple(float(v) for v in support)
  assert support == (23, 47)  # anisotropic: the 1x7 conv widens only the second dim


def test_lenet_summary():
  s = summarize("lenet5")  # LeCun et al. 1998 layer sizes; modern variant has 61,706 params
  assert s.total_params == 61_706
  assert s.total_macs == 28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 120 * 400 + 120 * 84 + 84 * 10


def test_bad_arguments():
  with pytest.raises(ValueError, match="model="):
    summarize("resnet_18")
  with pytest.raises(ValueError, match="input_shape"):
    summarize(Generic())
  with pytest.raises(ValueError, match="batch_size"):
    summarize("resnet20", batch_size=0)
