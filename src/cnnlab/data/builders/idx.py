"""IDX files (LeCun's MNIST format): find them in a folder, parse, validate, fingerprint.

An IDX file is a 4-byte magic ``0x00 0x00 <type> <ndim>`` (MNIST: images 2051 = uint8 3-D,
labels 2049 = uint8 1-D), ``ndim`` big-endian uint32 dims, then the row-major payload.
Files may be gzipped (detected by content). Every problem (missing/ambiguous file, bad gzip,
wrong magic, truncated or oversized payload, image/label count mismatch, label out of range)
raises one ``ValueError`` naming the file and what is wrong; nothing here writes anything.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import pathlib
import zlib

import numpy as np

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
# IDX type byte -> big-endian numpy dtype.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# Recognised file stems -> split; each split needs an images and a labels file.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
PAIR_FILES = ("images-idx3-ubyte", "labels-idx1-ubyte")  # one split 'train' (e.g. mnist8k).


def read_bytes(path) -> bytes:
  """The bytes of ``path``, gunzipped if they start with the gzip magic (any file name)."""
  path = pathlib.Path(path)
  data = path.read_bytes()
  if data[:2] != b"\x1f\x8b":
    return data
  try:
    return gzip.decompress(data)
  except (EOFError, gzip.BadGzipFile, zlib.error) as e:
    raise ValueError(f"IDX file {path}: corrupt or truncated gzip stream ({e})") from e


def parse(data: bytes, path, magic: int | None = None) -> np.ndarray:
  """The array in IDX bytes ``data`` (read from ``path``, named in errors).

  ``magic``: the expected magic number (e.g. ``IMAGES_MAGIC``), or None to accept any valid one.
  """
  if len(data) < 4:
    raise ValueError(f"IDX file {path}: truncated, {len(data)} bytes (no 4-byte magic)")
  got = int.from_bytes(data[:4], "big")
  if magic is not None and got != magic:
    raise ValueError(f"IDX file {path}: wrong magic number {got} (0x{got:08x}), expected {magic} "
                     f"(MNIST images {IMAGES_MAGIC}, labels {LABELS_MAGIC})")
  type_code, ndim = data[2], data[3]
  if data[:2] != b"\0\0" or type_code not in _DTYPES or ndim == 0:
    raise ValueError(f"IDX file {path}: bad magic number 0x{got:08x}; expected 0x0000<type><ndim> "
                     f"with type in {[hex(t) for t in _DTYPES]} and ndim >= 1")
  header = 4 + 4 * ndim
  if len(data) < header:
    raise ValueError(f"IDX file {path}: truncated header ({len(data)} of {header} bytes)")
  shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
  dtype = np.dtype(_DTYPES[type_code])
  expected = header + math.prod(shape) * dtype.itemsize
  if len(data) != expected:
    what = "truncated" if len(data) < expected else "has trailing bytes"
    raise ValueError(f"IDX file {path}: {what}: header says shape {shape} of {dtype.name}, "
                     f"i.e. {expected} bytes, file has {len(data)}")
  return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_files(folder) -> dict[str, tuple[pathlib.Path, pathlib.Path]]:
  """Split name -> (images path, labels path) for the IDX files in ``folder``.

  Official names (``train-*``/``t10k-*`` -> ``train``/``test``) or the ``images-idx3-ubyte`` /
  ``labels-idx1-ubyte`` pair (-> ``train``); each raw or ``.gz``, not both.
  """
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise ValueError(f"manual_dir {folder} is not a directory")

  def one(stem):
    found = [p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()]
    if len(found) > 1:
      raise ValueError(f"manual_dir {folder}: both {stem} and {stem}.gz exist; keep one")
    return found[0] if found else None

  groups = dict(SPLIT_FILES)
  if any(one(stem) for stem in PAIR_FILES):
    if any(one(stem) for stems in SPLIT_FILES.values() for stem in stems):
      raise ValueError(f"manual_dir {folder}: mixes {PAIR_FILES} with official MNIST names")
    groups = {"train": PAIR_FILES}
  out = {}
  for split, stems in groups.items():
    paths = [one(stem) for stem in stems]
    if any(paths) and not all(paths):
      missing = [s for s, p in zip(stems, paths) if p is None]
      raise ValueError(f"manual_dir {folder}: missing {missing[0]}(.gz) for split {split!r}")
    if all(paths):
      out[split] = tuple(paths)
  if not out:
    names = [s for stems in (*SPLIT_FILES.values(), PAIR_FILES) for s in stems]
    raise ValueError(f"manual_dir {folder}: no IDX files found; expected names {names} "
                     "(raw or .gz)")
  return out


def check_pair(images, labels, images_path, labels_path, num_classes: int = 10,
               image_size: tuple[int, int] = (28, 28)) -> None:
  """Raise if parsed MNIST ``images`` (N, H, W) / ``labels`` (N,) don't belong together."""
  if images.ndim != 3 or images.shape[1:] != image_size or images.dtype != np.uint8:
    raise ValueError(f"IDX file {images_path}: expected uint8 images of size {image_size}, got "
                     f"shape {images.shape} of {images.dtype.name}")
  if labels.ndim != 1 or labels.dtype != np.uint8:
    raise ValueError(f"IDX file {labels_path}: expected 1-D uint8 labels, got shape "
                     f"{labels.shape} of {labels.dtype.name}")
  if len(images) != len(labels):
    raise ValueError(f"IDX files {images_path} and {labels_path}: {len(images)} images but "
                     f"{len(labels)} labels")
  if labels.size and labels.max() >= num_classes:
    raise ValueError(f"IDX file {labels_path}: labels must be in [0, {num_classes}), got "
                     f"max {labels.max()}")


def read_pair(images_path, labels_path):
  """(images uint8 (N, 28, 28, 1), labels int64 (N,)) from a validated MNIST IDX file pair."""
  images, labels, _ = _read_pair(images_path, labels_path)
  return images, labels


def read_folder(folder):
  """({split: (images uint8 (N, 28, 28, 1), labels int64 (N,))}, fingerprint) for ``folder``.

  Every file is validated before anything is returned. ``fingerprint``: sha256 hex over each
  split's name and its files' decompressed bytes, so the same data gives the same fingerprint
  (raw or gz, any folder) and any changed byte a different one.
  """
  h = hashlib.sha256()
  out = {}
  for split, (images_path, labels_path) in sorted(find_files(folder).items()):
    images, labels, digests = _read_pair(images_path, labels_path)
    out[split] = images, labels
    h.update(split.encode() + digests)
  return out, h.hexdigest()


def _read_pair(images_path, labels_path):
  raw_images, raw_labels = read_bytes(images_path), read_bytes(labels_path)
  images = parse(raw_images, images_path, IMAGES_MAGIC)
  labels = parse(raw_labels, labels_path, LABELS_MAGIC)
  check_pair(images, labels, images_path, labels_path)
  digests = hashlib.sha256(raw_images).digest() + hashlib.sha256(raw_labels).digest()
  return images[..., None], labels.astype(np.int64), digests
