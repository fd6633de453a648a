"""Digit segmentation: MNIST digits scattered on a canvas with per-pixel class labels
(M2NIST-style; semantic and instance masks).

A view of the ``mnist`` dataset (download or IDX files in ``manual_dir``, same splits and
slicing): canvas ``i`` of a slice of ``n`` digits draws ``m`` (uniform in ``min_digits ..
max_digits``) of the digits ``i, i + 1, ... (mod n)`` of the slice, in that order. Each digit is
resized to ``h x h`` pixels, ``h = round(28 * scale)``, ``scale`` uniform in ``scale_range``
(``scipy.ndimage.zoom``, bilinear with aligned corners), and pasted with its top-left corner
uniform over the canvas. A digit's mask is where its resized pixels are ``>= threshold``; later
digits are drawn on top: inside its mask the canvas takes its pixels, its class and its instance
number; elsewhere in its box the canvas keeps the max of both (faint edges change no label). So
``label != BACKGROUND`` exactly where ``image >= threshold``. Example:

- ``image`` uint8 ``(S, S, 1)``, ``S = canvas_size``;
- ``label`` uint8 ``(S, S)``: the class 0..9 of the digit seen at each pixel, ``BACKGROUND`` = 10
  elsewhere (11 classes);
- ``instances`` uint8 ``(S, S)``: 0 background, ``k`` where the ``k``-th drawn digit is seen
  (1-based; a digit covered entirely by later ones has no pixel);
- ``boxes`` int32 ``(max_digits, 4)``: ``(top, left, height, width)`` of the ``k``-th drawn
  digit in row ``k - 1``, zeros for the rows of digits not drawn;
- ``classes`` uint8 ``(max_digits,)``: the class of the ``k``-th drawn digit, ``BACKGROUND`` for
  rows not drawn.

With ``overlap=False`` a digit's box may not intersect an earlier one's: its corner is uniform
over the corners that keep it clear, and a digit with no such corner is skipped (not drawn, not
counted), so a crowded canvas holds fewer than ``m`` digits (deterministically; with the
defaults, one 28x28 box near the middle of the 64x64 canvas leaves no room for another).
Per canvas from ``np.random.default_rng([seed, split, index])`` (``split``, ``index``: the first
digit's whole split and index there, :func:`cnnlab.data.sources.absolute_indices`): the same
canvas whatever the slice, random access, nothing stored. Another IDX folder gives canvases of
digits the model never saw.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cnnlab.data import views

OPTIONS = {"canvas_size": 64, "min_digits": 1, "max_digits": 3, "scale_range": (0.75, 1.25),
           "overlap": True, "threshold": 64, "seed": 0}
DIGIT = 28  # MNIST side
BACKGROUND = 10


def resize(image_HxW, size: int) -> np.ndarray:
  """uint8 ``(size, size)``: ``image`` resized bilinearly (corners aligned), rounded."""
  z = ndimage.zoom(image_HxW.astype(np.float32), size / image_HxW.shape[0], order=1,
                   mode="nearest")  # 'constant' zeroes the last row/column (rounding past it)
  return np.clip(np.rint(z), 0, 255).astype(np.uint8)


def place(rng, sizes, canvas_size: int, overlap: bool) -> list:
  """``(top, left)`` per digit of side ``sizes[j]``, uniform over the canvas or, without
  ``overlap``, over the corners whose box meets no earlier box; None where there is none."""
  placed, out = [], []
  for h in sizes:  # a few digits per canvas
    free = np.ones((canvas_size - h + 1,) * 2, bool)
    for t, l, s in placed if not overlap else ():
      free[max(0, t - h + 1):t + s, max(0, l - h + 1):l + s] = False
    corners = np.flatnonzero(free)
    if not len(corners):
      out.append(None)
      continue
    y, x = divmod(int(rng.choice(corners)), free.shape[1])
    placed.append((y, x, h))
    out.append((y, x))
  return out


def canvas_fn(source, ids, o):
  """``fn(i)`` -> canvas ``i`` (see module doc); ``ids``: the digits' absolute indices."""
  n, size, k_max = len(source), o["canvas_size"], o["max_digits"]

  def fn(i):
    rng = np.random.default_rng([o["seed"], *ids[i]])
    m = int(rng.integers(o["min_digits"], k_max + 1))
    sizes = [max(1, int(round(DIGIT * s))) for s in rng.uniform(*o["scale_range"], size=m)]
    corners = place(rng, sizes, size, o["overlap"])
    image = np.zeros((size, size), np.uint8)
    label = np.full((size, size), BACKGROUND, np.uint8)
    instances = np.zeros((size, size), np.uint8)
    boxes = np.zeros((k_max, 4), np.int32)
    classes = np.full(k_max, BACKGROUND, np.uint8)
    k = 0
    for j, (h, corner) in enumerate(zip(sizes, corners)):
      if corner is None:
        continue
      record = source[(i + j) % n]
      digit = resize(record["image"][..., 0], h)
      mask = digit >= o["threshold"]
      box = np.s_[corner[0]:corner[0] + h, corner[1]:corner[1] + h]
      image[box] = np.where(mask, digit, np.maximum(image[box], digit))
      label[box][mask] = record["label"]
      instances[box][mask] = k + 1
      boxes[k], classes[k] = (*corner, h, h), record["label"]
      k += 1
    return {"image": image[..., None], "label": label, "instances": instances,
            "boxes": boxes, "classes": classes}
  return fn


def check(o, DataError):  # noqa: N803
  """Raise ``DataError`` naming the first option ``o`` the task cannot use."""
  for k, low, high in (("min_digits", 1, 255), ("max_digits", o["min_digits"], 255),
                       ("threshold", 1, 255), ("seed", 0, None)):
    if not isinstance(o[k], int) or o[k] < low or (high is not None and o[k] > high):
      allowed = f"an int in {low}..{high}" if high is not None else f"an int >= {low}"
      raise DataError(k, f"{k}={o[k]!r} is invalid (allowed: {allowed})")
  r = o["scale_range"]
  if not (isinstance(r, (tuple, list)) and len(r) == 2 and 0 < r[0] <= r[1]):
    raise DataError("scale_range", f"scale_range={r!r} is invalid (allowed: (low, high) with "
                    "0 < low <= high)")
  if not isinstance(o["overlap"], bool):
    raise DataError("overlap", f"overlap={o['overlap']!r} is invalid (allowed: True, False)")
  low = round(DIGIT * r[1])
  if not isinstance(o["canvas_size"], int) or o["canvas_size"] < low:
    raise DataError("canvas_size", f"canvas_size={o['canvas_size']!r} is invalid (allowed: an "
                    f"int >= round(28 * scale_range[1]) = {low})")


def load(name, split, *, data_dir=None, manual_dir=None, **options):
  """``(source, DataInfo)`` of ``digit_segmentation`` (see module doc)."""
  from cnnlab.data import sources  # noqa: PLC0415 - sources imports this module lazily
  check(options, sources.DataError)
  digits, info = sources.load("mnist", split, data_dir=data_dir, manual_dir=manual_dir)
  ids = sources.absolute_indices(split, info.splits)
  size = options["canvas_size"]
  return (views.Computed(len(digits), canvas_fn(digits, ids, options)),
          sources.DataInfo("image", "label", (size, size, 1), "uint8", BACKGROUND + 1,
                           info.splits))
