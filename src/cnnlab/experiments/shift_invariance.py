"""How much do a CNN's feature maps and outputs change when the input digit moves by s pixels?

Shift: :func:`shift_images` translates the content by ``(dy, dx)`` pixels on a fixed canvas;
uncovered pixels get ``fill`` (the normalised background) and content that leaves is dropped (no
wrap-around). For each shift ``s = 0..k`` to the right and down, on every eval digit, with ``f``
a stage's feature map ``(H', W', C)`` at cumulative stride ``j`` (``H' = H / j``):

- ``raw/<stage>``: ``||f(T_s x) - f(x)|| / ||f(x)||`` (per digit, then the mean): invariance.
- ``aligned/<stage>``: the same after undoing the shift on the map, i.e. comparing
  ``f(T_s x)[t:]`` with ``f(x)[:H'-t]`` for ``t = s / j`` on the overlap (norm of ``f(x)`` on the
  overlap): equivariance. Defined only where ``j`` divides ``s`` (NaN elsewhere). Zero-padded
  convs make even a stride-1 network differ along the overlap's edge.
- ``pre_logits_cos``: cosine similarity of ``pre_logits`` (per digit, then the mean).
- ``logits_raw``: relative L2 change of the logits.
- ``unchanged``: fraction of digits whose predicted class is the one predicted unshifted.
- ``accuracy``: eval accuracy on the shifted digits.
"""

from __future__ import annotations

import json
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from cnnlab import models, plotting, report
from cnnlab.experiments import _eval_data as eval_data
from cnnlab.train import workdir as workdir_lib
from cnnlab.train.validate import check_number

DIRECTIONS = {"right": (0, 1), "down": (1, 0)}


def shift_images(x_BxHxWxC, dy: int, dx: int, fill: float = 0.0):
  """Content moved by ``dy`` rows down and ``dx`` columns right (negative: up/left); same shape."""
  _, h, w, _ = x_BxHxWxC.shape
  p = max(abs(dy), abs(dx))
  padded = jnp.pad(x_BxHxWxC, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=fill)
  return padded[:, p - dy:p - dy + h, p - dx:p - dx + w]


