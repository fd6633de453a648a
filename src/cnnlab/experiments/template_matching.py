"""Template matching by normalised cross-correlation (NCC), every ``cnnlab.ops.conv`` impl.

A patch is cut from a real photo (sklearn's sample images, grayscale in [0, 1]), noise is added,
and it is found again as the argmax of the zero-normalised cross-correlation map

  score[p] = sum_q t'[q] I[p+q] / (||t'|| * sqrt(sum_q (I[p+q] - mean_p)^2)),  t' = t - mean(t),

(``p`` the top-left corner, ``q`` over the ``h x w`` template). Both sums are convolutions (a
conv computes cross-correlation): the numerator correlates ``I`` with ``t'`` (``sum t' = 0``, so
the local mean drops out) and the local sum of squares is ``S2 - S1^2/n`` with ``S1``, ``S2``
box-filter sums of ``I`` and ``I^2`` (a ones kernel). All three go through ``ops.conv(impl=...)``;
the score lies in [-1, 1] (1: an exact affine copy). Shapes: image ``(H, W)``, template
``(h, w)``, score ``(H-h+1, W-w+1)`` (VALID).
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from sklearn.datasets import load_sample_image

from cnnlab import ops, plotting
from cnnlab import report
from cnnlab.ops import conv_auto
from cnnlab.ops.conv_case import make_case
from cnnlab.ops.conv_registry import unsupported_reason
from cnnlab.train.errors import ConfigError
from cnnlab.train.validate import check_number, check_subset

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

IMAGES = ("china.jpg", "flower.jpg")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 grayscale
COLS = ["impl", "status", "found", "true", "score_at_true", "max_abs_diff_vs_lax", "seconds"]


def load_gray(name: str, height: int) -> np.ndarray:
  """Sample photo ``name`` as float32 grayscale in [0, 1], resized (antialiased) to ``height``
  rows, aspect kept: ``(height, round(height * W / H))``."""
  if name not in IMAGES:
    raise ValueError(f"image={name!r} is not one of {IMAGES}")
  if not 8 <= height <= 427:
    raise ValueError(f"height={height!r} must be in [8, 427] (the photos are 427 x 640)")
  gray = load_sample_image(name).astype(np.float32) @ LUMA / 255.0
  size = (height, round(height * gray.shape[1] / gray.shape[0]))
  return np.asarray(jax.image.resize(jnp.asarray(gray), size, "linear", antialias=True))


def ncc(image_HxW, template_hxw, *, impl: str = "lax", min_std: float = 1e-3):
  """Zero-normalised cross-correlation map ``(H-h+1, W-w+1)`` via ``ops.conv(impl=impl)``.

  ``min_std`` floors the local standard deviation (flat regions score ~0, not inf/nan).
  """
  image = jnp.asarray(image_HxW, jnp.float32)
  t = jnp.asarray(template_hxw, jnp.float32)
  if image.ndim != 2 or t.ndim != 2 or any(a < b for a, b in zip(image.shape, t.shape)):
    raise ValueError(f"image {image.shape} and template {t.shape} must be 2D with the template "
                     "no larger than the image")
  n = t.size
  image = image - image.mean()  # NCC is invariant to it; it keeps S2 - S1^2/n well conditioned
  t0 = t - t.mean()
  num = ops.conv(image[None, :, :, None], t0[:, :, None, None], impl=impl)[0, :, :, 0]
  both_2xHxWx1 = jnp.stack([image, image * image])[..., None]
  box = ops.conv(both_2xHxWx1, jnp.ones((*t.shape, 1, 1), jnp.float32), impl=impl)[..., 0]
  ssd = jnp.maximum(box[1] - box[0] ** 2 / n, n * min_std**2)
  return num / (jnp.linalg.norm(t0) * jnp.sqrt(ssd))


def make_problem(cfg):
  """``(image, template, (top, left))``: the patch at ``(top, left)`` plus N(0, noise_std^2)."""
  image = load_gray(cfg.image, cfg.height)
  top, left, size = cfg.top, cfg.left, cfg.size
  if not (0 <= top <= image.shape[0] - size and 0 <= left <= image.shape[1] - size):
    raise ValueError(f"top={top}, left={left}, size={size} do not fit the {image.shape} image")
  noise = np.random.default_rng(cfg.seed).normal(0.0, cfg.noise_std, (size, size))
  return image, (image[top:top + size, left:left + size] + noise).astype(np.float32), (top, left)


def refusal(impl: str, image_shape, template_shape) -> str | None:
  """Why ``impl`` cannot run the matching's convs (the ``ValueError`` ``conv`` would raise)."""
  cases = [((1, *image_shape, 1), (*template_shape, 1, 1)), ((2, *image_shape, 1),
                                                             (*template_shape, 1, 1))]
  for x_shape, w_shape in cases:
    reason = unsupported_reason(impl, make_case(x_shape, w_shape, np.float32, np.float32))
    if reason:
      return reason
  return None


def _auto_choice(image_shape, size) -> str:
  """The impl ``impl='auto'`` runs for the template correlation."""
  return conv_auto.choose(make_case((1, *image_shape, 1), (size, size, 1, 1), np.float32,
                                    np.float32))


