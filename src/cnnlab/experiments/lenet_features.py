"""What LeNet-5 learned: its C1 filters and one eval digit's feature maps through every layer.

Panels are plotted from :func:`panels` (the arrays the figures show, so tests can check them):
``digit`` ``(32, 32)`` the normalised, resized input; ``kernel`` ``(5, 5, 6)`` and ``bias``
``(6,)`` of C1; the sown intermediates (``C1_out`` ...) as ``C1`` (28x28x6), ``S2`` (14x14x6),
``C3`` (10x10x16), ``S4`` (5x5x16), ``C5`` (120), ``pre_logits`` (F6, 84), after their tanh;
``logits`` (10).
"""

from __future__ import annotations

import os
import tempfile

import jax.numpy as jnp
import numpy as np

from cnnlab import models, plotting, report, train
from cnnlab.experiments import _eval_data as eval_data
from cnnlab.train import workdir as workdir_lib
from cnnlab.train.errors import ConfigError
from cnnlab.train.validate import check_number

LAYERS = ("C1", "S2", "C3", "S4", "C5", "pre_logits")
SOWN = {k: k if k == "pre_logits" else f"{k}_out" for k in LAYERS}  # names in LeNet5's sow calls


def panels(model, variables, digit_HxWx1) -> dict:
  """The arrays plotted for one digit (see module doc), as numpy."""
  logits, feats = models.extract_features(model, variables, jnp.asarray(digit_HxWx1)[None],
                                          names=list(SOWN.values()))
  c1 = variables["params"]["C1"]
  out = {"digit": np.asarray(digit_HxWx1)[..., 0], "kernel": np.asarray(c1["kernel"])[:, :, 0],
         "bias": np.asarray(c1["bias"]), "logits": np.asarray(logits)[0]}
  for k, name in SOWN.items():
    v = np.asarray(feats[name])[0]
    out[k] = v.reshape(-1) if k in ("C5", "pre_logits") else v
  return out


def plot_filters(p: dict, out_path: str) -> str:
  """C1's 6 kernels (5x5), one symmetric colour scale, bias in each title."""
  plt = plotting.plt
  k = p["kernel"]
  lim = float(np.abs(k).max())
  fig, axes = plt.subplots(1, k.shape[-1], figsize=(1.6 * k.shape[-1] + 1, 2.3))
  for i, ax in enumerate(axes):
    im = ax.imshow(k[:, :, i], cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(f"C1 filter {i}\nbias {p['bias'][i]:+.2f}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
  fig.colorbar(im, ax=list(axes), shrink=0.8, pad=0.02, label="weight")
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  fig.savefig(out_path, dpi=100, bbox_inches="tight")
  plt.close(fig)
  return out_path


def plot_feature_maps(p: dict, out_path: str) -> str:
  """One row per layer: input, C1, S2, C3, S4 maps; C5 and F6 as grids of units; the logits.
  Activations share one colour scale, tanh's [-1, 1]."""
  plt = plotting.plt
  fig = plt.figure(figsize=(13, 8.2))
  grid = fig.add_gridspec(6, 16, hspace=0.55, wspace=0.15)
  ax = fig.add_subplot(grid[0, 0:2])
  ax.imshow(p["digit"], cmap="gray")
  ax.set_title("input 32x32", fontsize=9)
  ax.axis("off")
  rows = (("C1", 1, 0), ("S2", 1, 8), ("C3", 2, 0), ("S4", 3, 0))
  im = None
  for name, r, c0 in rows:
    maps = p[name]
    for i in range(maps.shape[-1]):
      a = fig.add_subplot(grid[r, c0 + i])
      im = a.imshow(maps[:, :, i], cmap="RdBu_r", vmin=-1, vmax=1)
      a.set_xticks([])
      a.set_yticks([])
      if i == 0:
        a.set_ylabel(f"{name}\n{maps.shape[0]}x{maps.shape[1]}", fontsize=9)
  for name, shape, c0, c1 in (("C5", (10, 12), 0, 5), ("pre_logits", (7, 12), 6, 10)):
    a = fig.add_subplot(grid[4:, c0:c1])
    a.imshow(p[name].reshape(shape), cmap="RdBu_r", vmin=-1, vmax=1)
    a.set_title(f"{'C5: 120 units' if name == 'C5' else 'F6 (pre_logits): 84 units'}",
                fontsize=9)
    a.set_xticks([])
    a.set_yticks([])
  a = fig.add_subplot(grid[4:, 11:16])
  a.bar(range(10), p["logits"], color="#4878a8")
  a.set_xticks(range(10))
  a.set_title(f"logits (predicted {int(np.argmax(p['logits']))})", fontsize=9)
  a.grid(axis="y", alpha=0.3)
  cax = fig.add_subplot(grid[0, 5:13])
  cax.set_box_aspect(0.06)
  fig.colorbar(im, cax=cax, orientation="horizontal", label="activation (tanh output)")
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  fig.savefig(out_path, dpi=90, bbox_inches="tight")
  plt.close(fig)
  return out_path


def layer_stats(p: dict) -> list[dict]:
  """Per layer: shape, mean, mean |a| and the fraction of saturated units (|a| > 0.95)."""
  return [{"layer": k, "shape": "x".join(map(str, p[k].shape)), "mean": float(p[k].mean()),
           "mean_abs": float(np.abs(p[k]).mean()),
           "saturated": float(np.mean(np.abs(p[k]) > 0.95))} for k in LAYERS]


def run(config, workdir: str) -> dict:
  """Loads the run in ``config.run_workdir`` (first training ``config.train`` there if it has no
  checkpoint and ``config.train_if_missing``; '' = a fresh temporary directory), plots, writes
  lenet_filters.png, lenet_feature_maps.png, lenet_features.{json,md} into ``workdir``."""
  check_number(config, "digit_index", 0, integer=True)
  run_dir = config.run_workdir or tempfile.mkdtemp(prefix="lenet_features_")
  if workdir_lib.latest_step(run_dir) is None:
    if not config.train_if_missing:
      raise ConfigError(f"config.run_workdir={run_dir!r} is invalid: it holds no checkpoint and "
                        "config.train_if_missing is False")
    train.train_and_evaluate(config.train, run_dir)
  run_config, model, variables = workdir_lib.load(run_dir)
  x, y = eval_data.eval_arrays(run_config, limit=config.digit_index + 1)
  if config.digit_index >= len(x):
    raise ConfigError(f"config.digit_index={config.digit_index} is invalid: the eval split holds "
                      f"{len(x)} digits")
  p = panels(model, variables, x[config.digit_index])
  os.makedirs(workdir, exist_ok=True)
  plot_filters(p, os.path.join(workdir, "lenet_filters.png"))
  plot_feature_maps(p, os.path.join(workdir, "lenet_feature_maps.png"))
  rows = layer_stats(p)
  evals = workdir_lib.read_metrics(run_dir, "eval")
  summary = {"run_workdir": run_dir, "step": workdir_lib.latest_step(run_dir),
             "eval_accuracy": evals[-1]["accuracy"] if evals else None,
             "digit_index": config.digit_index, "label": int(y[config.digit_index]),
             "predicted": int(np.argmax(p["logits"])), "logits": p["logits"].round(3).tolist(),
             "c1_kernel": p["kernel"].tolist(), "c1_bias": p["bias"].tolist()}
  report.write(workdir, "lenet_features", rows, extra=summary)
  return {k: v for k, v in summary.items() if not k.startswith("c1_")}
