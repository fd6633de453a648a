"""WaveNet: mu-law against the G.711 formula in numpy, causality for every conv impl that
serves causal dilated 1D convs, the analytic receptive field against the gradient's (one 1..512
cycle: the paper's 1,024 samples), fast incremental generation against the full forward,
greedy sampling against the full forward's argmax, shapes of the big configs abstractly."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import models
from cnnlab import nn as cnn
from cnnlab.models import wavenet
from cnnlab.ops import conv_registry

TINY = dict(residual_channels=4, skip_channels=6, quantization_levels=8)
CAUSAL_IMPLS = conv_registry.impls_supporting((1, 16, 4), (2, 4, 8), padding="CAUSAL",
                                              dilation=4)


def test_mu_law_against_numpy_g711():
  x = np.concatenate([np.linspace(-1, 1, 1001), [0.0, -1.0, 1.0, 1e-4, -1e-4]])
  mu = 255
  f = np.sign(x) * np.log(1 + mu * np.abs(x)) / np.log(1 + mu)
  ref = np.floor((f + 1) / 2 * mu + 0.5).astype(np.int64)
  codes = np.asarray(wavenet.mu_law_encode(jnp.asarray(x, jnp.float32)))
  np.testing.assert_array_equal(codes, ref)
  assert codes.min() == 0 and codes.max() == 255 and codes[1001] == 128
  # decoding inverts the companding: back in the companded domain within half a level
  back = np.asarray(wavenet.mu_law_decode(codes))
  fb = np.sign(back) * np.log(1 + mu * np.abs(back)) / np.log(1 + mu)
  assert np.abs(fb - f).max() <= 1 / mu + 1e-6
  np.testing.assert_allclose(wavenet.mu_law_decode(jnp.array([0, 255])), [-1.0, 1.0], atol=1e-6)


def _generative(impl="lax", **kw):
  return wavenet.WaveNet(**{**TINY, "layers_per_cycle": 3, "num_cycles": 2, **kw},
                         conv_impl=impl)


def random_variables(model, *args, seed=0, **kwargs):
  """Variables from numpy (no init to compile): kernels N(0, 1/fan_in), the rest N(0, 0.3^2)."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(model.init, jax.random.key(0), *args, **kwargs)
  return jax.tree_util.tree_map_with_path(
      lambda path, a: jnp.asarray(rng.standard_normal(a.shape) * (
          np.prod(a.shape[:-1]) ** -0.5 if path[-1].key == "kernel" else 0.3), jnp.float32),
      shapes)


def _onehot_grad(model, x, t):
  """d(sum of logits at t) / d(one-hot input): (L, Q)."""
  v = random_variables(model, x[..., 0].astype(jnp.int32))
  f = lambda x: model.apply(v, x, method=model.from_one_hot)[0, t].sum()  # noqa: E731
  return np.asarray(jax.jit(jax.grad(f))(x))[0]


@pytest.mark.parametrize("impl", CAUSAL_IMPLS)
def test_causal_for_every_impl(impl):
  model = _generative(impl)
  x = jax.random.uniform(jax.random.key(0), (1, 24, TINY["quantization_levels"]))
  t = 15
  g = _onehot_grad(model, x, t)
  r = model.receptive_field  # 1 + 2 * (1 + 2 + 4) = 15: inputs 1..15
  assert r == 15
  outside = np.abs(np.concatenate([g[t + 1:], g[:t - r + 1]])).max()
  if impl == "fft":  # the FFT product mixes every position: round-off leaks, ~1e-8 relative
    assert outside <= 1e-6 * np.abs(g).max()
  else:
    assert outside == 0.0  # nothing after t, nothing before the receptive field
  assert np.all(np.abs(g[t - r + 1:t + 1]).max(-1) > 1e-6 * np.abs(g).max())


@pytest.mark.parametrize("kernel_size,layers,cycles,expected",
                         [(2, 10, 1, 1024), (3, 3, 2, 29)])
def test_receptive_field_analytic_equals_gradient(kernel_size, layers, cycles, expected):
  assert wavenet.receptive_field(kernel_size, layers, cycles) == expected
  model = wavenet.WaveNet(residual_channels=2, skip_channels=8, quantization_levels=4,
                          kernel_size=kernel_size, layers_per_cycle=layers, num_cycles=cycles)
  length, t = expected + 40, expected + 20
  x = jax.random.uniform(jax.random.key(0), (1, length, 4))
  g = np.abs(_onehot_grad(model, x, t)).max(-1)
  nz = np.flatnonzero(g)
  assert (nz[0], nz[-1]) == (t - expected + 1, t)
  assert model.receptive_field == expected


