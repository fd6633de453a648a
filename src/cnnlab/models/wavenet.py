"""WaveNet (van den Oord et al. 2016): gated, dilated causal convs with residual and skip paths.

Layer ``i`` (dilation ``d_i``, ``R = residual_channels``, ``S = skip_channels``), on ``h_BxLxR``:

  z = causal conv k, dilation d_i, R -> 2R (``dilated``)  [+ Embed(condition) (``cond``, 2R)]
  g = tanh(z[..., :R]) * sigmoid(z[..., R:])        (filter and gate convs stacked in one)
  skip_i = 1x1 conv g -> S (``skip``);  h = h + 1x1 conv g -> R (``residual``, not in the last)

Dilations ``1, 2, ..., 2**(layers_per_cycle-1)`` repeated ``num_cycles`` times (default kernel 2,
1..512). The input projection is a 1x1 conv, so output ``t`` sees inputs ``t-r+1 .. t`` with
``r = receptive_field(...) = 1 + num_cycles*(k-1)*(2**layers_per_cycle - 1)``: 1,024 samples for
one 1..512 cycle, the paper's figure. Global conditioning (``num_conditions > 0``): a class /
speaker id per example, ``Embed`` per layer = the paper's ``V_f^T h``, ``V_g^T h`` for one-hot h.

- ``WaveNetClassifier``: waveform ``(N, L, C)`` float -> relu(sum skip) -> 1x1 (``head_conv``)
  -> relu -> global average pool -> dropout -> dense (``fc``) -> ``(N, num_classes)``.
- ``WaveNet`` (generative): mu-law codes ``(N, L)`` int -> one-hot -> 1x1 (``input``) -> stack ->
  relu(sum skip) -> 1x1 (``out1``) -> relu -> 1x1 (``out2``) -> logits ``(N, L, Q)``;
  ``logits[:, t]`` is the distribution of ``codes[:, t + 1]`` (train with per-timestep cross
  entropy on ``codes[:, 1:]`` against ``logits[:, :-1]``).
- Fast sampling (Paine et al. 2016, "Fast WaveNet generation"): ``step`` keeps, per layer, a
  circular queue of its last ``(k-1)*d`` inputs and computes one timestep in ``O(layers)``;
  ``incremental_logits`` (teacher forced) and ``sample`` run it in a jitted ``lax.scan``.
  Every conv of both paths goes through ``cnnlab.ops.conv`` with the model's ``conv_impl``.
- ``mu_law_encode`` / ``mu_law_decode``: ITU-T G.711 mu-law companding, ``Q = mu + 1`` levels.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import (Model, ModuleDef, causal_receptive_field, check_rates,
                                  classifier_head)
from cnnlab.models.registry import register


def mu_law_encode(x, quantization_levels: int = 256):
  """Waveform in ``[-1, 1]`` -> int32 codes ``0 .. Q-1``: ``f = sign(x) ln(1 + mu|x|) /
  ln(1 + mu)`` with ``mu = Q - 1``, then ``round((f + 1) / 2 * mu)`` (0 -> ``Q // 2``)."""
  mu = quantization_levels - 1
  x = jnp.clip(jnp.asarray(x, jnp.float32), -1.0, 1.0)
  f = jnp.sign(x) * jnp.log1p(mu * jnp.abs(x)) / jnp.log1p(float(mu))
  return jnp.floor((f + 1.0) / 2.0 * mu + 0.5).astype(jnp.int32)


def mu_law_decode(codes, quantization_levels: int = 256):
  """Codes ``0 .. Q-1`` -> waveform in ``[-1, 1]`` (the inverse companding of each level)."""
  mu = quantization_levels - 1
  f = 2.0 * jnp.asarray(codes, jnp.float32) / mu - 1.0
  return jnp.sign(f) * jnp.expm1(jnp.abs(f) * jnp.log1p(float(mu))) / mu


def dilations(layers_per_cycle: int = 10, num_cycles: int = 1) -> tuple[int, ...]:
  return tuple(2 ** i for i in range(layers_per_cycle)) * num_cycles


def receptive_field(kernel_size: int = 2, layers_per_cycle: int = 10, num_cycles: int = 1) -> int:
  """Inputs seen by one output of the stack: ``1 + sum((k-1)*d)`` (one 1..512 cycle, k=2: 1,024)."""
  return causal_receptive_field([(kernel_size, d) for d in dilations(layers_per_cycle,
                                                                      num_cycles)])


class GatedLayer(nn.Module):
  """One gated residual layer (module doc); returns ``(h + residual, skip)``."""
  residual_channels: int
  skip_channels: int
  kernel_size: int
  dilation: int
  conv: ModuleDef
  num_conditions: int = 0
  last: bool = False

  @nn.compact
  def __call__(self, h_BxLxR, condition_B=None):
    r = self.residual_channels
    z = self.conv(2 * r, (self.kernel_size,), padding="CAUSAL", kernel_dilation=self.dilation,
                  name="dilated")(h_BxLxR)
    if self.num_conditions:
      z = z + nn.Embed(self.num_conditions, 2 * r, name="cond")(condition_B)[:, None, :]
    g = jnp.tanh(z[..., :r]) * nn.sigmoid(z[..., r:])
    skip = self.conv(self.skip_channels, (1,), name="skip")(g)
    if not self.last:
      h_BxLxR = h_BxLxR + self.conv(r, (1,), name="residual")(g)
    return h_BxLxR, skip


class _WaveNetBase(Model):
  residual_channels: int = 32
  skip_channels: int = 128
  kernel_size: int = 2
  layers_per_cycle: int = 10
  num_cycles: int = 1
  num_conditions: int = 0

  @property
  def dilations(self) -> tuple[int, ...]:
    return dilations(self.layers_per_cycle, self.num_cycles)

  @property
  def receptive_field(self) -> int:
    return receptive_field(self.kernel_size, self.layers_per_cycle, self.num_cycles)

  def make_conv(self) -> ModuleDef:
    return functools.partial(cnn.Conv, impl=self.conv_impl, dtype=self.dtype)

  def check_condition(self, condition_B, batch: int):
    if self.num_conditions and (condition_B is None or jnp.shape(condition_B) != (batch,)):
      raise ValueError(f"{type(self).__name__}: num_conditions={self.num_conditions} needs "
                       f"condition ids of shape ({batch},), got "
                       f"{None if condition_B is None else jnp.shape(condition_B)}")
    if not self.num_conditions and condition_B is not None:
      raise ValueError(f"{type(self).__name__}: condition given but num_conditions=0")

  def stack(self, h_BxLxR, condition_B):
    """The gated layers (modules ``layer{i}``); returns ``relu(sum of skips)``."""
    if self.kernel_size < 2 or self.layers_per_cycle < 1 or self.num_cycles < 1:
      raise ValueError(f"{type(self).__name__}: need kernel_size >= 2, layers_per_cycle >= 1 "
                       f"and num_cycles >= 1, got {self.kernel_size}, {self.layers_per_cycle}, "
                       f"{self.num_cycles}")
    skips, conv = 0.0, self.make_conv()
    for i, d in enumerate(self.dilations):
      h_BxLxR, skip = GatedLayer(self.residual_channels, self.skip_channels, self.kernel_size,
                                 d, conv, self.num_conditions, i == len(self.dilations) - 1,
                                 name=f"layer{i}")(h_BxLxR, condition_B)
      skips = skips + skip
    return nn.relu(skips)


class WaveNetClassifier(_WaveNetBase):
  """Waveform ``(N, L, C)`` -> ``(N, num_classes)`` (module doc)."""
  num_classes: int = 10
  skip_channels: int = 64
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x_BxLxC, train: bool = False, condition=None):
    check_rates("WaveNetClassifier", dropout_rate=self.dropout_rate)
    if x_BxLxC.ndim != 3:
      raise ValueError(f"WaveNetClassifier: x must be (N, L, C) waveforms, got {x_BxLxC.shape}")
    self.check_condition(condition, x_BxLxC.shape[0])
    conv = self.make_conv()
    h = conv(self.residual_channels, (1,), name="input")(x_BxLxC)
    s = self.stack(h, condition)
    s = nn.relu(conv(self.skip_channels, (1,), name="head_conv")(s))
    return classifier_head(self, s, functools.partial(nn.Dense, dtype=self.dtype),
                           dropout_rate=self.dropout_rate, train=train)


