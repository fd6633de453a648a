"""Bad IDX folders: one clear ValueError naming the file and the fault, and nothing prepared.

Each case breaks one thing in a folder written here with ``struct`` from known arrays, checks the
error, checks that ``data_dir`` holds no prepared dataset, then repairs the folder and checks
that a later run works.
"""

import gzip
import struct

import numpy as np
import pytest
import tensorflow_datasets as tfds

from cnnlab import data
from cnnlab.data.builders import idx
from cnnlab.data.builders import mnist as mnist_builder

IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"


def idx_bytes(array, type_code=0x08, big_endian_dtype=">u1"):
  header = struct.pack(">HBB", 0, type_code, array.ndim)
  header += struct.pack(f">{array.ndim}I", *array.shape)
  return header + np.asarray(array).astype(big_endian_dtype).tobytes()


def good_pair(n=12, size=28):
  rng = np.random.default_rng(0)
  return rng.integers(0, 256, (n, size, size), np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write(folder, images_raw, labels_raw, gz=False, images_name=IMAGES, labels_name=LABELS):
  folder.mkdir(parents=True, exist_ok=True)
  for name, raw in ((images_name, images_raw), (labels_name, labels_raw)):
    if raw is not None:
      (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
  return folder


def _truncated_gz(folder):
  x, y = good_pair()
  write(folder, None, idx_bytes(y), gz=True)
  (folder / f"{IMAGES}.gz").write_bytes(gzip.compress(idx_bytes(x))[:-100])


def _unreadable(folder):
  write(folder, b"PK\x03\x04" + bytes(100), idx_bytes(good_pair()[1]))


# name -> (make the bad folder, regex the error must match).
CASES = {
    "truncated_images": (lambda f: write(f, idx_bytes(good_pair()[0])[:-100],
                                         idx_bytes(good_pair()[1])),
                         rf"{IMAGES}: truncated: header says shape \(12, 28, 28\)"),
    "trailing_bytes": (lambda f: write(f, idx_bytes(good_pair()[0]) + b"\0",
                                       idx_bytes(good_pair()[1])),
                       rf"{IMAGES}: has trailing bytes"),
    "truncated_header": (lambda f: write(f, idx_bytes(good_pair()[0])[:10],
                                         idx_bytes(good_pair()[1])),
                         rf"{IMAGES}: truncated header"),
    "truncated_gzip": (_truncated_gz, rf"{IMAGES}.gz: corrupt or truncated gzip"),
    "labels_file_as_images": (lambda f: write(f, idx_bytes(good_pair()[1]),
                                              idx_bytes(good_pair()[1])),
                              rf"{IMAGES}: wrong magic number 2049 .*expected 2051"),
    "not_idx": (_unreadable, rf"{IMAGES}: wrong magic number"),
    "count_mismatch": (lambda f: write(f, idx_bytes(good_pair()[0]),
                                       idx_bytes(good_pair()[1][:11])),
                       rf"{IMAGES}.*{LABELS}: 12 images but 11 labels"),
    "label_out_of_range": (lambda f: write(f, idx_bytes(good_pair()[0]),
                                           idx_bytes(np.full(12, 10, np.uint8))),
                           rf"{LABELS}: labels must be in \[0, 10\)"),
    "wrong_image_size": (lambda f: write(f, idx_bytes(good_pair(size=32)[0]),
                                         idx_bytes(good_pair()[1])),
                         rf"{IMAGES}: expected uint8 images of size \(28, 28\)"),
    "missing_labels": (lambda f: write(f, idx_bytes(good_pair()[0]), None),
                       rf"missing {LABELS}\(\.gz\) for split 'train'"),
    "raw_and_gz": (lambda f: (write(f, idx_bytes(good_pair()[0]), idx_bytes(good_pair()[1])),
                              write(f, idx_bytes(good_pair()[0]), None, gz=True)),
                   rf"both {IMAGES} and {IMAGES}.gz"),
    "mixed_layouts": (lambda f: (write(f, idx_bytes(good_pair()[0]), idx_bytes(good_pair()[1])),
                                 write(f, idx_bytes(good_pair()[0]), idx_bytes(good_pair()[1]),
                                       images_name="images-idx3-ubyte",
                                       labels_name="labels-idx1-ubyte")),
                      "mixes"),
    "empty_folder": (lambda f: f.mkdir(), "no IDX files found"),
    "not_a_folder": (lambda f: None, "is not a directory"),
}


def assert_nothing_prepared(data_dir):
  assert not list(data_dir.rglob("dataset_info.json"))
  assert not list(data_dir.rglob("*.array_record*"))
  assert not list(data_dir.rglob("incomplete*"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_folder_raises_and_prepares_nothing(tmp_path, case):
  make, message = CASES[case]
  folder, data_dir = tmp_path / "idx", tmp_path / "tfds"
  make(folder)
  with pytest.raises(ValueError, match=message):
    data.load("mnist", "train", data_dir=data_dir, manual_dir=folder)
  assert_nothing_prepared(data_dir)
  for p in folder.glob("*"):
    p.unlink()
  x, y = good_pair()
  write(folder, idx_bytes(x), idx_bytes(y), gz=True)
  source, _ = data.load("mnist", "train", data_dir=data_dir, manual_dir=folder)
  np.testing.assert_array_equal(source[11]["image"], x[11, ..., None])


def test_builder_refuses_a_folder_that_is_not_its_config(tmp_path):
  x, y = good_pair()
  folder_a = write(tmp_path / "a", idx_bytes(x), idx_bytes(y))
  folder_b = write(tmp_path / "b", idx_bytes(x[:6]), idx_bytes(y[:6]))
  builder = mnist_builder.CnnlabMnist(config=mnist_builder.manual_config(folder_a),
                                      data_dir=tmp_path / "tfds")
  with pytest.raises(ValueError, match="not those of config 'manual_"):
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=folder_b))
  assert not builder.is_prepared()
  assert_nothing_prepared(tmp_path / "tfds")


@pytest.mark.parametrize("dtype,code", [(">i2", 0x0B), (">i4", 0x0C), (">f4", 0x0D), (">f8", 0x0E)])
def test_parse_other_idx_types(dtype, code):
  ref = np.arange(-6, 6).reshape(3, 4).astype(dtype)
  got = idx.parse(idx_bytes(ref, code, dtype), "x")
  assert got.dtype == np.dtype(dtype).newbyteorder("=")
  np.testing.assert_array_equal(got, ref)


def test_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="dataset 'digits' takes no manual_dir"):
    data.load("digits", "train", data_dir=tmp_path, manual_dir=tmp_path)
  with pytest.raises(ValueError, match=r"unknown dataset 'no_such_dataset'.*'digits', 'mnist1d'"):
    data.load("no_such_dataset", "train", data_dir=tmp_path)
  with pytest.raises(ValueError, match="must be a dataset name"):
    data.load(None, "train", data_dir=tmp_path)


def test_tfds_dataset_without_tensorflow_says_so(tmp_path):
  try:
    import tensorflow  # noqa: F401
    pytest.skip("TensorFlow is installed here, so preparing cifar10 would download it")
  except ImportError:
    pass
  with pytest.raises(ImportError, match=r"needs TensorFlow.*\('digits', 'mnist1d', 'mnist'"):
    data.load("cifar10", "train", data_dir=tmp_path)
  assert_nothing_prepared(tmp_path)
