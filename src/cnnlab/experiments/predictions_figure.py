"""A trained run's predictions beside the truth on its first eval examples, as a PNG:
segmentation (``task='segmentation'``: image | true mask | predicted mask, classes coloured,
background black) or video (clips: frames 0, T/4, T/2, 3T/4, T-1 with the true and predicted
label). Config: ``run_workdir``, ``num_examples``. Writes ``predictions.png`` and
``predictions.json`` (the labels and, for segmentation, each canvas' pixel accuracy)."""

from __future__ import annotations

import jax
import numpy as np
from matplotlib.colors import ListedColormap

from cnnlab import plotting, report
from cnnlab.experiments._eval_data import eval_arrays
from cnnlab.plotting import plt
from cnnlab.train import workdir as workdir_lib
from cnnlab.train.validate import check_number

# Digits 0-9 in tab10's colours, background (10) black.
MASK_COLOURS = ListedColormap([*plt.get_cmap("tab10").colors, (0.0, 0.0, 0.0)])
DIRECTIONS = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")


def _off(ax):
  ax.set_xticks([])
  ax.set_yticks([])


def run(config, workdir: str) -> dict:
  check_number(config, "num_examples", 1, integer=True)
  run_config, model, variables = workdir_lib.load(config.run_workdir)
  x, y = eval_arrays(run_config, config.num_examples)
  pred = np.asarray(jax.jit(model.apply)(variables, x)).argmax(-1)
  n = len(x)
  segmentation = run_config.get("task", "classification") == "segmentation"
  names = (DIRECTIONS if run_config.data.get("target") == "direction"
           else [str(k) for k in range(10)])
  cols = 3 if segmentation else 5
  fig, axes = plt.subplots(n, cols, figsize=(1.8 * cols, 1.9 * n), squeeze=False)
  rows = []
  for i in range(n):
    if segmentation:
      panels = [(x[i, ..., 0], "gray", "image"), (y[i], MASK_COLOURS, "truth"),
                (pred[i], MASK_COLOURS, f"prediction ({100 * np.mean(pred[i] == y[i]):.1f} %)")]
      for ax, (img, cmap, title) in zip(axes[i], panels):
        ax.imshow(img, cmap=cmap, **({} if cmap == "gray" else {"vmin": 0, "vmax": 10}),
                  interpolation="nearest")
        ax.set_title(title, fontsize=7)
        _off(ax)
      rows.append({"example": i, "pixel_accuracy": float(np.mean(pred[i] == y[i]))})
    else:
      t = x.shape[1]
      for ax, f in zip(axes[i], (0, t // 4, t // 2, 3 * t // 4, t - 1)):
        ax.imshow(x[i, f, ..., 0], cmap="gray")
        ax.set_title(f"frame {f}", fontsize=7)
        _off(ax)
      axes[i, 0].set_ylabel(f"true {names[y[i]]}\npredicted {names[pred[i]]}", fontsize=7)
      rows.append({"example": i, "label": int(y[i]), "prediction": int(pred[i])})
  plotting.save(fig, f"{workdir}/predictions.png")
  report.write(workdir, "predictions", rows)
  return {"rows": rows}
