"""cnnlab.data.load for the builtin datasets, against independent references.

References: sklearn's ``load_digits``, the ``mnist1d`` package's own generator, IDX files written
here with ``struct`` from known arrays, the README figures of the real ``mnist8k`` folder, and
TFDS's own checksum file for the official MNIST URLs. Nothing touches the network: the download
path is served from a local HTTP server on 127.0.0.1 (see ``test_mnist_download_*``).
"""

import functools
import gzip
import hashlib
import http.server
import os
import pathlib
import socket
import struct
import threading
import time

import mnist1d.data
import numpy as np
import pytest
import tensorflow_datasets as tfds
from sklearn import datasets

from cnnlab import data
from cnnlab.data.builders import mnist as mnist_builder

MNIST8K = pathlib.Path(__file__).parents[2] / ".." / "shared" / "data" / "mnist8k"
OFFICIAL = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def write_idx(path, array):
  """``array`` (uint8) as an IDX file at ``path``, gzipped if the name ends in .gz."""
  raw = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
  raw += np.ascontiguousarray(array, np.uint8).tobytes()
  path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def fake_mnist(n, seed):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (n, 28, 28), np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write_folder(folder, splits, layout, gz):
  """splits: {split: (images, labels)}; layout 'official' (train/t10k names) or 'pair'."""
  folder.mkdir(parents=True, exist_ok=True)
  ext = ".gz" if gz else ""
  for split, (x, y) in splits.items():
    names = OFFICIAL[split] if layout == "official" else ("images-idx3-ubyte", "labels-idx1-ubyte")
    write_idx(folder / (names[0] + ext), x)
    write_idx(folder / (names[1] + ext), y)
  return folder


def as_arrays(source):
  """A data source's examples stacked per key."""
  examples = source.__getitems__(list(range(len(source))))
  return {k: np.stack([np.asarray(e[k]) for e in examples]) for k in examples[0]}


def test_digits_splits_and_images_match_sklearn(tmp_path):
  train, info = data.load("digits", "train", data_dir=tmp_path)
  test, _ = data.load("digits", "test", data_dir=tmp_path)
  assert info == data.DataInfo("image", "label", (8, 8, 1), "uint8", 10,
                               {"train": 1437, "test": 360})
  assert (len(train), len(test)) == (1437, 360)
  d = datasets.load_digits()
  ref_x = np.round(d.images * 255 / 16).astype(np.uint8)
  got = {k: np.concatenate([as_arrays(train)[k], as_arrays(test)[k]])
         for k in ("image", "label")}
  assert got["image"].shape == (1797, 8, 8, 1) and got["image"].dtype == np.uint8

  # Train + test is exactly sklearn's set of (image, label) examples, each once.
  def rows(x, y):
    r = np.concatenate([x.reshape(len(x), -1), y[:, None]], axis=1).astype(np.int64)
    return r[np.lexsort(r.T[::-1])]
  np.testing.assert_array_equal(rows(got["image"][..., 0], got["label"]), rows(ref_x, d.target))
  # Stratified 80/20: each class's test share within one example of 20 %.
  test_counts = np.bincount(as_arrays(test)["label"], minlength=10)
  assert np.all(np.abs(test_counts - 0.2 * np.bincount(d.target)) <= 1)


def test_slicing_syntax(tmp_path):
  full, _ = data.load("digits", "train", data_dir=tmp_path)
  ref = as_arrays(full)["image"]
  for split, sl in [("train[10:20]", slice(10, 20)), ("train[-5:]", slice(-5, None)),
                    ("train[:100]", slice(0, 100))]:
    part, info = data.load("digits", split, data_dir=tmp_path)
    np.testing.assert_array_equal(as_arrays(part)["image"], ref[sl])
    assert info.splits == {"train": 1437, "test": 360}  # whole splits, not the slice.
  with pytest.raises(ValueError, match="bogus"):
    data.load("digits", "bogus", data_dir=tmp_path)


def test_mnist1d_equals_package_generator(tmp_path):
  rng_state = np.random.get_state()[1].copy()
  train, info = data.load("mnist1d", "train", data_dir=tmp_path)
  np.testing.assert_array_equal(np.random.get_state()[1], rng_state)  # global RNG untouched.
  test, _ = data.load("mnist1d", "test", data_dir=tmp_path)
  assert info == data.DataInfo("signal", "label", (40, 1), "float32", 10,
                               {"train": 4000, "test": 1000})
  ref = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())  # seed 42, offline.
  for source, x, y in ((train, "x", "y"), (test, "x_test", "y_test")):
    got = as_arrays(source)
    np.testing.assert_array_equal(got["signal"][..., 0], ref[x].astype(np.float32))
    np.testing.assert_array_equal(got["label"], ref[y])


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("layout", ["official", "pair"])
def test_mnist_from_idx_folder(tmp_path, layout, gz):
  splits = {"train": fake_mnist(12, 0)}
  if layout == "official":
    splits["test"] = fake_mnist(5, 1)
  folder = write_folder(tmp_path / "idx", splits, layout, gz)
  for split, (x, y) in splits.items():
    source, info = data.load("mnist", split, data_dir=tmp_path / "tfds", manual_dir=folder)
    got = as_arrays(source)
    np.testing.assert_array_equal(got["image"], x[..., None])
    np.testing.assert_array_equal(got["label"], y)
  assert info == data.DataInfo("image", "label", (28, 28, 1), "uint8", 10,
                               {s: len(y) for s, (_, y) in splits.items()})
  source, _ = data.load("mnist", "train[3:7]", data_dir=tmp_path / "tfds", manual_dir=folder)
  np.testing.assert_array_equal(as_arrays(source)["image"], splits["train"][0][3:7, ..., None])


