"""``ops.conv`` against ``torch.nn.functional.conv{1,2,3}d``, forward and backward.

Torch reference: NC* layout, weight ``(C_out, C_in/groups, *window)``; symmetric ``padding=p`` or
``'same'`` (stride 1) passed to ``F.conv*d``; asymmetric padding and the non-zero padding modes
via ``F.pad`` first, which is what ``nn.Conv*d(padding_mode=...)`` does.
"""

import functools

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab import ops
from cnnlab.ops.conv_registry import impls_supporting

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
IMPLS = ("lax", "fenced", "im2col", "shift", "fft", "matmul", "matmul_sparse", "rows", "cols",
         "winograd", "winograd_f4")
TORCH_MODE = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def torch_conv(x, w, ct, *, stride, padding, dilation, groups, padding_mode):
  """Forward and grads w.r.t. x and w, channels-last numpy in and out, computed by torch in
  float64: torch 2.13's float32 CPU path gave a wrong weight gradient in about a third of the
  calls of one drawn case (2x4x4x2 input padded by (2, 2), (1, 1), a 1x1 kernel, stride 2;
  against a numpy sum), and corrupted the heap once with one thread; its float64 path agreed
  every time (0 of 120 calls wrong, 2026-12-07)."""
  nd = x.ndim - 2
  x_t = torch.tensor(np.moveaxis(x, -1, 1), dtype=torch.float64, requires_grad=True)
  w_t = torch.tensor(np.moveaxis(w, (-1, -2), (0, 1)).copy(), dtype=torch.float64,
                     requires_grad=True)
  inp, pad_arg = x_t, 0
  if padding == "SAME":
    pad_arg = "same"
  elif isinstance(padding, int) and padding_mode == "zeros":
    pad_arg = padding
  else:
    pairs = [(padding, padding)] * nd if isinstance(padding, int) else padding
    flat = [p for lo_hi in reversed(pairs) for p in lo_hi]  # F.pad: last dim first
    inp = F.pad(x_t, flat, mode=TORCH_MODE.get(padding_mode, "constant"))
  y = TORCH_CONV[nd](inp, w_t, stride=stride, padding=pad_arg, dilation=dilation, groups=groups)
  y.backward(torch.tensor(np.moveaxis(ct, -1, 1), dtype=torch.float64))
  return (np.moveaxis(y.detach().numpy(), 1, -1), np.moveaxis(x_t.grad.numpy(), 1, -1),
          np.moveaxis(w_t.grad.numpy(), (0, 1), (-1, -2)))


@st.composite
def torch_cases(draw, nd):
  groups = draw(st.sampled_from((1, 2, 3)))
  c_in, c_out = (groups * draw(st.integers(1, 2)) for _ in range(2))
  ints = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(nd))
  window, dilation = ints(1, 3), ints(1, 2)
  padding_mode = draw(st.sampled_from(("zeros", "reflect", "replicate", "circular")))
  stride = ints(1, 2)
  spatial = tuple(d * (k - 1) + 1 + draw(st.integers(2, 4)) for k, d in zip(window, dilation))
  # torch's padding='same' needs stride 1; reflect needs pad < size (spatial >= 3 > pad).
  padding = draw(st.one_of(
      st.integers(0, 2),
      st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * nd),
      *([st.just("SAME")] if stride == (1,) * nd and padding_mode == "zeros" else [])))
  kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
            padding_mode=padding_mode)
  x_shape = (draw(st.integers(1, 2)), *spatial, c_in)
  w_shape = (*window, c_in // groups, c_out)
  impl = draw(st.sampled_from([i for i in impls_supporting(x_shape, w_shape, **kw)
                               if i in IMPLS]))
  return x_shape, w_shape, kw, impl, draw(st.integers(0, 2**31 - 1))


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's perf note, not an error
@pytest.mark.parametrize("nd", [1, 2, 3])
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_conv_matches_torch_forward_and_backward(nd, data):
  x_shape, w_shape, kw, impl, seed = data.draw(torch_cases(nd))
  rng = np.random.default_rng(seed)
  x, w = (rng.standard_normal(s).astype(np.float32) for s in (x_shape, w_shape))
  fn = functools.partial(ops.conv, impl=impl, **kw)
  y, vjp = jax.vjp(jax.jit(fn), x, w)
  ct = rng.standard_normal(y.shape).astype(np.float32)
  got = (y, *vjp(ct))
  want = torch_conv(x, w, ct, **kw)
  for g, r in zip(got, want):
    assert g.shape == r.shape
    np.testing.assert_allclose(np.asarray(g), r, rtol=1e-4, atol=1e-4)
