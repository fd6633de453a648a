"""ConvVAE: outputs and parameter counts against a torch restatement with copied weights (both
decoder modes, ``z = mean`` at eval); the reparameterised sample (``'latent'`` rng, scale
``exp(logvar / 2)``); shapes eager and jitted, ``decode``; ``elbo_loss`` against numpy (the
Bernoulli cross-entropy from its formula, the KL in closed form and by Monte Carlo)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn as tnn

from cnnlab import models
from cnnlab.models import conv_vae
from models import autoencoder_ref as ref

MODES = ("transpose", "resize")
SMALL = dict(latent_dim=3, channels=(4, 6), image_shape=(8, 12, 2))


def _x(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(0, 1, shape), jnp.float32)


def _count(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


class TorchVAE(tnn.Module):
  """The eval path (``z = mean``); flattening in (h, w, c) order, as the Flax model's."""

  def __init__(self, mode, latent_dim=16, channels=(32, 64), image_shape=(28, 28, 1)):
    super().__init__()
    h, w, c = image_shape
    s = 2 ** len(channels)
    self.code = (h // s, w // s, channels[-1])
    n = int(np.prod(self.code))
    self.encoder = ref.encoder(c, channels)
    self.fc_mean, self.fc_logvar = tnn.Linear(n, latent_dim), tnn.Linear(n, latent_dim)
    self.fc_z = tnn.Linear(latent_dim, n)
    self.decoder = ref.decoder(channels[-1], channels[::-1], c, mode)

  def forward(self, x_nchw):
    h = self.encoder(x_nchw).permute(0, 2, 3, 1).flatten(1)
    mean, logvar = self.fc_mean(h), self.fc_logvar(h)
    code = torch.relu(self.fc_z(mean)).reshape(-1, *self.code).permute(0, 3, 1, 2)
    return self.decoder(code), mean, logvar


def test_registered_as_generative():
  assert models.get_spec("conv_vae").family == "generative"
  assert {"conv_vae", "denoise_ae"} <= set(models.list_models("generative"))


@pytest.mark.parametrize("mode", MODES)
def test_parameter_count_matches_torch(mode):
  model = models.create("conv_vae", decoder=mode)
  v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
  with torch.device("meta"):
    expected = ref.num_params(TorchVAE(mode))
  assert _count(v["params"]) == expected == {"transpose": 271_201, "resize": 228_193}[mode]


@pytest.mark.parametrize("mode", MODES)
def test_eval_outputs_match_torch_with_copied_weights(mode):
  model = conv_vae.ConvVAE(decoder=mode, **SMALL)
  x = _x((2, 8, 12, 2))
  v = ref.variables(model, x, seed=1)
  p = v["params"]
  t = TorchVAE(mode, **SMALL)
  ref.load_encoder(t.encoder, p["encoder"])
  ref.load_decoder(t.decoder, p["decoder_net"])
  for name in ("fc_mean", "fc_logvar", "fc_z"):
    ref.load_dense(getattr(t, name), p[name])
  with torch.no_grad():
    expected = t(ref.nchw(x))
  logits, mean, logvar = model.apply(v, x, train=False)
  np.testing.assert_allclose(logits, ref.nhwc(expected[0]), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(mean, expected[1].numpy(), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(logvar, expected[2].numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_shapes_eager_and_jit_and_decode(mode):
  model = models.create("conv_vae", decoder=mode, channels=(4, 8))
  x = _x((2, 28, 28, 1))
  v = ref.variables(model, x, seed=0)
  rngs = {"latent": jax.random.key(3)}
  eager = model.apply(v, x, train=True, rngs=rngs)
  jitted = jax.jit(lambda v, x: model.apply(v, x, train=True, rngs=rngs))(v, x)
  for out in (eager, jitted):
    assert [a.shape for a in out] == [(2, 28, 28, 1), (2, 16), (2, 16)]
  np.testing.assert_allclose(eager[0], jitted[0], rtol=1e-5, atol=1e-5)
  z = jax.random.normal(jax.random.key(4), (5, 16))
  samples = jax.nn.sigmoid(jax.jit(lambda v, z: model.apply(v, z, method="decode"))(v, z))
  assert samples.shape == (5, 28, 28, 1) and bool(jnp.all((samples >= 0) & (samples <= 1)))


def test_eval_is_deterministic_and_decodes_the_mean():
  model = conv_vae.ConvVAE(**SMALL)
  x = _x((3, 8, 12, 2))
  v = ref.variables(model, x, seed=0)
  logits, mean, _ = model.apply(v, x)
  again, _, _ = model.apply(v, x, train=False)
  np.testing.assert_array_equal(logits, again)
  np.testing.assert_allclose(logits, model.apply(v, mean, method="decode"), rtol=1e-6, atol=1e-6)


def test_train_samples_z_by_reparameterisation():
  """z = mean + exp(logvar/2) * eps: with logvar's bias set to 1.5 (so exp(logvar/2) differs from
  exp(logvar) and from 1), the recovered eps of 64 x 3 draws has mean ~0 and std ~1; decode(z)
  gives the logits; the same key the same logits, another key others."""
  model = conv_vae.ConvVAE(**SMALL)
  x = _x((64, 8, 12, 2))
  v = ref.variables(model, x, seed=0)
  v["params"]["fc_logvar"]["bias"] = jnp.full((3,), 1.5)
  apply = jax.jit(lambda key: model.apply(v, x, train=True, rngs={"latent": key},
                                          mutable="intermediates"))
  (logits, mean, logvar), inter = apply(jax.random.key(1))
  z = inter["intermediates"]["z"][0]
  eps = np.asarray((z - mean) / jnp.exp(0.5 * logvar))
  assert abs(eps.mean()) < 4 / np.sqrt(eps.size) and abs(eps.std() - 1) < 0.15
  # logvar > 0.5 everywhere: a wrong scale (exp(logvar), 1) would give std(eps) <= 0.78
  assert float(logvar.min()) > 0.5
  np.testing.assert_allclose(logits, model.apply(v, z, method="decode"), rtol=1e-5, atol=1e-5)
  (same, _, _), _ = apply(jax.random.key(1))
  (other, _, _), _ = apply(jax.random.key(2))
  np.testing.assert_array_equal(logits, same)
  assert float(jnp.abs(logits - other).max()) > 1e-3


def _bce_np(logits, x):
  p = 1.0 / (1.0 + np.exp(-logits))
  return -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))


def _kl_np(mean, logvar):
  var = np.exp(logvar)
  return 0.5 * np.sum(var + mean ** 2 - 1 - logvar, axis=-1)


def test_elbo_loss_matches_numpy_and_monte_carlo_kl():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (3, 5, 4, 1))
  x = rng.uniform(0, 1, (3, 5, 4, 1))
  mean, logvar = rng.normal(0, 1, (3, 4)), rng.normal(0, 0.7, (3, 4))
  loss = conv_vae.elbo_loss(*(jnp.asarray(a, jnp.float32) for a in (logits, x, mean, logvar)))
  assert loss.shape == (3,)
  np.testing.assert_allclose(loss, _bce_np(logits, x) + _kl_np(mean, logvar), rtol=1e-5)
  # KL(q || p) = E_q[log q(z) - log p(z)], 200k draws per example (the 2*pi terms cancel).
  std = np.exp(0.5 * logvar)
  z = mean + std * rng.standard_normal((200_000, *mean.shape))
  log_ratio = np.sum(-0.5 * logvar - (z - mean) ** 2 / (2 * std ** 2) + z ** 2 / 2, axis=-1)
  mc, se = log_ratio.mean(0), log_ratio.std(0) / np.sqrt(len(z))
  assert np.all(np.abs(mc - _kl_np(mean, logvar)) < 5 * se), (mc, _kl_np(mean, logvar), se)


def test_kl_is_zero_at_the_prior():
  rng = np.random.default_rng(1)
  logits, x = rng.normal(0, 2, (2, 4, 4, 1)), rng.uniform(0, 1, (2, 4, 4, 1))
  zeros = jnp.zeros((2, 16))
  np.testing.assert_array_equal(conv_vae.kl_divergence(zeros, zeros), np.zeros(2))
  loss = conv_vae.elbo_loss(jnp.asarray(logits, jnp.float32), jnp.asarray(x, jnp.float32),
                            zeros, zeros)
  np.testing.assert_allclose(loss, _bce_np(logits, x), rtol=1e-5)


def test_elbo_gradient_is_finite():
  model = models.create("conv_vae", channels=(4, 8), latent_dim=4)
  x = _x((2, 28, 28, 1))
  v = ref.variables(model, x, seed=0)

  def loss(p):
    out = model.apply({"params": p}, x, train=True, rngs={"latent": jax.random.key(1)})
    return jnp.mean(conv_vae.elbo_loss(out[0], x, *out[1:]))

  grads = jax.jit(jax.grad(loss))(v["params"])
  assert all(bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).max()) > 0
             for g in jax.tree.leaves(grads))


def test_rejects_bad_options_and_inputs():
  with pytest.raises(ValueError, match=r"decoder='up' is not one of"):
    conv_vae.ConvVAE(decoder="up")
  with pytest.raises(ValueError, match="divisible by 4"):
    conv_vae.ConvVAE(image_shape=(30, 28, 1))
  with pytest.raises(ValueError, match=r"image_shape=\(28, 28, 1\), got shape \(1, 32, 32, 1\)"):
    conv_vae.ConvVAE().init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