@pytest.mark.parametrize("impl,kernel_size,conditions", [("lax", 2, 0), ("im2col", 2, 3),
                                                         ("shift", 3, 0)])
def test_incremental_equals_full_forward(impl, kernel_size, conditions):
  model = _generative(impl, kernel_size=kernel_size, num_conditions=conditions)
  codes = jax.random.randint(jax.random.key(0), (2, 40), 0, TINY["quantization_levels"])
  cond = jnp.array([0, 2]) if conditions else None
  v = random_variables(model, codes, condition=cond)
  full = jax.jit(model.apply)(v, codes, condition=cond)
  assert full.shape == (2, 40, TINY["quantization_levels"])
  np.testing.assert_allclose(wavenet.incremental_logits(model, v, codes, cond), full,
                             atol=1e-5, rtol=0)
  # each prefix alone: the full forward on codes[:, :n] gives the same first n logits
  np.testing.assert_allclose(jax.jit(model.apply)(v, codes[:, :17], condition=cond), full[:, :17],
                             atol=1e-5, rtol=0)


def test_greedy_sampling_is_argmax_of_full_forward():
  model = _generative(num_conditions=2)
  cond = jnp.array([1, 0])
  prime = jnp.array([[4, 1, 7], [0, 2, 3]])
  v = random_variables(model, prime, condition=cond)
  codes = wavenet.sample(model, v, jax.random.key(2), prime, 30, cond, temperature=0.0)
  assert codes.shape == (2, 33) and codes.dtype == jnp.int32
  np.testing.assert_array_equal(codes[:, :3], prime)
  logits = model.apply(v, codes, condition=cond)
  np.testing.assert_array_equal(jnp.argmax(logits[:, 2:-1], -1), codes[:, 3:])
  drawn = wavenet.sample(model, v, jax.random.key(3), prime[:, :1], 50, cond)
  assert drawn.shape == (2, 51) and 0 <= int(drawn.min()) and int(drawn.max()) < 8


def test_conditioning_changes_logits_and_is_checked():
  model = _generative(num_conditions=2)
  codes = jnp.zeros((2, 8), jnp.int32)
  v = random_variables(model, codes, condition=jnp.array([0, 1]))
  a = model.apply(v, codes, condition=jnp.array([0, 0]))
  b = model.apply(v, codes, condition=jnp.array([0, 1]))
  np.testing.assert_array_equal(a[0], b[0])
  assert not np.allclose(a[1], b[1])
  with pytest.raises(ValueError, match=r"num_conditions=2 needs condition ids of shape \(2,\)"):
    model.apply(v, codes)
  with pytest.raises(ValueError, match="integer mu-law codes"):
    model.apply(v, codes.astype(jnp.float32), condition=jnp.array([0, 1]))


# convs: input, 3 per gated layer (no residual in the last), out1 + out2 / head_conv
@pytest.mark.parametrize("name,shape,dtype,out,n_convs", [
    ("wavenet", (2, 16000), jnp.int32, (2, 16000, 256), 1 + 89 + 2),
    ("wavenet_classifier", (2, 8000, 1), jnp.float32, (2, 10), 1 + 89 + 1),
])
def test_big_configs_abstract_and_conv_impl(name, shape, dtype, out, n_convs):
  model = models.create(name, conv_impl="im2col", num_cycles=3)
  impls = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, cnn.Conv) and context.method_name == "__call__":
      impls.append(context.module.impl)
    return next_fun(*args, **kwargs)

  x = jax.ShapeDtypeStruct(shape, dtype)
  with flax.linen.intercept_methods(record):
    v = jax.eval_shape(model.init, jax.random.key(0), x)
  assert set(impls) == {"im2col"} and len(impls) == n_convs
  assert jax.eval_shape(model.apply, v, x).shape == out
  assert model.receptive_field == 1 + 3 * 1023


def test_classifier_small_jitted_forward():
  model = models.create("wavenet_classifier", num_classes=5, residual_channels=4,
                        skip_channels=4, layers_per_cycle=4, dropout_rate=0.5)
  x = jax.random.normal(jax.random.key(0), (2, 64, 1))
  v = random_variables(model, x)
  logits = jax.jit(lambda v, x: model.apply(v, x, train=True,
                                            rngs={"dropout": jax.random.key(2)}))(v, x)
  assert logits.shape == (2, 5) and bool(jnp.all(jnp.isfinite(logits)))