def test_mnist_other_folder_or_changed_files_prepare_anew(tmp_path):
  tfds_dir = tmp_path / "tfds"

  def load_images(folder):
    return as_arrays(data.load("mnist", "train", data_dir=tfds_dir, manual_dir=folder)[0])["image"]

  a, b = fake_mnist(6, 0), fake_mnist(6, 1)
  folder_a = write_folder(tmp_path / "a", {"train": a}, "pair", gz=True)
  folder_b = write_folder(tmp_path / "b", {"train": b}, "pair", gz=True)
  np.testing.assert_array_equal(load_images(folder_a), a[0][..., None])
  np.testing.assert_array_equal(load_images(folder_b), b[0][..., None])
  changed = (a[0].copy(), a[1])
  changed[0][0, 0, 0] ^= 1  # one bit of one pixel.
  write_folder(folder_a, {"train": changed}, "pair", gz=True)
  np.testing.assert_array_equal(load_images(folder_a), changed[0][..., None])
  # The same bytes elsewhere (raw instead of gz) reuse what was prepared from them.
  folder_c = write_folder(tmp_path / "c", {"train": b}, "pair", gz=False)
  np.testing.assert_array_equal(load_images(folder_c), b[0][..., None])
  prepared = sorted(p.parent.parent.name
                    for p in tfds_dir.glob("cnnlab_mnist/*/*/dataset_info.json"))
  assert len(prepared) == len(set(prepared)) == 3 and all(n.startswith("manual_") for n in prepared)


def test_mnist8k_real_digits_match_readme(tmp_path):
  if not (MNIST8K / "images-idx3-ubyte.gz").exists():
    pytest.skip(f"real MNIST digits not found at {MNIST8K.resolve()} (shared data folder beside "
                "the repo); nothing to check without them")
  source, info = data.load("mnist", "train", data_dir=tmp_path, manual_dir=MNIST8K)
  assert info.splits == {"train": 8000}
  got = as_arrays(source)
  np.testing.assert_array_equal(np.bincount(got["label"], minlength=10),
                                [773, 905, 834, 803, 788, 723, 756, 813, 787, 818])
  # An independent read of the files (gzip + numpy at the IDX header offsets) is the reference.
  raw_x = np.frombuffer(gzip.decompress((MNIST8K / "images-idx3-ubyte.gz").read_bytes()),
                        np.uint8, offset=16).reshape(8000, 28, 28, 1)
  raw_y = np.frombuffer(gzip.decompress((MNIST8K / "labels-idx1-ubyte.gz").read_bytes()),
                        np.uint8, offset=8)
  np.testing.assert_array_equal(got["image"], raw_x)
  np.testing.assert_array_equal(got["label"], raw_y)
  # The README's "mean pixel 0.1325" is the whole t10k set's well-known mean; these 8,000
  # images (whose sha256 match the README's) average 0.13009.
  assert got["image"].mean() / 255 == pytest.approx(0.13009, abs=1e-5)
  # Fixed README split: images 0-5,999 train, 6,000-7,999 evaluate, in file order.
  for split, sl in (("train[:6000]", slice(0, 6000)), ("train[6000:8000]", slice(6000, 8000))):
    part, _ = data.load("mnist", split, data_dir=tmp_path, manual_dir=MNIST8K)
    np.testing.assert_array_equal(as_arrays(part)["image"], raw_x[sl])


def test_shipped_checksums_are_tfds_mnist_checksums():
  # TFDS's own mnist builder downloads from the same mirror; its checksum file is the reference.
  ref = tfds.core.download.checksums.load_url_infos(
      pathlib.Path(tfds.__file__).parent / "url_checksums" / "mnist.txt")
  ours = mnist_builder.CnnlabMnist.url_infos
  assert ours == ref
  assert sorted(ours) == sorted(mnist_builder.URL_BASE + s + ".gz"
                                for stems in OFFICIAL.values() for s in stems)


