"""DenoisingAE: outputs and parameter counts against a torch restatement with copied weights
(both decoder modes), shapes eager and jitted at 28x28 and other sizes divisible by 4, the size
check, the decoder switch, ``conv_impl`` reaching every conv, a finite MSE gradient."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from cnnlab import models
from cnnlab import nn as cnn
from cnnlab.models import denoise_ae
from models import autoencoder_ref as ref

MODES = ("transpose", "resize")


def _x(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(0, 1, shape), jnp.float32)


def _count(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _torch_dae(mode, c=1, channels=(32, 64)):
  return torch.nn.Sequential(ref.encoder(c, channels),
                             ref.decoder(channels[-1], channels[::-1], c, mode))


@pytest.mark.parametrize("mode", MODES)
def test_parameter_count_matches_torch(mode):
  model = models.create("denoise_ae", decoder=mode)
  v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
  with torch.device("meta"):
    expected = ref.num_params(_torch_dae(mode))
  assert _count(v["params"]) == expected == {"transpose": 117_505, "resize": 74_497}[mode]


@pytest.mark.parametrize("mode", MODES)
def test_outputs_match_torch_with_copied_weights(mode):
  model = denoise_ae.DenoisingAE(channels=(4, 6), decoder=mode)
  x = _x((2, 12, 16, 2))
  v = ref.variables(model, x, seed=1)
  t = _torch_dae(mode, c=2, channels=(4, 6))
  ref.load_encoder(t[0], v["params"]["encoder"])
  ref.load_decoder(t[1], v["params"]["decoder_net"])
  with torch.no_grad():
    expected = ref.nhwc(t(ref.nchw(x)))
  np.testing.assert_allclose(model.apply(v, x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(28, 28, 1), (8, 12, 3)])
def test_output_size_equals_input_size_eager_and_jit(mode, shape):
  model = models.create("denoise_ae", decoder=mode, channels=(4, 8))
  x = _x((2, *shape))
  v = ref.variables(model, x, seed=0)
  eager = model.apply(v, x, train=True)
  jitted = jax.jit(lambda v, x: model.apply(v, x, train=False))(v, x)
  assert eager.shape == jitted.shape == x.shape
  np.testing.assert_allclose(eager, jitted, rtol=1e-5, atol=1e-6)


def test_rejects_bad_sizes_decoder_and_transpose_impl():
  model = denoise_ae.DenoisingAE(channels=(4, 8))
  with pytest.raises(ValueError, match="divisible by 4"):
    model.init(jax.random.key(0), jnp.zeros((1, 30, 28, 1)))
  with pytest.raises(ValueError, match=r"decoder='bilinear' is not one of"):
    denoise_ae.DenoisingAE(decoder="bilinear")
  with pytest.raises(ValueError, match=r"transpose_impl='im2col' is not one of"):
    jax.eval_shape(denoise_ae.DenoisingAE(transpose_impl="im2col").init, jax.random.key(0),
                   jnp.zeros((1, 8, 8, 1)))


@pytest.mark.parametrize("mode", MODES)
def test_conv_and_transpose_impls_reach_every_conv(mode):
  model = models.create("denoise_ae", decoder=mode, channels=(4, 8), conv_impl="im2col",
                        transpose_impl="zero_insert")
  x = _x((2, 8, 8, 1))
  impls = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, (cnn.Conv, cnn.ConvTranspose)):
      impls.append((type(context.module).__name__, context.module.impl))
    return next_fun(*args, **kwargs)

  with flax.linen.intercept_methods(record):
    v = ref.variables(model, x, seed=0)
  # 2 encoder convs, 2 upsamplings, the output conv
  ups = [("ConvTranspose", "zero_insert")] * 2 if mode == "transpose" else [("Conv", "im2col")] * 2
  assert sorted(impls) == sorted([("Conv", "im2col")] * 3 + ups)
  lax_model = models.create("denoise_ae", decoder=mode, channels=(4, 8))
  np.testing.assert_allclose(model.apply(v, x), lax_model.apply(v, x), rtol=1e-4, atol=1e-5)


def test_mse_gradient_is_finite_and_nonzero():
  model = models.create("denoise_ae", channels=(4, 8))
  clean = _x((2, 28, 28, 1))
  noisy = jnp.clip(clean + 0.3 * _x((2, 28, 28, 1), seed=1), 0, 1)
  v = ref.variables(model, noisy, seed=0)
  grads = jax.jit(jax.grad(
      lambda p: jnp.mean((model.apply({"params": p}, noisy, train=True) - clean) ** 2)))(
          v["params"])
  leaves = jax.tree.leaves(grads)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
  assert all(float(jnp.abs(g).max()) > 0 for g in leaves)
