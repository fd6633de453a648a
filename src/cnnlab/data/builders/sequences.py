"""Long-memory sequence tasks of Bai, Kolter & Koltun 2018 (TCN vs. recurrent networks).

- ``sequential_mnist``: ``cnnlab_mnist`` (downloaded, or IDX files from ``manual_dir``; same
  splits and slicing) with each image read as ``sequence`` uint8 ``(784, 1)``, row-major.
- ``permuted_mnist``: the same with the 784 steps in one fixed order,
  ``np.random.default_rng(permutation_seed).permutation(784)`` (option ``permutation_seed``).
- ``adding``: ``sequence`` float32 ``(seq_len, 2)``: channel 0 uniform in [0, 1), channel 1 zero
  but at two distinct uniformly drawn steps; ``target`` float32 = the sum of the two marked
  values (regression; ``num_classes`` 0). Default ``seq_len`` 600, 50,000 train / 1,000 test.
- ``copy_memory``: ``sequence`` float32 ``(seq_len + 2 * memory_length, 1)``: ``memory_length``
  symbols uniform in 1..8, ``seq_len - 1`` blanks (0), ``memory_length + 1`` markers (9);
  ``label`` int ``(seq_len + 2 * memory_length,)``: 0 everywhere but the last
  ``memory_length`` steps, which repeat the symbols (10 classes, per step). Default ``seq_len``
  1000, ``memory_length`` 10, 10,000 train / 1,000 test.
The generated tasks are the generators of Bai et al.'s code (locuslab/TCN) drawn per example
from ``np.random.default_rng([seed, split, i])`` (``split`` 0 train, 1 test): deterministic,
random access, nothing stored. Their splits are ``train`` and ``test``.
"""

from __future__ import annotations

import numpy as np

from cnnlab.data import views

MNIST_STEPS = 784
DATASET_OPTIONS = {
    "sequential_mnist": {},
    "permuted_mnist": {"permutation_seed": 0},
    "adding": {"seq_len": 600, "num_train": 50_000, "num_test": 1_000, "seed": 0},
    "copy_memory": {"seq_len": 1000, "memory_length": 10, "num_train": 10_000,
                    "num_test": 1_000, "seed": 0},
}
_SPLITS = ("train", "test")


def permutation(seed: int) -> np.ndarray:
  return np.random.default_rng(seed).permutation(MNIST_STEPS)


def adding_example(seq_len: int):
  def fn(rng: np.random.Generator):
    values = rng.random(seq_len, dtype=np.float32)
    marks = np.zeros(seq_len, np.float32)
    marks[rng.choice(seq_len, size=2, replace=False)] = 1.0
    return {"sequence": np.stack([values, marks], axis=-1),
            "target": np.float32(values @ marks)}
  return fn


def copy_example(seq_len: int, memory_length: int):
  def fn(rng: np.random.Generator):
    symbols = rng.integers(1, 9, memory_length)
    x = np.concatenate([symbols, np.zeros(seq_len - 1, np.int64),
                        np.full(memory_length + 1, 9)])
    y = np.concatenate([np.zeros(seq_len + memory_length, np.int64), symbols])
    return {"sequence": x.astype(np.float32)[:, None], "label": y}
  return fn


def load(name, split, *, data_dir=None, manual_dir=None, **options):
  """``(source, DataInfo)`` of task ``name`` (see module doc)."""
  from cnnlab.data import sources  # noqa: PLC0415 - sources imports this module lazily
  DataError = sources.DataError  # noqa: N806
  if name in ("sequential_mnist", "permuted_mnist"):
    source, info = sources.load("mnist", split, data_dir=data_dir, manual_dir=manual_dir)
    order = (permutation(options["permutation_seed"]) if name == "permuted_mnist"
             else np.arange(MNIST_STEPS))
    seq = views.Mapped(source, lambda r: {"sequence": r["image"].reshape(-1, 1)[order],
                                          "label": r["label"]})
    return seq, sources.DataInfo("sequence", "label", (MNIST_STEPS, 1), "uint8", 10, info.splits)
  if manual_dir is not None:
    raise DataError("manual_dir", f"dataset {name!r} is generated and takes no manual_dir "
                    "(allowed: '')")
  if split not in _SPLITS:
    raise DataError("split", f"dataset {name!r} has splits {list(_SPLITS)}; got {split!r}")
  o = options
  minimum = {"seq_len": 2, "num_train": 1, "num_test": 1, "memory_length": 1}
  for k, low in minimum.items():
    if k in o and (not isinstance(o[k], int) or o[k] < low):
      raise DataError(k, f"{k}={o[k]!r} is invalid (allowed: an int >= {low})")
  n = o["num_train"] if split == "train" else o["num_test"]
  key = (o["seed"], _SPLITS.index(split))
  splits = {"train": o["num_train"], "test": o["num_test"]}
  if name == "adding":
    return (views.Generated(n, key, adding_example(o["seq_len"])),
            sources.DataInfo("sequence", "target", (o["seq_len"], 2), "float32", 0, splits))
  length = o["seq_len"] + 2 * o["memory_length"]
  return (views.Generated(n, key, copy_example(o["seq_len"], o["memory_length"])),
          sources.DataInfo("sequence", "label", (length, 1), "float32", 10, splits))
