"""digit_segmentation checked against canvases rebuilt here from the digits written as IDX files:
pasted with numpy, resized with torch's bilinear interpolation (aligned corners)."""

import struct

import numpy as np
import pytest
import torch

from cnnlab import data

N, THR, BG = 6, 64, 10


def write_idx(path, array):
  raw = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
  path.write_bytes(raw + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
  root = tmp_path_factory.mktemp("segmentation")
  rng = np.random.default_rng(0)
  images = (rng.integers(0, 256, (N, 28, 28)) * (rng.random((N, 28, 28)) < 0.5)).astype(np.uint8)
  labels = np.array([3, 1, 4, 1, 5, 9], np.uint8)
  (root / "idx").mkdir()
  write_idx(root / "idx" / "images-idx3-ubyte", images)
  write_idx(root / "idx" / "labels-idx1-ubyte", labels)
  return images, labels, dict(data_dir=root / "tfds", manual_dir=root / "idx")


def drawn(e):
  return [tuple(b) for b in e["boxes"] if b[2] > 0]


def test_separate_digits_are_thresholded_pastes(digits):
  images, labels, kw = digits
  source, info = data.load("digit_segmentation", "train[1:]", canvas_size=84, min_digits=2,
                           max_digits=2, scale_range=(1.0, 1.0), overlap=False, **kw)
  assert info == data.DataInfo("image", "label", (84, 84, 1), "uint8", 11, {"train": N})
  for i in range(len(source)):
    e = source[i]
    assert e["image"].shape == (84, 84, 1) and e["label"].shape == e["instances"].shape == (84, 84)
    assert {e[k].dtype for k in ("image", "label", "instances", "classes")} == {np.dtype(np.uint8)}
    boxes = drawn(e)
    assert len(boxes) == 2 and all(h == w == 28 for _, _, h, w in boxes)
    (y0, x0, _, _), (y1, x1, _, _) = boxes
    assert abs(y0 - y1) >= 28 or abs(x0 - x1) >= 28  # boxes do not overlap
    image = np.zeros((84, 84), np.uint8)
    label = np.full((84, 84), BG, np.uint8)
    for k, (y, x, _, _) in enumerate(boxes):
      j = 1 + (i + k) % (N - 1)  # digit (i + k) mod n of the slice train[1:]
      assert e["classes"][k] == labels[j]
      image[y:y + 28, x:x + 28] = images[j]
      label[y:y + 28, x:x + 28][images[j] >= THR] = labels[j]
      np.testing.assert_array_equal(e["instances"][y:y + 28, x:x + 28] == k + 1,
                                    images[j] >= THR)
    np.testing.assert_array_equal(e["image"][..., 0], image)
    np.testing.assert_array_equal(e["label"], label)
    assert np.count_nonzero(e["instances"]) == np.count_nonzero(label != BG)


def bilinear(img, size):
  t = torch.tensor(img, dtype=torch.float64)[None, None]
  return torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear",
                                         align_corners=True)[0, 0].numpy()


def test_scaled_overlapping_digits_later_on_top(digits):
  images, labels, kw = digits
  source, _ = data.load("digit_segmentation", "train", canvas_size=42, min_digits=2,
                        max_digits=4, scale_range=(0.5, 1.5), **kw)
  sizes = set()
  for i in range(N):
    e = source[i]
    boxes = drawn(e)
    assert 2 <= len(boxes) <= 4 and all(e["classes"][len(boxes):] == BG)
    want_label = np.full((42, 42), BG)
    want_inst = np.zeros((42, 42), int)
    want_image = np.zeros((42, 42))
    unsure = np.zeros((42, 42), bool)  # resized values within 1 of the threshold
    for k, (y, x, h, w) in enumerate(boxes):
      assert h == w and 14 <= h <= 42 and y + h <= 42 and x + w <= 42
      sizes.add(h)
      j = (i + k) % N
      d = np.rint(bilinear(images[j], h))
      box = np.s_[y:y + h, x:x + h]
      mask = d >= THR
      unsure[box] |= np.abs(bilinear(images[j], h) - THR) < 1
      want_image[box] = np.where(mask, d, np.maximum(want_image[box], d))
      want_label[box][mask] = labels[j]
      want_inst[box][mask] = k + 1
    sure = ~unsure
    np.testing.assert_array_equal(e["label"][sure], want_label[sure])
    np.testing.assert_array_equal(e["instances"][sure], want_inst[sure])
    np.testing.assert_allclose(e["image"][..., 0][sure], want_image[sure], atol=1)
    # conventions that hold exactly
    np.testing.assert_array_equal(e["label"] != BG, e["image"][..., 0] >= THR)
    np.testing.assert_array_equal(e["instances"] == 0, e["label"] == BG)
    for k in range(len(boxes)):
      assert np.all(e["label"][e["instances"] == k + 1] == e["classes"][k])
  assert len(sizes) > 3


def test_determinism_slices_and_crowding(digits):
  kw = digits[2]
  source, _ = data.load("digit_segmentation", "train", canvas_size=40, **kw)
  again, _ = data.load("digit_segmentation", "train", canvas_size=40, **kw)
  sliced, _ = data.load("digit_segmentation", "train[2:4]", canvas_size=40, **kw)
  other, _ = data.load("digit_segmentation", "train", canvas_size=40, seed=5, **kw)
  for k in ("image", "label", "instances", "boxes"):
    np.testing.assert_array_equal(again[2][k], source[2][k])
    np.testing.assert_array_equal(sliced[0][k], source[2][k])
  assert any(not np.array_equal(other[i]["boxes"], source[i]["boxes"]) for i in range(N))
  crowded, _ = data.load("digit_segmentation", "train", canvas_size=28, min_digits=3,
                         max_digits=3, scale_range=(1.0, 1.0), overlap=False, **kw)
  for i in range(N):  # any two 28x28 boxes on a 28x28 canvas overlap: one digit is drawn
    e = crowded[i]
    assert drawn(e) == [(0, 0, 28, 28)] and list(e["classes"][1:]) == [BG, BG]


@pytest.mark.parametrize("options, field, match", [
    ({"min_digits": 3, "max_digits": 2}, "max_digits",
     r"max_digits=2 is invalid \(allowed: an int in 3..255\)"),
    ({"min_digits": 0}, "min_digits", r"min_digits=0 is invalid \(allowed: an int in 1..255\)"),
    ({"scale_range": (0.0, 1.0)}, "scale_range", r"0 < low <= high"),
    ({"scale_range": (1.0, 2.5)}, "canvas_size",
     r"canvas_size=64 is invalid \(allowed: an int >= .* = 70\)"),
    ({"overlap": "no"}, "overlap", r"overlap='no' is invalid \(allowed: True, False\)"),
    ({"threshold": 0}, "threshold", r"threshold=0 is invalid \(allowed: an int in 1..255\)"),
])
def test_bad_options(digits, options, field, match):
  with pytest.raises(data.DataError, match=match) as e:
    data.load("digit_segmentation", "train", **digits[2], **options)
  assert e.value.field == field