def check_config(cfg):
  """A :class:`ConfigError` (one line naming the field and what is allowed) for a config the
  matching cannot run, before anything is computed."""
  if cfg.image not in IMAGES:
    raise ConfigError(f"config.image={cfg.image!r} is invalid (allowed: {IMAGES})")
  check_number(cfg, "height", 8, 427, integer=True)  # the photos have 427 rows
  for field, low in (("size", 1), ("top", 0), ("left", 0)):
    check_number(cfg, field, low, integer=True)
  rows, cols = load_sample_image(cfg.image).shape[:2]
  shape = (cfg.height, round(cfg.height * cols / rows))  # load_gray's
  if cfg.top + cfg.size > shape[0] or cfg.left + cfg.size > shape[1]:
    raise ConfigError(f"config.top={cfg.top}, config.left={cfg.left}, config.size={cfg.size} "
                      f"are invalid: the patch must fit the {shape} image")
  check_number(cfg, "noise_std", 0)
  check_number(cfg, "min_std", 0, low_open=True)
  check_subset(cfg, "impls", ops.list_impls(), "conv impls")
  if cfg.impls and "lax" not in cfg.impls:
    raise ConfigError(f"config.impls={tuple(cfg.impls)!r} is invalid: must include 'lax', the "
                      "reference (or be empty: all)")


def run(cfg, workdir: str) -> dict:
  """Matches with every impl in ``cfg.impls`` (empty: all registered); writes
  ``template_matching.{md,json,png}`` into ``workdir``; returns the numbers."""
  check_config(cfg)
  image, template, true = make_problem(cfg)
  impls = tuple(cfg.impls) or ops.list_impls()
  rows, maps = [], {}
  for impl in impls:
    reason = refusal(impl, image.shape, template.shape)
    if reason:
      rows.append(dict(impl=impl, status=f"refused: {reason}"))
      continue
    t = time.perf_counter()
    score = np.asarray(jax.jit(lambda a, b, i=impl: ncc(a, b, impl=i, min_std=cfg.min_std))(
        image, template))
    maps[impl] = score
    found = tuple(int(v) for v in np.unravel_index(np.argmax(score), score.shape))
    status = "ran" if impl != "auto" else f"ran (chose {_auto_choice(image.shape, cfg.size)})"
    rows.append(dict(impl=impl, status=status, found=found, true=true,
                     score_at_true=float(score[true]), seconds=time.perf_counter() - t))
  for r in rows:
    if r["impl"] in maps:
      r["max_abs_diff_vs_lax"] = float(np.abs(maps[r["impl"]] - maps["lax"]).max())
  lax_map = maps["lax"]
  found = rows[impls.index("lax")]["found"]
  runner_up = _runner_up(lax_map, found, cfg.size)
  result = dict(image=cfg.image, image_shape=list(image.shape), template_size=cfg.size,
                noise_std=cfg.noise_std, true=list(true), found=list(found),
                exact=tuple(found) == tuple(true), score_at_true=float(lax_map[true]),
                runner_up_score=runner_up, all_agree=all(
                    r.get("found", found) == found for r in rows), rows=rows)
  md = _markdown(result)
  report.write(workdir, "template_matching", rows, markdown=md,
               extra={k: v for k, v in result.items() if k != "rows"})
  result["png"] = plot(image, template, lax_map, true, found,
                       os.path.join(workdir, "template_matching.png"))
  result["markdown"] = md
  return result


def _runner_up(score, peak, size) -> float:
  """Best score at least ``size`` pixels (Chebyshev) away from ``peak``: the margin's rival."""
  rr, cc = np.indices(score.shape)
  far = np.maximum(abs(rr - peak[0]), abs(cc - peak[1])) >= size
  return float(score[far].max()) if far.any() else float("nan")


def _markdown(result) -> str:
  rows = []
  for r in result["rows"]:
    rows.append({**r, **{k: ",".join(map(str, r[k])) for k in ("found", "true") if k in r}})
  head = (f"{result['image']} {result['image_shape'][0]}x{result['image_shape'][1]}, "
          f"{result['template_size']}x{result['template_size']} template + N(0, "
          f"{result['noise_std']}^2) noise: true (row, col) {tuple(result['true'])}, found "
          f"{tuple(result['found'])} (exact: {result['exact']}); NCC at the true position "
          f"{result['score_at_true']:.4f}, best NCC >= {result['template_size']} px away "
          f"{result['runner_up_score']:.4f}; all impls that ran agree on the position: "
          f"{result['all_agree']}.")
  return head + "\n\n" + report.markdown_table(rows, COLS)


def plot(image, template, score, true, found, out_path) -> str:
  """Photo with the true (green) and found (red, dashed) boxes, the noisy template, the map."""
  size = template.shape[0]
  fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), width_ratios=(3, 1, 3))
  axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
  for (r, c), style in ((true, dict(ec="lime", lw=2.5)), (found, dict(ec="red", lw=1.5,
                                                                      ls="--"))):
    axes[0].add_patch(Rectangle((c - 0.5, r - 0.5), size, size, fill=False, **style))
  axes[0].set_title("photo: true box (green), found (red dashed)", fontsize=9)
  axes[1].imshow(template, cmap="gray", vmin=0, vmax=1)
  axes[1].set_title("noisy template", fontsize=9)
  im = axes[2].imshow(score, cmap="RdBu_r", vmin=-1, vmax=1)
  axes[2].plot(found[1], found[0], "kx", ms=8, mew=2)
  axes[2].set_title(f"NCC map (max {score.max():.3f} at {tuple(found)})", fontsize=9)
  fig.colorbar(im, ax=axes[2], fraction=0.035)
  for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
  return plotting.save(fig, out_path, dpi=100)
