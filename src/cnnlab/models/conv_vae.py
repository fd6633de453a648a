"""Convolutional variational autoencoder (Kingma & Welling 2014, "Auto-encoding variational
Bayes"; Bernoulli decoder over pixels in [0, 1], Gaussian encoder, standard-normal prior).

``ConvVAE``: ``x (N, H, W, C)`` with ``(H, W, C) == image_shape`` (28x28x1 MNIST by default) ->
``ConvEncoder(channels)`` (stride-2 3x3 convs + ReLU: 28 -> 14 -> 7; both stacks live in
``denoise_ae``) -> flatten -> dense ``fc_mean`` / ``fc_logvar`` ``(N, Z)`` ->
``z`` -> ``decode``: dense ``fc_z`` + ReLU to ``(H/2**k, W/2**k, channels[-1])``, ``k =
len(channels)`` -> ``ConvDecoder(reversed(channels))`` (``Upsample`` x2 per entry, ``decoder``
mode ``'transpose'`` | ``'resize'``, + ReLU, then a 3x3 conv to C) -> Bernoulli logits
``(N, H, W, C)``; samples are ``sigmoid(model.apply(v, z, method='decode'))``.

``z = mean + exp(logvar / 2) * eps``, ``eps ~ N(0, I)`` from the ``'latent'`` rng stream when
``train=True`` (the reparameterisation trick), ``z = mean`` when ``train=False``; ``z`` is sown
as ``intermediates/z``.
``__call__`` returns ``(logits, mean, logvar)``; ``elbo_loss`` turns them into the per-example
negative ELBO. Defaults (``latent_dim=16``, ``channels=(32, 64)``): 271,201 parameters with
``'transpose'`` (4x4 kernels), 228,193 with ``'resize'``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from cnnlab.models.blocks import Model
from cnnlab.models.denoise_ae import ConvDecoder, ConvEncoder, conv_defs
from cnnlab.models.upsample import check_decoder
from cnnlab.models.registry import register


def kl_divergence(mean_BxZ, logvar_BxZ):
  """``KL(N(mean, diag(exp(logvar))) || N(0, I))`` per example, ``(B,)``:
  ``0.5 * sum(exp(logvar) + mean**2 - 1 - logvar)`` (Kingma & Welling 2014, Appendix B)."""
  return 0.5 * jnp.sum(jnp.exp(logvar_BxZ) + mean_BxZ ** 2 - 1.0 - logvar_BxZ, axis=-1)


def elbo_loss(logits_BxHxWxC, x_BxHxWxC, mean_BxZ, logvar_BxZ):
  """Negative ELBO per example, ``(B,)``: Bernoulli cross-entropy of ``x`` (in [0, 1]) under
  ``sigmoid(logits)`` summed over pixels + ``kl_divergence(mean, logvar)``; float32."""
  f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
  bce = optax.sigmoid_binary_cross_entropy(f32(logits_BxHxWxC), f32(x_BxHxWxC))
  return (jnp.sum(bce.reshape(bce.shape[0], -1), axis=-1)
          + kl_divergence(f32(mean_BxZ), f32(logvar_BxZ)))


class ConvVAE(Model):
  """Fields: ``latent_dim`` Z, ``channels`` (encoder widths; the decoder mirrors them),
  ``decoder`` (``upsample.MODES``), ``image_shape`` ``(H, W, C)``, H and W divisible by
  ``2**len(channels)``, ``transpose_impl`` (``ops.conv_transpose``'s impl of the
  ``'transpose'`` decoder)."""
  latent_dim: int = 16
  channels: Sequence[int] = (32, 64)
  decoder: str = "transpose"
  image_shape: Sequence[int] = (28, 28, 1)
  transpose_impl: str = "lax"

  def __post_init__(self):
    check_decoder("ConvVAE", self.decoder)
    scale = 2 ** len(self.channels)
    if len(self.image_shape) != 3 or self.image_shape[0] % scale or self.image_shape[1] % scale:
      raise ValueError(f"ConvVAE: image_shape must be (H, W, C) with H, W divisible by {scale} "
                       f"(2**len(channels)), got {self.image_shape}")
    super().__post_init__()

  def setup(self):
    conv, conv_transpose = conv_defs("ConvVAE", self)
    dense = functools.partial(nn.Dense, dtype=self.dtype)
    h, w, c = self.image_shape
    scale = 2 ** len(self.channels)
    self.code_shape = (h // scale, w // scale, self.channels[-1])
    self.encoder = ConvEncoder(self.channels, conv)
    self.fc_mean = dense(self.latent_dim)
    self.fc_logvar = dense(self.latent_dim)
    self.fc_z = dense(math.prod(self.code_shape))
    self.decoder_net = ConvDecoder(tuple(reversed(self.channels)), c, self.decoder, conv,
                                   conv_transpose)

  def encode(self, x_BxHxWxC):
    """``(mean_BxZ, logvar_BxZ)`` of the approximate posterior ``q(z | x)``."""
    if tuple(x_BxHxWxC.shape[1:]) != tuple(self.image_shape):
      raise ValueError(f"ConvVAE: x must be (N, *image_shape), image_shape="
                       f"{tuple(self.image_shape)}, got shape {x_BxHxWxC.shape}")
    h = self.encoder(x_BxHxWxC)
    h = h.reshape(h.shape[0], -1)
    return self.fc_mean(h), self.fc_logvar(h)

  def decode(self, z_BxZ):
    """Bernoulli logits ``(B, *image_shape)`` of ``p(x | z)``."""
    h = nn.relu(self.fc_z(z_BxZ)).reshape(z_BxZ.shape[0], *self.code_shape)
    return self.decoder_net(h)

  def __call__(self, x_BxHxWxC, train: bool = False):
    mean, logvar = self.encode(x_BxHxWxC)
    z = mean
    if train:
      eps = jax.random.normal(self.make_rng("latent"), mean.shape, mean.dtype)
      z = mean + jnp.exp(0.5 * logvar) * eps
    self.sow("intermediates", "z", z)
    return self.decode(z), mean, logvar


register("conv_vae", functools.partial(ConvVAE), input_shape=(28, 28, 1),
         paper="Kingma & Welling 2014, Auto-encoding variational Bayes (conv encoder/decoder)",
         family="generative")
