"""torch restatements of the conv encoder / decoder stacks of ``conv_vae`` and ``denoise_ae``
(reference for the tests of both), NCHW, with weights copied from the Flax parameters.

Encoder: ``Conv2d(3, stride 2, padding 1)`` + ReLU per width. Decoder per width:
``'transpose'`` ``ConvTranspose2d(4, stride 2, padding 1)`` (DCGAN's x2), ``'resize'``
``Upsample(2, 'nearest')`` + ``Conv2d(3, padding 1)``; + ReLU; then ``Conv2d(3, padding 1)``.
Flax's conv kernel ``(kh, kw, in, out)`` is torch's ``(out, in, kh, kw)``; its transposed-conv
kernel is applied unflipped to the dilated input, so torch's ``(in, out, kh, kw)`` weight is it
flipped over the window (docs/conventions.md, "Layouts"). ``variables``: parameters drawn in
numpy (no Flax init to compile, which costs seconds per kernel shape in eager mode)."""

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import nn as tnn


def encoder(c_in, channels):
  layers = []
  for c in channels:
    layers += [tnn.Conv2d(c_in, c, 3, stride=2, padding=1), tnn.ReLU()]
    c_in = c
  return tnn.Sequential(*layers)


def decoder(c_in, channels, out_features, mode):
  layers = []
  for c in channels:
    up = (tnn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1) if mode == "transpose" else
          tnn.Sequential(tnn.Upsample(scale_factor=2, mode="nearest"),
                         tnn.Conv2d(c_in, c, 3, padding=1)))
    layers += [up, tnn.ReLU()]
    c_in = c
  return tnn.Sequential(*layers, tnn.Conv2d(c_in, out_features, 3, padding=1))


def _t(a):
  return torch.from_numpy(np.array(a, np.float32))  # a writable copy


def _set(layer, weight, bias):
  with torch.no_grad():
    layer.weight.copy_(_t(weight))
    layer.bias.copy_(_t(bias))


def load_conv(layer, p):
  _set(layer, np.asarray(p["kernel"]).transpose(3, 2, 0, 1), p["bias"])


def load_dense(layer, p):
  _set(layer, np.asarray(p["kernel"]).T, p["bias"])


def load_encoder(seq, p):
  convs = [m for m in seq if isinstance(m, tnn.Conv2d)]
  for i, layer in enumerate(convs):
    load_conv(layer, p[f"conv{i}"])


def load_decoder(seq, p):
  ups = [m for m in seq if not isinstance(m, tnn.ReLU)][:-1]
  for i, up in enumerate(ups):
    if isinstance(up, tnn.ConvTranspose2d):
      k = np.asarray(p[f"up{i}"]["up"]["kernel"])[::-1, ::-1]
      _set(up, k.transpose(2, 3, 0, 1), p[f"up{i}"]["up"]["bias"])
    else:
      load_conv(up[1], p[f"up{i}"]["conv"])
  load_conv(seq[-1], p["out"])


def num_params(module):
  return sum(p.numel() for p in module.parameters())


def nhwc(x_nchw):
  return x_nchw.detach().numpy().transpose(0, 2, 3, 1)


def nchw(x_nhwc):
  return _t(np.asarray(x_nhwc).transpose(0, 3, 1, 2))


def variables(model, x, seed=0):
  """Variables of ``model`` for input ``x`` drawn in numpy (no init to compile): kernels
  N(0, 1/fan_in), biases U(-0.1, 0.1)."""
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map_with_path(
      lambda path, a: jnp.asarray(
          rng.standard_normal(a.shape) * np.prod(a.shape[:-1]) ** -0.5
          if path[-1].key == "kernel" else rng.uniform(-0.1, 0.1, a.shape), jnp.float32),
      jax.eval_shape(model.init, jax.random.key(0), x))
