"""The Grain pipeline's per-batch augmentation and the per-example stage for images of varying
size, against brute force."""

import subprocess
import sys

import numpy as np
import pytest

from cnnlab import train
from cnnlab.data import DataInfo, pipeline


def _cfg(**kw):
  cfg = train.base().data
  cfg.update(kw)
  return cfg


def test_random_crop_outputs_are_windows_of_the_padded_input():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 255, (20, 6, 7, 2), dtype=np.uint8)
  source = [{"image": im, "label": i} for i, im in enumerate(images)]
  info = DataInfo("image", "label", (6, 7, 2), "uint8", 20, {"train": 20})
  it = iter(pipeline.train_dataset(source, info, _cfg(random_crop_padding=2, random_flip=True),
                                   batch_size=5, seed=0))
  batch = next(it)
  p = 2
  for x, label in zip(batch["inputs"], batch["label"]):
    padded = np.pad(images[label].astype(np.float32) / 255, ((p, p), (p, p), (0, 0)))
    candidates = [padded[i:i + 6, j:j + 7] for i in range(2 * p + 1) for j in range(2 * p + 1)]
    candidates += [c[:, ::-1] for c in candidates]
    assert any(np.array_equal(x, c) for c in candidates)


def test_varying_size_images_are_cropped_and_resized():
  sizes = [(40, 60), (33, 33), (50, 20), (64, 48)]
  images = []
  for h, w in sizes:  # constant 200 in the central 87.5 % square, 0 outside it
    img = np.zeros((h, w, 3), np.uint8)
    c = 0.875 * min(h, w)
    top, left = (h - c) / 2, (w - c) / 2
    img[int(np.ceil(top)):int(top + c), int(np.ceil(left)):int(left + c)] = 200
    images.append(img)
  source = [{"image": im, "label": i} for i, im in enumerate(images)]
  info = DataInfo("image", "label", (None, None, 3), "uint8", 4, {"train": 4})
  cfg = _cfg(image_size=16)
  batch = next(pipeline.eval_batches(source, info, cfg, batch_size=4))
  assert batch["inputs"].shape == (4, 16, 16, 3) and batch["mask"].all()
  inner = batch["inputs"][:, 2:-2, 2:-2]  # away from the crop border's interpolation
  np.testing.assert_allclose(inner, 200 / 255, atol=1e-6)
  train_batch = next(iter(pipeline.train_dataset(source, info, cfg, batch_size=4, seed=0)))
  assert train_batch["inputs"].shape == (4, 16, 16, 3)
  assert 0 <= train_batch["inputs"].min() and train_batch["inputs"].max() <= 200 / 255 + 1e-6


def test_varying_size_needs_an_image_size(tmp_path, monkeypatch):
  info = DataInfo("image", "label", (None, None, 3), "uint8", 10, {"train": 8, "test": 8})
  src = [{"image": np.zeros((9, 9, 3), np.uint8), "label": 0}] * 8
  monkeypatch.setattr("cnnlab.data.load", lambda *a, **k: (src, info))
  config = train.apply_arg(train.base(), "smoke")
  config.batch_size = 4
  with pytest.raises(train.ConfigError, match="image_size=0 is invalid: .*varying size"):
    train.train_and_evaluate(config, str(tmp_path))


def test_parallel_jobs_prepare_a_dataset_once(tmp_path):
  """Sweep jobs start together on a fresh data_dir: one prepares, the others wait and reuse."""
  code = ("from cnnlab import data; s, _ = data.load('digits', 'test', data_dir=%r); "
          "print(len(s))" % str(tmp_path))
  procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for _ in range(4)]
  outs = [p.communicate(timeout=300) for p in procs]
  assert [p.returncode for p in procs] == [0] * 4, [o[1][-2000:] for o in outs]
  assert [o[0].strip().splitlines()[-1] for o in outs] == ["360"] * 4
