"""Samples of a trained conv VAE (configs/dense/vae_mnist8k.py): ``num_samples`` codes drawn from
the prior N(0, I) (``jax.random.key(seed)``) decoded to pixel probabilities, and the first 16 eval
digits beside their reconstructions (the decoder on the encoder's mean). Writes
``vae_samples.png`` and ``vae_samples.json`` (the eval negative ELBO of those 16 digits)."""

from __future__ import annotations

import math

import jax
import numpy as np

from cnnlab import plotting, report
from cnnlab.experiments._eval_data import eval_arrays
from cnnlab.models.conv_vae import elbo_loss
from cnnlab.plotting import plt
from cnnlab.train import workdir as workdir_lib
from cnnlab.train.validate import check_number



def _grid(images_NxHxW, cols: int):
  n, h, w = images_NxHxW.shape
  rows = math.ceil(n / cols)
  out = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1))
  for i, img in enumerate(images_NxHxW):
    r, c = divmod(i, cols)
    out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = img
  return out


def run(config, workdir: str) -> dict:
  check_number(config, "num_samples", 1, integer=True)
  check_number(config, "seed", integer=True)
  run_config, model, variables = workdir_lib.load(config.run_workdir)
  z = jax.random.normal(jax.random.key(config.seed), (config.num_samples, model.latent_dim))
  samples = np.asarray(jax.nn.sigmoid(model.apply(variables, z, method="decode")))
  x, _ = eval_arrays(run_config, 16)
  logits, mean, logvar = model.apply(variables, x, train=False)
  recon = np.asarray(jax.nn.sigmoid(logits))
  nelbo = float(np.mean(elbo_loss(logits, x, mean, logvar)))
  fig, (a, b) = plt.subplots(1, 2, figsize=(10, 5.4), gridspec_kw={"width_ratios": [1, 0.55]})
  a.imshow(_grid(samples[..., 0], int(math.sqrt(config.num_samples))), cmap="gray", vmin=0,
           vmax=1)
  a.set_title(f"{config.num_samples} samples: decoder(z), z ~ N(0, I)", fontsize=9)
  pairs = np.stack([x[..., 0], recon[..., 0]], 1).reshape(-1, *x.shape[1:3])
  b.imshow(_grid(pairs, 4), cmap="gray", vmin=0, vmax=1)
  b.set_title("eval digits | reconstructions (pairs)", fontsize=9)
  for ax in (a, b):
    ax.set_xticks([])
    ax.set_yticks([])
  plotting.save(fig, f"{workdir}/vae_samples.png", dpi=110)
  out = {"eval_nelbo_16": nelbo, "decoder": run_config.model.decoder}
  report.write(workdir, "vae_samples", [out])
  print(out)
  return out
