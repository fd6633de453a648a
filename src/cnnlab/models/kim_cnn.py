"""Kim 2014, "Convolutional neural networks for sentence classification".

Input: token ids ``(N, L)`` int, ``0`` = padding (anywhere; each sentence's real tokens need not
be contiguous). Embeddings ``(vocab_size, embed_dim)``; padding embeds to exactly zero. Per
filter width ``h`` (3, 4, 5), ``num_filters`` maps: a 1D conv (``conv{h}``) padded ``h - 1`` on
both sides (Kim's code pads every sentence so), ReLU, max over the windows that hold at least
one real token (a window of padding only never wins; appending or prepending padding leaves
the logits unchanged); the pooled features concatenated -> dropout -> dense (``fc``).

``variant`` (Kim's four):

- ``'rand'``: one trainable embedding (``embedding``), U(-0.25, 0.25) as Kim's code;
- ``'static'``: the pretrained vectors, fixed (``embedding_static``, under ``stop_gradient``);
- ``'non-static'``: the pretrained vectors as the init of a trainable ``embedding``;
- ``'multichannel'``: both; "each filter is applied to both channels and the results are
  added", which for a linear conv is the conv of the sum of the two channels' embeddings.

Pretrained vectors come as ``embedding_init=from_vectors(array)`` (``(vocab_size, embed_dim)``,
row 0 for padding is ignored). ``embedding_static`` is a parameter with zero gradient: the
optimizer must not decay it (Kim uses no weight decay). Kim's constraint ``||w||_2 <= 3`` on
each output unit's weight vector: ``max_norm`` (params -> params) or, chained after the
optimizer, ``max_norm_projection`` (an optax transformation, so the training loop needs no
change: ``optax.chain(optax.adadelta(1.0, rho=0.95, eps=1e-6), max_norm_projection(3.0))``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cnnlab import nn as cnn
from cnnlab.models.blocks import Model, check_rates
from cnnlab.models.registry import register

VARIANTS = ("rand", "static", "non-static", "multichannel")


def from_vectors(vectors) -> Callable[..., jax.Array]:
  """An initialiser returning ``vectors`` (``(vocab_size, embed_dim)``); checks the shape."""
  vectors = np.asarray(vectors, np.float32)

  def init(key, shape, dtype=jnp.float32):
    del key
    if tuple(shape) != vectors.shape:
      raise ValueError(f"pretrained vectors have shape {vectors.shape}, the embedding needs "
                       f"(vocab_size, embed_dim) = {tuple(shape)}")
    return jnp.asarray(vectors, dtype)
  return init


def _uniform_quarter(key, shape, dtype=jnp.float32):
  return jax.random.uniform(key, shape, dtype, -0.25, 0.25)


def window_has_token(mask_BxL, width: int):
  """``(N, L + width - 1)``: whether window ``t`` of a conv padded ``width - 1`` on both sides
  (inputs ``t - width + 1 .. t``) holds at least one real token."""
  m = jnp.pad(mask_BxL.astype(jnp.int32), ((0, 0), (width - 1, width - 1)))
  c = jnp.pad(jnp.cumsum(m, axis=1), ((0, 0), (1, 0)))
  return c[:, width:] - c[:, :-width] > 0


class KimCNN(Model):
  vocab_size: int = 20_000
  embed_dim: int = 300
  num_classes: int = 2
  variant: str = "rand"
  embedding_init: Any = None
  filter_widths: Sequence[int] = (3, 4, 5)
  num_filters: int = 100
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, tokens_BxL, train: bool = False):
    check_rates("KimCNN", dropout_rate=self.dropout_rate)
    if self.variant not in VARIANTS:
      raise ValueError(f"KimCNN: variant={self.variant!r} is not one of {VARIANTS}")
    if self.variant != "rand" and self.embedding_init is None:
      raise ValueError(f"KimCNN: variant={self.variant!r} needs pretrained vectors "
                       "(embedding_init=kim_cnn.from_vectors(array))")
    if tokens_BxL.ndim != 2 or not jnp.issubdtype(tokens_BxL.dtype, jnp.integer):
      raise ValueError("KimCNN: input must be (N, L) integer token ids (0 = padding), got "
                       f"{tokens_BxL.dtype} {tokens_BxL.shape}")
    embed = functools.partial(nn.Embed, self.vocab_size, self.embed_dim, dtype=self.dtype)
    e = 0.0
    if self.variant in ("static", "multichannel"):
      e = e + jax.lax.stop_gradient(
          embed(embedding_init=self.embedding_init, name="embedding_static")(tokens_BxL))
    if self.variant != "static":
      init = self.embedding_init or _uniform_quarter
      e = e + embed(embedding_init=init, name="embedding")(tokens_BxL)
    mask = tokens_BxL != 0
    e = e * mask[..., None]
    conv = functools.partial(cnn.Conv, self.num_filters, impl=self.conv_impl, dtype=self.dtype)
    feats = []
    for h in self.filter_widths:
      c = conv((h,), padding=((h - 1, h - 1),), name=f"conv{h}")(e)
      c = jnp.where(window_has_token(mask, h)[..., None], c, jnp.finfo(c.dtype).min)
      feats.append(nn.relu(jnp.max(c, axis=1)))
    x = jnp.concatenate(feats, axis=-1)
    self.sow("intermediates", "pre_logits", x)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(x)


def _column_ball(kernel, radius):
  """Each column (output unit) of a ``(in, out)`` kernel projected onto the l2 ball."""
  return jax.vmap(optax.projections.projection_l2_ball, in_axes=(1, None), out_axes=1)(
      kernel, radius)


def max_norm(params, radius: float = 3.0, layers: Sequence[str] = ("fc",)):
  """``params`` with each column of ``params[layer]['kernel']`` (one output unit's weights)
  rescaled to l2 norm ``<= radius`` (Kim: after every update, s = 3); other leaves unchanged."""
  out = dict(params)
  for name in layers:
    out[name] = {**params[name], "kernel": _column_ball(params[name]["kernel"], radius)}
  return out


def max_norm_projection(radius: float = 3.0,
                        layers: Sequence[str] = ("fc",)) -> optax.GradientTransformation:
  """Chained after the optimizer: turns ``updates`` into ``max_norm(params + updates) -
  params``, so ``optax.apply_updates`` lands on the projected parameters (up to rounding)."""

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError("max_norm_projection needs params: call tx.update(grads, state, params)")
    stepped = optax.apply_updates(params, updates)
    return jax.tree.map(jnp.subtract, max_norm(stepped, radius, layers), params), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


register("kim_cnn", functools.partial(KimCNN), input_shape=(56,), family="kim_cnn",
         paper="Kim 2014, Convolutional neural networks for sentence classification",
         small_input_shape=(12,), input_dtype="int32")