@pytest.fixture
def local_mirror(tmp_path, monkeypatch):
  """Serve a folder over HTTP on 127.0.0.1 and point CnnlabMnist's URL_BASE at it.

  Returns (folder, register) where register(wrong=names, slow=names) sets the class's
  url_infos (what TFDS checks downloads against) for every file in the folder, a wrong sha256
  for ``wrong``, and has the server wait 0.5 s before sending any of ``slow``.
  """
  folder = tmp_path / "mirror"
  folder.mkdir()
  slow_names = set()

  class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
      pass

    def do_GET(self):
      if self.path.lstrip("/") in slow_names:
        time.sleep(0.5)
      super().do_GET()

  handler = functools.partial(Quiet, directory=str(folder))
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  base = f"http://127.0.0.1:{server.server_address[1]}/"
  monkeypatch.setattr(mnist_builder, "URL_BASE", base)
  for var in ("NO_PROXY", "no_proxy"):
    monkeypatch.setenv(var, "127.0.0.1,localhost")

  def register(wrong=(), slow=()):
    slow_names.clear()
    slow_names.update(slow)
    infos = {}
    for p in folder.iterdir():
      digest = hashlib.sha256(p.read_bytes()).hexdigest()
      infos[base + p.name] = tfds.core.download.checksums.UrlInfo(
          size=p.stat().st_size, checksum="0" * 64 if p.name in wrong else digest,
          filename=p.name)
    monkeypatch.setattr(mnist_builder.CnnlabMnist, "url_infos", infos)

  yield folder, register
  server.shutdown()
  server.server_close()


def test_mnist_download_verified_and_parsed(tmp_path, local_mirror):
  folder, register = local_mirror
  splits = {"train": fake_mnist(10, 0), "test": fake_mnist(4, 1)}
  write_folder(folder, splits, "official", gz=True)
  register()
  for split, (x, y) in splits.items():
    source, info = data.load("mnist", split, data_dir=tmp_path / "tfds")
    got = as_arrays(source)
    np.testing.assert_array_equal(got["image"], x[..., None])
    np.testing.assert_array_equal(got["label"], y)
  assert info.splits == {"train": 10, "test": 4}
  assert (tmp_path / "tfds" / "cnnlab_mnist" / "download" / "1.0.0" / "dataset_info.json").exists()


def test_mnist_download_wrong_checksum_prepares_nothing(tmp_path, local_mirror):
  folder, register = local_mirror
  write_folder(folder, {"train": fake_mnist(10, 0), "test": fake_mnist(4, 1)}, "official", True)
  register(wrong={"t10k-labels-idx1-ubyte.gz"})
  checksum_error = tfds.core.download.download_manager.NonMatchingChecksumError
  with pytest.raises(checksum_error, match="t10k-labels"):
    data.load("mnist", "train", data_dir=tmp_path / "tfds")
  assert not list((tmp_path / "tfds").rglob("dataset_info.json"))
  register()
  source, _ = data.load("mnist", "train", data_dir=tmp_path / "tfds")  # a good run still works.
  assert len(source) == 10


def test_mnist_download_writes_nothing_after_raising(tmp_path, local_mirror):
  """No download still runs into data_dir once a bad file has raised."""
  folder, register = local_mirror
  write_folder(folder, {"train": fake_mnist(10, 0), "test": fake_mnist(4, 1)}, "official", True)
  names = sorted(p.name for p in folder.iterdir())
  register(wrong={"train-images-idx3-ubyte.gz"},
           slow=set(names) - {"train-images-idx3-ubyte.gz"})
  with pytest.raises(tfds.core.download.download_manager.NonMatchingChecksumError):
    data.load("mnist", "train", data_dir=tmp_path / "tfds")

  def listing():
    return sorted((root, tuple(sorted(files))) for root, _, files in os.walk(tmp_path / "tfds"))

  before = listing()
  time.sleep(1.5)  # three times the server's delay.
  assert listing() == before


def test_mnist_download_bad_idx_prepares_nothing(tmp_path, local_mirror):
  folder, register = local_mirror
  write_folder(folder, {"train": fake_mnist(10, 0), "test": fake_mnist(4, 1)}, "official", True)
  (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(8)))  # checksum ok.
  register()
  message = r"downloaded from http://127\.0\.0\.1:\d+/: .*t10k-labels.*wrong magic number 0"
  with pytest.raises(ValueError, match=message):
    data.load("mnist", "train", data_dir=tmp_path / "tfds")
  assert not list((tmp_path / "tfds").rglob("dataset_info.json"))
  assert not list((tmp_path / "tfds").rglob("*.array_record*"))


def test_mnist_download_offline_fails_fast(tmp_path, monkeypatch):
  def no_dns(host, *args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

  monkeypatch.setattr(socket, "getaddrinfo", no_dns)
  with pytest.raises(ConnectionError, match="cannot resolve storage.googleapis.com.*manual_dir"):
    data.load("mnist", "train", data_dir=tmp_path)
  assert not list(tmp_path.rglob("dataset_info.json"))
