"""``ops.conv_transpose`` against torch, Flax and the vjp of ``lax`` conv (the module:
``tests/nn/test_conv_transpose.py``)."""

import flax.linen
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from jax import lax

from cnnlab import ops
from cnnlab.ops.transposed_conv import IMPLS

TORCH_FNS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TOL = dict(rtol=1e-4, atol=1e-4)


@st.composite
def cases(draw):
  """Small random conv_transpose arguments valid for torch (output_padding < max(s, d))."""
  nd = draw(st.integers(1, 3))
  groups = draw(st.integers(1, 2))
  window = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
  out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
  padding = tuple(draw(st.integers(0, d * (k - 1))) for k, d in zip(window, dilation))
  spatial = tuple(draw(st.integers(1, 4 if nd < 3 else 3)) for _ in range(nd))
  assume(all((i - 1) * s - 2 * p + d * (k - 1) + op >= 0 for i, s, p, d, k, op in
             zip(spatial, stride, padding, dilation, window, out_pad)))
  return dict(nd=nd, groups=groups, window=window, stride=stride, dilation=dilation,
              output_padding=out_pad, padding=padding, spatial=spatial,
              c_in=groups * draw(st.integers(1, 2)), c_out_g=draw(st.integers(1, 2)),
              seed=draw(st.integers(0, 2**16)), jit=draw(st.booleans()))


def _torch_ref(x, w, c):
  """Forward and grads (x, w) of ``sum(y * g)`` via torch, returned channels-last."""
  # torch.tensor keeps a numpy view's strides; a non-contiguous weight breaks torch's
  # conv_transpose backward ("grad_weight needs to be contiguous", e.g. C_in = 1).
  xt = torch.tensor(np.ascontiguousarray(np.moveaxis(x, -1, 1)), requires_grad=True)
  wt = torch.tensor(np.ascontiguousarray(np.moveaxis(w, (-2, -1), (0, 1))), requires_grad=True)
  y = TORCH_FNS[c["nd"]](xt, wt, stride=c["stride"], padding=c["padding"],
                         output_padding=c["output_padding"], dilation=c["dilation"],
                         groups=c["groups"])
  g = torch.tensor(np.random.default_rng(c["seed"] + 1).standard_normal(y.shape, np.float32))
  gx, gw = torch.autograd.grad(y, (xt, wt), g)
  return (np.moveaxis(y.detach().numpy(), 1, -1), np.moveaxis(g.numpy(), 1, -1),
          np.moveaxis(gx.numpy(), 1, -1), np.moveaxis(gw.numpy(), (0, 1), (-2, -1)))


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=8, deadline=None)
@given(c=cases())
def test_matches_torch_forward_and_backward(impl, c):
  rng = np.random.default_rng(c["seed"])
  x = rng.standard_normal((2, *c["spatial"], c["c_in"]), np.float32)
  w = rng.standard_normal((*c["window"], c["c_in"], c["c_out_g"]), np.float32)
  y_ref, g, gx_ref, gw_ref = _torch_ref(x, w, c)

  def loss(x, w):
    y = ops.conv_transpose(x, w, stride=c["stride"], padding=c["padding"],
                           output_padding=c["output_padding"], dilation=c["dilation"],
                           groups=c["groups"], impl=impl)
    return jnp.sum(y * g), y

  fn = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)
  (_, y), (gx, gw) = (jax.jit(fn) if c["jit"] else fn)(x, w)
  np.testing.assert_allclose(y, y_ref, **TOL)
  np.testing.assert_allclose(gx, gx_ref, **TOL)
  np.testing.assert_allclose(gw, gw_ref, **TOL)


@pytest.mark.parametrize("nd,stride,padding,dilation,groups", [
    (1, 2, 1, 1, 1), (2, (2, 3), (1, 0), (1, 2), 2), (3, 2, 1, 2, 1), (2, 1, 2, 1, 3)])
