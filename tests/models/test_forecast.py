"""Dilated causal forecaster: causality for every conv impl that serves causal dilated 1D convs,
analytic receptive field == the gradient's, heads, conv_impl and shapes; seasonal naive against
a loop over its textbook definition."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import models
from cnnlab import nn as cnn
from cnnlab.models import forecast
from cnnlab.ops import conv_registry
from models.causal import grad_at

CAUSAL_IMPLS = conv_registry.impls_supporting((1, 16, 4), (2, 4, 4), padding="CAUSAL",
                                              dilation=4)


def test_seasonal_naive_against_definition():
  y = np.random.default_rng(0).standard_normal((3, 30)).astype(np.float32)
  for season, horizon in ((12, 30), (7, 3), (1, 4), (30, 5)):
    ref = np.zeros((3, horizon), np.float32)
    for h in range(1, horizon + 1):  # y_hat[T + h] = y[T + h - m * (floor((h - 1) / m) + 1)]
      k = (h - 1) // season + 1
      ref[:, h - 1] = y[:, 30 - 1 + h - season * k]
    np.testing.assert_array_equal(forecast.seasonal_naive(y, horizon, season), ref)
  with pytest.raises(ValueError, match="need 1 <= season <= history length 30"):
    forecast.seasonal_naive(y, 1, 31)


@pytest.mark.parametrize("impl", CAUSAL_IMPLS)
def test_causal_for_every_impl(impl):
  model = forecast.DilatedForecaster(horizon=2, channels=4, num_layers=3, head="per_timestep",
                                     conv_impl=impl)
  x = jnp.abs(jax.random.normal(jax.random.key(0), (1, 16, 2)))
  t, r = 11, model.receptive_field
  assert r == 8
  g = np.abs(grad_at(model, x, t)).max(-1)
  outside = np.concatenate([g[t + 1:], g[:t - r + 1]])
  if impl == "fft":  # the FFT product mixes every position: round-off leaks, ~1e-8 relative
    assert outside.max() <= 1e-6 * g.max()
  else:
    assert outside.max() == 0.0  # nothing after t, nothing before the receptive field
  assert np.all(g[t - r + 1:t + 1] > 1e-6 * g.max())


@pytest.mark.parametrize("layers", [1, 4, 7])
def test_receptive_field_analytic_equals_gradient(layers):
  r = forecast.receptive_field(layers)
  assert r == 2 ** layers
  model = forecast.DilatedForecaster(channels=3, num_layers=layers, head="per_timestep")
  length = r + 9
  x = jnp.abs(jax.random.normal(jax.random.key(0), (1, length, 1))) + 0.1
  nz = np.flatnonzero(np.abs(grad_at(model, x, length - 1))[:, 0])
  assert (nz[0], nz[-1]) == (length - r, length - 1)


def test_heads_conv_impl_and_shapes():
  impls = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, cnn.Conv) and context.method_name == "__call__":
      impls.append(context.module.impl)
    return next_fun(*args, **kwargs)

  model = models.create("dilated_forecaster", horizon=3, conv_impl="im2col")
  x = jax.ShapeDtypeStruct((8, *models.get_spec("dilated_forecaster").input_shape), jnp.float32)
  with flax.linen.intercept_methods(record):
    v = jax.eval_shape(model.init, jax.random.key(0), x)
  assert impls == ["im2col"] * 7
  assert jax.eval_shape(model.apply, v, x).shape == (8, 3)
  every = model.clone(head="per_timestep", conv_impl="lax")
  assert jax.eval_shape(every.apply, v, x).shape == (8, 64, 3)
  xs = jax.random.normal(jax.random.key(1), (2, 20, 1))
  vs = jax.jit(model.init)(jax.random.key(2), xs)
  np.testing.assert_allclose(jax.jit(model.apply)(vs, xs), every.apply(vs, xs)[:, -1],
                             rtol=1e-5, atol=1e-6)
