"""cnnlab.arith vs the shapes lax/torch produce, gradient-based receptive fields and published
receptive-field sizes."""

import jax
import jax.numpy as jnp
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings, strategies as st
from jax import lax

from cnnlab import arith

ints = st.integers


@settings(max_examples=25, deadline=None)
@given(ints(1, 12), ints(1, 4), ints(1, 3), ints(0, 3), ints(0, 3), ints(1, 3))
def test_conv_output_size_matches_lax_and_torch(i, k, s, lo, hi, d):
  assume(i + lo + hi >= d * (k - 1) + 1)
  lax_shape = jax.eval_shape(
      lambda x, w: lax.conv_general_dilated(x, w, (s,), ((lo, hi),), rhs_dilation=(d,),
                                            dimension_numbers=("NWC", "WIO", "NWC")),
      jax.ShapeDtypeStruct((1, i, 1), jnp.float32), jax.ShapeDtypeStruct((k, 1, 1), jnp.float32))
  assert arith.conv_output_size(i, k, s, (lo, hi), d) == lax_shape.shape[1]
  if i + 2 * lo >= d * (k - 1) + 1:
    torch_len = F.conv1d(torch.zeros(1, 1, i), torch.zeros(1, 1, k), stride=s, padding=lo,
                         dilation=d).shape[-1]
    assert arith.conv_output_size(i, k, s, lo, d) == torch_len


@settings(max_examples=25, deadline=None)
@given(ints(1, 12), ints(1, 4), ints(1, 3), ints(0, 2), ints(1, 3), st.booleans())
def test_pool_output_size_matches_torch(i, k, s, p, d, ceil_mode):
  assume(p <= k // 2 and i >= d and i + 2 * p >= d * (k - 1) + 1)
  out = F.max_pool1d(torch.zeros(1, 1, i), k, s, p, dilation=d, ceil_mode=ceil_mode).shape[-1]
  assert arith.pool_output_size(i, k, s, p, d, ceil_mode) == out
  if d == 1:
    out = F.avg_pool1d(torch.zeros(1, 1, i), k, s, p, ceil_mode=ceil_mode).shape[-1]
    assert arith.pool_output_size(i, k, s, p, 1, ceil_mode) == out


@settings(max_examples=25, deadline=None)
@given(ints(1, 8), ints(1, 4), ints(1, 3), ints(0, 2), ints(1, 3), ints(0, 2))
def test_conv_transpose_output_size_matches_torch(i, k, s, p, d, op):
  assume(op < max(s, d))
  expected = (i - 1) * s - 2 * p + d * (k - 1) + op + 1
  assume(expected >= 1)
  out = F.conv_transpose1d(torch.zeros(1, 1, i), torch.zeros(1, 1, k), stride=s, padding=p,
                           output_padding=op, dilation=d).shape[-1]
  assert arith.conv_transpose_output_size(i, k, s, p, d, op) == out


layer = st.tuples(ints(1, 4), ints(1, 3), st.tuples(ints(0, 2), ints(0, 2)), ints(1, 3))


@settings(max_examples=15, deadline=None)
@given(st.lists(layer, min_size=1, max_size=4), ints(0, 40), st.data())
def test_analytic_receptive_field_equals_gradient_based(layers, extra, data):
  """Random stacks with stride, dilation and asymmetric padding: for an output unit whose field
  lies inside the input, the inputs where its gradient is nonzero span exactly its analytic
  field."""
  need = 1
  for k, s, (lo, hi), d in reversed(layers):  # smallest input giving >= 1 output
    need = max((need - 1) * s + d * (k - 1) + 1 - lo - hi, 1)
  size = need + extra
  n = size
  for k, s, p, d in layers:
    n = arith.conv_output_size(n, k, s, p, d)
  bounds = [arith.receptive_field_bounds(layers, u) for u in range(n)]
  inside = [u for u, (lo, hi) in enumerate(bounds) if lo >= 0 and hi < size]
  assume(inside)
  unit = data.draw(st.sampled_from(inside))
  assert arith.empirical_receptive_field(layers, size, unit) == bounds[unit]
  assert bounds[unit][1] - bounds[unit][0] + 1 == arith.receptive_fields(layers)[-1].size
  # Output 0 may see padding: its nonzero gradient lies within its field clipped to the input
  # (a dilated field has holes, so the clipped ends need not be hit).
  got, (lo, hi) = arith.empirical_receptive_field(layers, size, 0), bounds[0]
  assert got is None or max(lo, 0) <= got[0] <= got[1] <= min(hi, size - 1)


def test_published_receptive_fields():
  """Araujo, Norris & Sim, "Computing Receptive Fields of CNNs" (Distill 2019): AlexNet 195,
  VGG-16 212, ResNet-50 483 (original ResNet: stride on the first 1x1 of a block)."""
  alexnet = [(11, 4, 2, 1), (3, 2, 0, 1), (5, 1, 2, 1), (3, 2, 0, 1), (3, 1, 1, 1),
             (3, 1, 1, 1), (3, 1, 1, 1), (3, 2, 0, 1)]
  conv3, pool = (3, 1, 1, 1), (2, 2, 0, 1)
  vgg16 = [conv3] * 2 + [pool] + [conv3] * 2 + [pool] + ([conv3] * 3 + [pool]) * 3
  resnet50 = [(7, 2, 3, 1), (3, 2, 1, 1)]
  for blocks, stride in ((3, 1), (4, 2), (6, 2), (3, 2)):
    for b in range(blocks):
      resnet50 += [(1, stride if b == 0 else 1, 0, 1), conv3, (1, 1, 0, 1)]
  assert arith.receptive_fields(alexnet)[-1].size == 195
  assert arith.receptive_fields(vgg16)[-1] == arith.Field(212, 32, 15.5)
  assert arith.receptive_fields(resnet50)[-1].size == 483


BAD = [
    ("size", lambda: arith.conv_output_size(0, 3)),
    ("kernel", lambda: arith.conv_output_size(5, 0)),
    ("stride", lambda: arith.conv_output_size(5, 3, stride=0)),
    ("dilation", lambda: arith.conv_output_size(5, 3, dilation=1.5)),
    ("padding", lambda: arith.conv_output_size(5, 3, padding=-1)),
    ("padding", lambda: arith.conv_output_size(5, 3, padding=(1, 2, 3))),
    ("larger than the padded input", lambda: arith.conv_output_size(2, 3)),
    ("padding", lambda: arith.pool_output_size(5, 3, padding=2)),
    ("padding", lambda: arith.pool_output_size(5, 3, padding=(1, 0))),
    ("output_padding", lambda: arith.conv_transpose_output_size(5, 3, stride=2,
                                                                output_padding=2)),
    ("padding", lambda: arith.conv_transpose_output_size(1, 1, padding=2)),
    ("stride", lambda: arith.receptive_fields([(3, 0, 0, 1)])),
    ("unit", lambda: arith.empirical_receptive_field([(3, 1, 0, 1)], 5, unit=3)),
]


@pytest.mark.parametrize("match,call", BAD, ids=[f"{m}-{n}" for n, (m, _) in enumerate(BAD)])
def test_invalid_arguments_raise_value_error(match, call):
  with pytest.raises(ValueError, match=match):
    call()