class WaveNet(_WaveNetBase):
  """Codes ``(N, L)`` int -> next-code logits ``(N, L, quantization_levels)`` (module doc)."""
  quantization_levels: int = 256
  num_cycles: int = 3

  def __call__(self, codes_BxL, train: bool = False, condition=None):
    del train  # no dropout or batch statistics
    if codes_BxL.ndim != 2 or not jnp.issubdtype(codes_BxL.dtype, jnp.integer):
      raise ValueError(f"WaveNet: input must be (N, L) integer mu-law codes in [0, "
                       f"{self.quantization_levels}), got {codes_BxL.dtype} {codes_BxL.shape}")
    x = jax.nn.one_hot(codes_BxL, self.quantization_levels, dtype=self.dtype or jnp.float32)
    return self.from_one_hot(x, condition)

  @nn.compact
  def from_one_hot(self, x_BxLxQ, condition=None):
    """The logits of one-hot (or any float) inputs ``(N, L, Q)`` (``apply(..., method=...)``)."""
    self.check_condition(condition, x_BxLxQ.shape[0])
    conv = self.make_conv()
    s = self.stack(conv(self.residual_channels, (1,), name="input")(x_BxLxQ), condition)
    s = nn.relu(conv(self.skip_channels, (1,), name="out1")(s))
    return conv(self.quantization_levels, (1,), name="out2")(s)


