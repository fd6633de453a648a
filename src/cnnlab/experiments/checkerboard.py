"""Checkerboard artefacts of upsampling decoders (Odena, Dumoulin & Olah 2016), measured on the
denoising autoencoders of a finished configs/dense/checkerboard.py sweep.

For each run, the same noisy eval digits (the run's eval split, first ``num_images``, plus
Gaussian noise of std ``noise_std`` from a fixed numpy seed) go through the decoder at its
initialisation (the run's seed) and after training (the output, and its error against the clean
digit, where an artefact would stand out from the digit's own spectrum).
:func:`checkerboard_energy` is the share of
an output's power (its mean removed) at the three period-2 frequencies (u, v) in
{(H/2, 0), (0, W/2), (H/2, W/2)}: 1 for a pure +-1 checkerboard, about 3/(H*W) for white noise,
near 0 for a smooth image. Writes ``checkerboard.{md,json,png}`` (one row per decoder: noisy
input, output at init, trained output, clean digit)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cnnlab import plotting, report
from cnnlab.experiments._eval_data import eval_arrays
from cnnlab.experiments._sweep_results import finished_points
from cnnlab.plotting import plt
from cnnlab.train import workdir as workdir_lib
from cnnlab.train.validate import check_number


COLUMNS = ("decoder", "energy at init (%)", "energy trained (%)",
           "energy of the trained error (%)", "eval MSE (noisy -> clean)")


def checkerboard_energy(y_NxHxWxC) -> float:
  """Mean over images and channels of the power share at the period-2 frequencies (even H, W)."""
  y = np.moveaxis(np.asarray(y_NxHxWxC, np.float64), -1, 1)
  y = y - y.mean(axis=(-2, -1), keepdims=True)
  p = np.abs(np.fft.fft2(y)) ** 2
  h, w = y.shape[-2:]
  nyquist = p[..., h // 2, 0] + p[..., 0, w // 2] + p[..., h // 2, w // 2]
  total = p.sum(axis=(-2, -1))
  return float(np.mean(np.where(total > 0, nyquist / np.maximum(total, 1e-30), 0.0)))


def _name(config) -> str:
  m = config.model
  return (f"transposed conv, kernel {m.up_kernel_size}" if m.decoder == "transpose"
          else "nearest resize + conv")


def run(config, workdir: str) -> dict:
  check_number(config, "num_images", 1, integer=True)
  check_number(config, "noise_std", 0)
  rows, images = [], []
  for point in finished_points(config.sweep_workdir, "configs/dense/checkerboard.py"):
    run_config, model, variables = workdir_lib.load(point)
    clean, _ = eval_arrays(run_config, config.num_images)
    noisy = clean + config.noise_std * np.random.default_rng(0).standard_normal(clean.shape)
    noisy = noisy.astype(np.float32)
    init = model.init(jax.random.key(run_config.seed), jnp.zeros((1, *clean.shape[1:])),
                      train=False)
    y0 = np.asarray(jax.jit(model.apply)(init, noisy))
    y1 = np.asarray(jax.jit(model.apply)(variables, noisy))
    rows.append({"decoder": _name(run_config),
                 "energy at init (%)": round(100 * checkerboard_energy(y0), 3),
                 "energy trained (%)": round(100 * checkerboard_energy(y1), 3),
                 "energy of the trained error (%)": round(100 * checkerboard_energy(y1 - clean), 3),
                 "eval MSE (noisy -> clean)": round(float(np.mean((y1 - clean) ** 2)), 5)})
    images.append((rows[-1], noisy[0], y0[0], y1[0], clean[0]))
  md = report.markdown_table(rows, list(COLUMNS))
  report.write(workdir, "checkerboard", rows, markdown=md)
  _figure(images, f"{workdir}/checkerboard.png")
  print(md)
  return {"rows": rows}


def _figure(images, path: str) -> None:
  fig, axes = plt.subplots(len(images), 4, figsize=(8, 2.2 * len(images)), squeeze=False)
  for r, (row, *panels) in enumerate(images):
    titles = ("noisy input", f"at init: {row['energy at init (%)']} %",
              f"trained: {row['energy trained (%)']} %", "clean")
    for c, (img, title) in enumerate(zip(panels, titles)):
      ax = axes[r, c]
      ax.imshow(img[..., 0], cmap="gray")
      ax.set_title(title, fontsize=8)
      ax.set_xticks([])
      ax.set_yticks([])
    axes[r, 0].set_ylabel(row["decoder"], fontsize=8)
  fig.suptitle("Checkerboard energy (power at period-2 frequencies) of each decoder's output",
               fontsize=9)
  plotting.save(fig, path, dpi=110)
