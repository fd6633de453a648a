"""``scripts/evaluate.py`` on canvases composed from another IDX folder (``--config.data.
manual_dir=DIR``): a U-Net trained 2 steps on one folder is evaluated on canvases of another's
digits; the printed mIoU, pixel accuracy and count equal those computed here from the restored
model's predictions on the same canvases (sklearn's IoU)."""

import struct

import jax
import numpy as np
import pytest
from sklearn.metrics import jaccard_score

from cnnlab import data, train
from cnnlab.train import workdir as workdir_lib
from conftest import REPO, evaluate_cli, load_config_module

CONFIG = REPO / "configs" / "dense" / "unet_digit_segmentation.py"


def _idx_folder(path, seed, n):
  rng = np.random.default_rng(seed)
  images = np.zeros((n, 28, 28), np.uint8)
  images[:, 6:22, 10:18] = rng.integers(100, 256, (n, 16, 8))  # a bright bar per "digit"
  path.mkdir()
  for name, arr in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", np.arange(n) % 10)):
    arr = np.asarray(arr, np.uint8)
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    (path / name).write_bytes(header + arr.tobytes())
  return path


@pytest.mark.slow  # trains and compiles a U-Net: ~40 s quiet, ~110 s on 2 shared cores
def test_evaluate_segmentation_on_another_idx_folder(tmp_path, capsys):
  tfds_dir, run = tmp_path / "tfds", tmp_path / "run"
  c = load_config_module(CONFIG).get_config("smoke")
  c.data.update(manual_dir=str(_idx_folder(tmp_path / "a", 0, 40)), data_dir=str(tfds_dir),
                train_split="train[:32]", eval_split="train[32:]")
  train.train_and_evaluate(c, str(run))
  other = _idx_folder(tmp_path / "b", 1, 9)
  result = evaluate_cli(f"{CONFIG}:smoke", run, capsys, f"--config.data.manual_dir={other}",
                        "--config.data.eval_split=train", f"--config.data.data_dir={tfds_dir}")
  assert result["num_examples"] == 9

  source, _ = data.load("digit_segmentation", "train", manual_dir=str(other),
                        data_dir=str(tfds_dir))
  x = np.stack([source[i]["image"] for i in range(9)]).astype(np.float32) / 255
  y = np.stack([source[i]["label"] for i in range(9)])
  x = (x - c.data.mean[0]) / c.data.std[0]
  _, model, variables = workdir_lib.load(run)
  pred = np.asarray(jax.jit(model.apply)(variables, x)).argmax(-1)
  present = sorted(set(y.ravel()) | set(pred.ravel()))
  np.testing.assert_allclose(result["miou"], jaccard_score(y.ravel(), pred.ravel(),
                                                           labels=present, average="macro"),
                             rtol=1e-6)
  np.testing.assert_allclose(result["pixel_accuracy"], np.mean(pred == y), rtol=1e-6)
