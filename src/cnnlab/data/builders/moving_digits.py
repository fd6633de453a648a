"""Moving digits: MNIST digits bouncing in a frame (Srivastava, Mansimov & Salakhutdinov 2015,
"Unsupervised Learning of Video Representations using LSTMs"), labelled by their direction.

A view of the ``mnist`` dataset (download or IDX files in ``manual_dir``, same splits and
slicing): clip ``i`` of a slice of ``n`` digits moves digit ``i`` of the slice (and, with
``num_digits=2``, digit ``(i + 1) % n`` too). Example:

- ``video`` uint8 ``(T, S, S, 1)``, ``T = num_frames``, ``S = frame_size``; each digit is its
  28x28 box pasted at its position, overlapping digits combined by max;
- ``label`` int: ``direction`` (``target='direction'``, 8 classes) or ``digit``
  (``target='digit'``, 10 classes);
- ``direction`` int 0..7: the digits' initial velocity is ``speed * DIRECTIONS[direction]``,
  ``(dy, dx)`` with y pointing down, i.e. ``45 * direction`` degrees counter-clockwise from east
  (0 east, 1 north-east, 2 north, ..., 6 south, 7 south-east); all digits of a clip share the
  direction, each draws its own speed from ``SPEEDS``;
- ``digit`` int: the class of the first digit;
- ``positions`` float32 ``(T, num_digits, 2)``: the centre ``(y, x)`` of each digit's box per
  frame (top-left corner + 13.5).

Motion: the box corner moves by its integer velocity each frame inside ``[0, S - 28]`` and is
reflected at the borders (the velocity component flips). The label is the direction the digits
move in at the middle frame ``m = T // 2``: their corners there are uniform over ``[0, S - 28]``
whatever the direction, and the clip runs forwards and backwards from there (frame 0 is where
the motion through frame ``m`` came from). So one frame — the middle one exactly, the others
nearly — shows nothing of the direction, the point of the task; the frames around ``m`` show it
(the step ``m -> m + 1`` is ``speed * DIRECTIONS[direction]`` unless it meets a border). An
earlier version labelled the first step's direction and held the start away from the borders
the digit moved to: the middle frame's position then gave the direction away (a single-frame
net reached 50 %; ``tests/data/test_moving_digits.py`` checks it no longer can).
Per clip from ``np.random.default_rng([seed, split, index])`` (``split``, ``index``: the first
digit's whole split and index there, :func:`cnnlab.data.sources.absolute_indices`): the same
clip whatever the slice, random access, nothing stored. Another IDX folder gives clips of digits
the model never saw (the motions of the same indices repeat).
"""

from __future__ import annotations

import numpy as np

from cnnlab.data import views

OPTIONS = {"num_frames": 16, "frame_size": 64, "num_digits": 1, "seed": 0,
           "target": "direction"}
DIGIT = 28  # MNIST side
SPEEDS = (2, 3, 4)  # pixels per frame, along each moving axis
DIRECTIONS = np.array([[0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1], [1, -1], [1, 0], [1, 1]])
TARGETS = {"direction": 8, "digit": 10}


def corners(start_Dx2, velocity_Dx2, num_frames: int, span: int, origin: int = 0) -> np.ndarray:
  """Top-left corners ``(T, D, 2)`` of boxes at ``start`` in frame ``origin``, moving by
  ``velocity`` per frame inside ``[0, span]``, mirrored at the borders (a triangle wave of period
  ``2 * span``)."""
  p = start_Dx2 + (np.arange(num_frames) - origin)[:, None, None] * velocity_Dx2
  q = np.mod(p, 2 * span)
  return np.where(q <= span, q, 2 * span - q)


def render(digits_Dx28x28, corners_TxDx2, size: int) -> np.ndarray:
  """uint8 ``(T, size, size)``: each digit pasted at its corner per frame, max over digits."""
  t = np.arange(len(corners_TxDx2))[:, None, None]
  r = np.arange(DIGIT)
  video = np.zeros((len(corners_TxDx2), size, size), np.uint8)
  for d, digit in enumerate(digits_Dx28x28):  # num_digits <= 2 passes, vectorised over frames
    ys = corners_TxDx2[:, d, 0, None, None] + r[:, None]
    xs = corners_TxDx2[:, d, 1, None, None] + r
    video[t, ys, xs] = np.maximum(video[t, ys, xs], digit)
  return video


def clip_fn(source, ids, o):
  """``fn(i)`` -> clip ``i`` (see module doc); ``ids``: the digits' absolute indices."""
  n, num_d, num_t = len(source), o["num_digits"], o["num_frames"]
  span = o["frame_size"] - DIGIT

  def fn(i):
    rng = np.random.default_rng([o["seed"], *ids[i]])
    records = [source[(i + d) % n] for d in range(num_d)]
    direction = int(rng.integers(len(DIRECTIONS)))
    velocity = DIRECTIONS[direction] * rng.choice(SPEEDS, size=(num_d, 1))
    middle = rng.integers(0, span + 1, size=velocity.shape)
    c = corners(middle, velocity, num_t, span, origin=num_t // 2)
    video = render(np.stack([r["image"][..., 0] for r in records]), c, o["frame_size"])
    digit = int(records[0]["label"])
    return {"video": video[..., None], "label": direction if o["target"] == "direction" else digit,
            "direction": direction, "digit": digit,
            "positions": (c + (DIGIT - 1) / 2).astype(np.float32)}
  return fn


def check(o, DataError):  # noqa: N803
  """Raise ``DataError`` naming the first option ``o`` the task cannot use."""
  for k, low in (("num_frames", 2), ("seed", 0)):
    if not isinstance(o[k], int) or o[k] < low:
      raise DataError(k, f"{k}={o[k]!r} is invalid (allowed: an int >= {low})")
  if o["num_digits"] not in (1, 2):
    raise DataError("num_digits", f"num_digits={o['num_digits']!r} is invalid (allowed: 1, 2)")
  if o["target"] not in TARGETS:
    raise DataError("target", f"target={o['target']!r} is invalid (allowed: {list(TARGETS)})")
  low = DIGIT + max(SPEEDS)
  if not isinstance(o["frame_size"], int) or o["frame_size"] < low:
    raise DataError("frame_size", f"frame_size={o['frame_size']!r} is invalid (allowed: an int "
                    f">= 28 + {max(SPEEDS)} = {low}, so that a digit can take its first step)")


def load(name, split, *, data_dir=None, manual_dir=None, **options):
  """``(source, DataInfo)`` of ``moving_digits`` (see module doc)."""
  from cnnlab.data import sources  # noqa: PLC0415 - sources imports this module lazily
  check(options, sources.DataError)
  digits, info = sources.load("mnist", split, data_dir=data_dir, manual_dir=manual_dir)
  ids = sources.absolute_indices(split, info.splits)
  o = options
  shape = (o["num_frames"], o["frame_size"], o["frame_size"], 1)
  return (views.Computed(len(digits), clip_fn(digits, ids, o)),
          sources.DataInfo("video", "label", shape, "uint8", TARGETS[o["target"]], info.splits))