# ------------------------------------------------------------------ incremental generation
def init_queues(model: WaveNet, batch_size: int, dtype=jnp.float32) -> tuple[jax.Array, ...]:
  """Per layer, a zero queue ``(B, (k-1)*d, R)``: the layer's past inputs (zeros before t=0)."""
  m = model.kernel_size - 1
  return tuple(jnp.zeros((batch_size, m * d, model.residual_channels), dtype)
               for d in model.dilations)


def _conv(p, x_BxKxC, impl):
  """A conv module's params ``p`` on a window of exactly its kernel length: ``(B, 1, C_out)``."""
  return ops.conv(x_BxKxC, p["kernel"].astype(x_BxKxC.dtype), impl=impl) + p["bias"]


def step(model: WaveNet, params, queues, t, code_B, condition_B=None):
  """One timestep: the logits ``(B, Q)`` after input ``code_B`` at time ``t``, and the queues.

  Layer with dilation ``d`` reads its inputs at ``t - (k-1-j)*d`` (``j < k-1``) from slot
  ``time mod (k-1)*d`` of its queue, then writes its input at ``t`` there; a slot is read before
  it is overwritten, so the queue holds exactly the inputs the full causal conv sees."""
  impl, k, dtype = model.conv_impl, model.kernel_size, queues[0].dtype
  x = jax.nn.one_hot(code_B, model.quantization_levels, dtype=dtype)[:, None, :]
  h = _conv(params["input"], x, impl)
  skips, new_queues = 0.0, []
  for i, (d, q) in enumerate(zip(model.dilations, queues)):
    p, size = params[f"layer{i}"], (k - 1) * d
    past = [lax.dynamic_index_in_dim(q, (t - (k - 1 - j) * d) % size, axis=1)
            for j in range(k - 1)]
    z = _conv(p["dilated"], jnp.concatenate(past + [h], axis=1), impl)
    new_queues.append(lax.dynamic_update_index_in_dim(q, h, t % size, axis=1))
    if model.num_conditions:
      z = z + p["cond"]["embedding"][condition_B][:, None, :].astype(dtype)
    r = model.residual_channels
    g = jnp.tanh(z[..., :r]) * nn.sigmoid(z[..., r:])
    skips = skips + _conv(p["skip"], g, impl)
    if "residual" in p:
      h = h + _conv(p["residual"], g, impl)
  s = nn.relu(_conv(params["out1"], nn.relu(skips), impl))
  return _conv(params["out2"], s, impl)[:, 0], tuple(new_queues)


@functools.partial(jax.jit, static_argnums=0)
def incremental_logits(model: WaveNet, variables, codes_BxL, condition_B=None):
  """Teacher-forced fast generation over ``codes_BxL``: ``(B, L, Q)``, which equals
  ``model.apply(variables, codes_BxL)`` (the tests prove it)."""
  params = variables["params"]

  def body(queues, t_and_code):
    t, code = t_and_code
    logits, queues = step(model, params, queues, t, code, condition_B)
    return queues, logits

  n, length = codes_BxL.shape
  _, logits = lax.scan(body, init_queues(model, n), (jnp.arange(length), codes_BxL.T))
  return jnp.swapaxes(logits, 0, 1)


@functools.partial(jax.jit, static_argnames=("model", "num_samples", "temperature"))
def sample(model: WaveNet, variables, key, prime_BxP, num_samples: int, condition_B=None,
           temperature: float = 1.0):
  """Codes ``(B, P + num_samples)``: ``prime_BxP`` (e.g. ``[[Q // 2]]``, silence) teacher-forced
  through the queues, then ``num_samples`` codes drawn one at a time from
  ``softmax(logits / temperature)`` (``temperature=0``: argmax). Decode with ``mu_law_decode``."""
  params = variables["params"]
  n, p = prime_BxP.shape
  total = p + num_samples
  forced = jnp.zeros((n, total), jnp.int32).at[:, :p].set(prime_BxP)

  def body(carry, t):
    queues, code, key = carry
    logits, queues = step(model, params, queues, t, code, condition_B)
    key, sub = jax.random.split(key)
    drawn = (jnp.argmax(logits, -1) if temperature == 0
             else jax.random.categorical(sub, logits / temperature))
    nxt = jnp.where(t + 1 < p, forced[:, jnp.minimum(t + 1, total - 1)], drawn.astype(jnp.int32))
    return (queues, nxt, key), nxt

  carry = (init_queues(model, n), forced[:, 0], key)
  _, rest = lax.scan(body, carry, jnp.arange(total - 1))
  return jnp.concatenate([forced[:, :1], rest.T], axis=1)


_PAPER = "van den Oord et al. 2016, WaveNet: a generative model for raw audio"
register("wavenet_classifier", functools.partial(WaveNetClassifier), input_shape=(8000, 1),
         paper=_PAPER + " (classifier head)", family="wavenet", small_input_shape=(64, 1))
register("wavenet", functools.partial(WaveNet), input_shape=(8000,), paper=_PAPER,
         family="wavenet", small_input_shape=(64,), input_dtype="int32")