def test_equals_vjp_of_lax_conv(nd, stride, padding, dilation, groups):
  """conv_transpose(g, swapaxes(w)) is the input-vjp of a forward conv with kernel w."""
  rng = np.random.default_rng(nd)
  x = rng.standard_normal((2, *(7,) * nd, 3 * groups), np.float32)
  w = rng.standard_normal((*(3,) * nd, 3, 2 * groups), np.float32)
  st_, pd, dl = (v if isinstance(v, tuple) else (v,) * nd for v in (stride, padding, dilation))
  sp = "DHW"[-nd:]

  def fwd(x):
    return lax.conv_general_dilated(x, w, st_, [(p, p) for p in pd], rhs_dilation=dl,
                                    dimension_numbers=(f"N{sp}C", f"{sp}IO", f"N{sp}C"),
                                    feature_group_count=groups)

  y, vjp = jax.vjp(fwd, x)
  g = rng.standard_normal(y.shape, np.float32)
  (gx_ref,) = vjp(g)
  out_pad = tuple((i + 2 * p - d * 2 - 1) % s for i, p, d, s in zip((7,) * nd, pd, dl, st_))
  for impl in IMPLS:
    gx = ops.conv_transpose(g, jnp.swapaxes(w, -1, -2), stride=stride, padding=padding,
                            output_padding=out_pad, dilation=dilation, groups=groups, impl=impl)
    np.testing.assert_allclose(gx, gx_ref, **TOL)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("window,stride,dilation", [((4,), 3, 1), ((4, 3), (2, 1), (1, 2)),
                                                     ((2, 2, 3), 2, 1)])
def test_string_padding_matches_flax(padding, window, stride, dilation):
  nd = len(window)
  rng = np.random.default_rng(len(window))
  x = rng.standard_normal((2, *(5,) * nd, 3), np.float32)
  layer = flax.linen.ConvTranspose(4, window, strides=(stride,) * nd if isinstance(stride, int)
                                   else stride, padding=padding,
                                   kernel_dilation=(dilation,) * nd if isinstance(dilation, int)
                                   else dilation, use_bias=False)
  params = layer.init(jax.random.key(0), x)
  ref = layer.apply(params, x)
  kernel = params["params"]["kernel"]
  for impl in IMPLS:
    y = ops.conv_transpose(x, jnp.flip(kernel, tuple(range(nd))), stride=stride, padding=padding,
                           dilation=dilation, impl=impl)
    np.testing.assert_allclose(y, ref, **TOL)


X2, W2 = (1, 4, 4, 2), (3, 3, 2, 2)


@pytest.mark.parametrize("x_shape,w_shape,kwargs,match", [
    (X2, W2, dict(stride=2, output_padding=2), "output_padding"),
    (X2, W2, dict(stride=1, dilation=1, output_padding=1), "output_padding"),
    (X2, W2, dict(output_padding=-1), "output_padding"),
    (X2, W2, dict(stride=2, output_padding=(1, 1, 1)), "output_padding"),
    (X2, W2, dict(stride=2, padding="SAME", output_padding=1), "output_padding"),
    (X2, W2, dict(padding="CIRCULAR"), "padding"),
    (X2, W2, dict(padding=-1), "padding"),
    (X2, W2, dict(padding=(1, 1, 1)), "padding"),
    (X2, W2, dict(padding=5), "padding"),
    (X2, W2, dict(stride=0), "stride"),
    (X2, W2, dict(dilation=(1,)), "dilation"),
    (X2, W2, dict(groups=3), "groups"),
    (X2, (3, 3, 3, 2), {}, "C_in"),
    ((1, 4, 2), W2, {}, "rank"),
    ((1, 4, 4, 4, 4, 2), (3, 3, 3, 3, 2, 2), {}, "1, 2 or 3"),
    (X2, W2, dict(impl="direct"), "impl"),
])
def test_invalid_arguments_raise(x_shape, w_shape, kwargs, match):
  with pytest.raises(ValueError, match=match):
    ops.conv_transpose(jnp.zeros(x_shape), jnp.zeros(w_shape), **kwargs)