def relative_change(a, b):
  """Per-example ``||b - a|| / ||a||`` over all axes but the first."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  axes = tuple(range(1, a.ndim))
  return np.sqrt(np.sum((b - a) ** 2, axes)) / np.maximum(np.sqrt(np.sum(a ** 2, axes)), 1e-12)


def aligned_change(f0_BxHxWxC, f1_BxHxWxC, dy: int, dx: int, jump: int):
  """Per-example relative change of ``f1`` (map of the input shifted by ``(dy, dx)``) against
  ``f0`` moved by ``(dy, dx) / jump`` on their overlap; NaN where ``jump`` does not divide."""
  b = f0_BxHxWxC.shape[0]
  if dy % jump or dx % jump:
    return np.full(b, np.nan)
  ty, tx = dy // jump, dx // jump
  _, h, w, _ = f0_BxHxWxC.shape
  if abs(ty) >= h or abs(tx) >= w:
    return np.full(b, np.nan)
  crop = lambda f, oy, ox: f[:, max(oy, 0):h + min(oy, 0), max(ox, 0):w + min(ox, 0)]
  return relative_change(crop(f0_BxHxWxC, -ty, -tx), crop(f1_BxHxWxC, ty, tx))


def _cosine(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.sum(a * b, -1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1),
                                        1e-12)


def _jumps(feats, input_hw):
  return {k: input_hw // v.shape[1] for k, v in feats.items() if v.ndim == 4}


def analyse(model, variables, x_BxHxWxC, y_B, *, max_shift: int = 4, fill: float = 0.0,
            batch_size: int = 500) -> dict:
  """Metrics (see module doc) for shifts ``0..max_shift`` in each direction of DIRECTIONS:
  ``{direction: {metric: [value per shift]}}`` plus ``'jumps': {stage: stride}``."""
  forward = jax.jit(lambda v, x: models.extract_features(model, v, x))
  per = {d: [dict() for _ in range(max_shift + 1)] for d in DIRECTIONS}
  jumps = None
  for i in range(0, len(x_BxHxWxC), batch_size):
    x, y = jnp.asarray(x_BxHxWxC[i:i + batch_size]), np.asarray(y_B[i:i + batch_size])
    logits0, feats0 = jax.device_get(forward(variables, x))
    jumps = jumps or _jumps(feats0, x.shape[1])
    pred0 = np.argmax(logits0, -1)
    for d, (uy, ux) in DIRECTIONS.items():
      for s in range(max_shift + 1):
        dy, dx = uy * s, ux * s
        logits1, feats1 = jax.device_get(forward(variables, shift_images(x, dy, dx, fill)))
        m = {f"raw/{k}": relative_change(feats0[k], feats1[k]) for k in jumps}
        m.update({f"aligned/{k}": aligned_change(feats0[k], feats1[k], dy, dx, j)
                  for k, j in jumps.items()})
        m["pre_logits_cos"] = _cosine(feats0["pre_logits"], feats1["pre_logits"])
        m["logits_raw"] = relative_change(logits0, logits1)
        pred1 = np.argmax(logits1, -1)
        m["unchanged"] = (pred1 == pred0).astype(np.float64)
        m["accuracy"] = (pred1 == y).astype(np.float64)
        for k, v in m.items():
          per[d][s].setdefault(k, []).append(v)
  out = {d: {k: [float(np.mean(np.concatenate(per[d][s][k]))) for s in range(max_shift + 1)]
             for k in per[d][0]} for d in DIRECTIONS}
  out["jumps"] = jumps
  return out


def load_sweep(sweep_workdir) -> dict:
  """``{downsample: point_workdir}`` of the finished points of the training sweep."""
  points = {}
  for d in sorted(pathlib.Path(sweep_workdir).glob("*/result.json")):
    overrides = json.loads((d.parent / "point.json").read_text())["overrides"]
    points[overrides.get("model.downsample", d.parent.name)] = d.parent
  if not points:
    raise FileNotFoundError(
        f"no finished training runs in {sweep_workdir!r}; train them first with: python "
        "scripts/sweep.py --config=configs/experiments/shift_invariance.py "
        f"--workdir={sweep_workdir} --parallel=2")
  return points


TABLE_METRICS = ("accuracy", "unchanged", "pre_logits_cos", "logits_raw", "raw/stage1",
                 "aligned/stage1", "raw/stage3", "aligned/stage3")


def table(results: dict) -> list[dict]:
  """Rows ``model, direction, shift, metric...`` for every model and shift."""
  rows = []
  for name, r in results.items():
    for d in DIRECTIONS:
      for s in range(len(r[d]["accuracy"])):
        rows.append({"model": name, "direction": d, "shift": s,
                     **{k: round(r[d][k][s], 4) for k in TABLE_METRICS}})
  return rows


PLOTS = (("accuracy", "eval accuracy"), ("unchanged", "prediction unchanged (fraction)"),
         ("pre_logits_cos", "cos(pre_logits)"), ("raw/stage1", "stage1 raw rel. change"),
         ("raw/stage3", "stage3 raw rel. change"), ("logits_raw", "logits rel. change"))


def plot(results: dict, out_path: str) -> str:
  """Curves vs shift (one line per model; solid: right, dashed: down), one panel per metric."""
  plt = plotting.plt
  fig, axes = plt.subplots(2, 3, figsize=(11, 6))
  colors = dict(zip(results, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
  for ax, (key, label) in zip(axes.flat, PLOTS):
    for name, r in results.items():
      for d, style in zip(DIRECTIONS, ("o-", "s--")):
        v = np.asarray(r[d][key])
        s = np.arange(len(v))
        ok = ~np.isnan(v)
        ax.plot(s[ok], v[ok], style, color=colors[name], ms=4,
                label=f"{name} ({d})" if d == "right" else None)
    ax.set_title(label, fontsize=10)
    ax.set_xlabel("shift (pixels)")
    ax.set_xticks(range(len(v)))
    ax.grid(alpha=0.3)
  axes.flat[0].legend(fontsize=8, title="solid: right, dashed: down", title_fontsize=8)
  return plotting.save(fig, out_path, dpi=80)


def run(config, workdir: str) -> dict:
  """Analyses every finished run of the sweep in ``config.sweep_workdir`` (shifts up to
  ``config.max_shift`` pixels, the first ``config.limit`` eval digits, 0 = all); writes
  shift_invariance.{json,md,png}."""
  check_number(config, "max_shift", 0, integer=True)
  check_number(config, "limit", 0, integer=True)
  results = {}
  for name, point in load_sweep(config.sweep_workdir).items():
    run_config, model, variables = workdir_lib.load(point)
    x, y = eval_data.eval_arrays(run_config, config.limit or None)
    fill = float((0.0 - run_config.data.mean[0]) / run_config.data.std[0])  # a zero pixel
    results[name] = analyse(model, variables, x, y, max_shift=config.max_shift, fill=fill)
  rows = table(results)
  report.write(workdir, "shift_invariance", rows, extra={"results": results})
  plot(results, os.path.join(workdir, "shift_invariance.png"))
  return {"rows": rows}
