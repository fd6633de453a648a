"""Bai et al.'s sequence tasks and the forecasting windows, checked by brute force.

References: the task definitions (Bai, Kolter & Koltun 2018, Sec. 4 / their locuslab/TCN
generators), IDX files written here with ``struct``, and the statsmodels series read directly.
"""

import struct

import numpy as np
import pytest

from cnnlab import data
from cnnlab.data.builders import forecast


def test_adding_targets_brute_force():
  source, info = data.load("adding", "train", seq_len=50, num_train=20)
  assert info == data.DataInfo("sequence", "target", (50, 2), "float32", 0,
                               {"train": 20, "test": 1000})
  for i in range(len(source)):
    x, y = source[i]["sequence"], source[i]["target"]
    marked = [t for t in range(50) if x[t, 1] == 1.0]
    assert len(marked) == 2 and set(np.unique(x[:, 1])) == {0.0, 1.0}
    assert np.all((0 <= x[:, 0]) & (x[:, 0] < 1))
    assert y == pytest.approx(x[marked[0], 0] + x[marked[1], 0], abs=1e-6)
  again, _ = data.load("adding", "train", seq_len=50, num_train=20)
  np.testing.assert_array_equal(again[7]["sequence"], source[7]["sequence"])  # deterministic
  test, _ = data.load("adding", "test", seq_len=50)
  other_seed, _ = data.load("adding", "train", seq_len=50, seed=1)
  assert not np.array_equal(test[7]["sequence"], source[7]["sequence"])
  assert not np.array_equal(other_seed[7]["sequence"], source[7]["sequence"])
  assert len(data.load("adding", "train")[0][0]["sequence"]) == 600  # Bai et al.'s T


def test_copy_memory_brute_force():
  t, m = 30, 10
  source, info = data.load("copy_memory", "test", seq_len=t)
  assert info.input_shape == (t + 2 * m, 1) and info.num_classes == 10
  assert len(source) == 1000
  for i in range(5):
    x, y = source[i]["sequence"][:, 0], source[i]["label"]
    assert x.shape == y.shape == (t + 2 * m,)
    assert all(1 <= v <= 8 for v in x[:m])
    assert list(x[m:m + t - 1]) == [0] * (t - 1) and list(x[m + t - 1:]) == [9] * (m + 1)
    assert list(y[:m + t]) == [0] * (m + t) and list(y[-m:]) == list(x[:m].astype(int))
  assert data.load("copy_memory", "train")[1].input_shape == (1020, 1)


def test_bad_task_options():
  with pytest.raises(data.DataError, match="seq_len=1 is invalid") as e:
    data.load("adding", "train", seq_len=1)
  assert e.value.field == "seq_len"
  with pytest.raises(data.DataError, match="takes no option 'memory_length'"):
    data.load("adding", "train", memory_length=3)
  with pytest.raises(data.DataError, match=r"has splits \['train', 'test'\]"):
    data.load("copy_memory", "valid")


def write_idx(path, array):
  raw = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
  path.write_bytes(raw + array.astype(np.uint8).tobytes())


def test_sequential_and_permuted_mnist(tmp_path):
  rng = np.random.default_rng(0)
  images, labels = rng.integers(0, 256, (6, 28, 28), np.uint8), np.arange(6, dtype=np.uint8)
  (tmp_path / "idx").mkdir()
  write_idx(tmp_path / "idx" / "images-idx3-ubyte", images)
  write_idx(tmp_path / "idx" / "labels-idx1-ubyte", labels)
  kw = dict(data_dir=tmp_path / "tfds", manual_dir=tmp_path / "idx")
  seq, info = data.load("sequential_mnist", "train[2:5]", **kw)
  assert info == data.DataInfo("sequence", "label", (784, 1), "uint8", 10, {"train": 6})
  perm, _ = data.load("permuted_mnist", "train[2:5]", permutation_seed=3, **kw)
  order = np.random.default_rng(3).permutation(784)
  assert sorted(order) == list(range(784))
  for i in range(3):
    pixels = [images[2 + i][r, c] for r in range(28) for c in range(28)]  # row-major
    np.testing.assert_array_equal(seq[i]["sequence"][:, 0], pixels)
    np.testing.assert_array_equal(perm[i]["sequence"][:, 0], [pixels[j] for j in order])
    assert seq[i]["label"] == perm[i]["label"] == 2 + i


def test_forecast_windows_and_rolling_origins():
  source, info = data.load("co2", "test")
  from statsmodels import datasets  # the raw weekly series
  weekly = datasets.co2.load().data["co2"]
  y = forecast.series("co2")
  assert len(y) == 526  # 1958-03 .. 2001-12 monthly
  march_1958 = weekly[(weekly.index.year == 1958) & (weekly.index.month == 3)].dropna()
  assert y[0] == pytest.approx(march_1958.mean(), abs=1e-4)
  h, k, test_size = 48, 12, 120
  assert info == data.DataInfo("history", "target", (h, 1), "float32", 0,
                               {"train": 526 - test_size - k - h + 1, "test": test_size - k + 1,
                                "all": 526 - h - k + 1})
  origins = [source[i]["origin"] for i in range(len(source))]
  assert origins == list(range(526 - test_size, 526 - k + 1))
  for i in (0, len(source) - 1):
    o = origins[i]
    np.testing.assert_array_equal(source[i]["history"][:, 0], y[o - h:o])
    np.testing.assert_array_equal(source[i]["target"], y[o:o + k])
  train, _ = data.load("co2", "train")
  last = train[len(train) - 1]
  assert last["origin"] + k == 526 - test_size  # no training target inside the test period
  with pytest.raises(data.DataError, match="test_size=5 is invalid") as e:
    data.load("sunspots", "test", test_size=5)
  assert e.value.field == "test_size"


def test_seasonal_naive_brute_force():
  hist = np.arange(40, dtype=np.float32).reshape(2, 20)
  got = forecast.seasonal_naive(hist, horizon=7, period=3)
  for b in range(2):
    for step in range(7):
      back = 3 * (step // 3 + 1)  # the latest observation at the same phase
      assert got[b, step] == hist[b, 20 + step - back]
