"""Random-access data sources by name: ``load(name, split) -> (source, DataInfo)``.

``source`` is TFDS's ``ArrayRecordDataSource`` (``builder.as_data_source(split)``): ``len()`` and
``source[i]`` -> ``{input_key: np.ndarray, label_key: int}`` (ClassLabel decodes to a Python int;
batching stacks it to int64); feed it to ``grain.MapDataset.source(source)``.
``split`` is TFDS slicing syntax: ``'train'``, ``'train[:6000]'``, ``'train[6000:8000]'``,
``'test[:10%]'``. Builtin datasets keep their source order, so slices are deterministic.

Builtin names (prepared without TensorFlow on first use into ``data_dir``, then reused):
- ``digits``: sklearn's 8x8 digits; ``image`` uint8 (8, 8, 1); train 1,437 / test 360.
- ``mnist1d``: MNIST-1D from the ``mnist1d`` package; ``signal`` float32 (40, 1); 4,000 / 1,000.
- ``mnist``: ``image`` uint8 (28, 28, 1); downloaded and sha256-checked (60,000 / 10,000) or,
  with ``manual_dir``, read from a folder of IDX files (e.g. ``../shared/data/mnist8k`` -> one
  split ``train`` of 8,000), prepared once per distinct file content.
Any other name goes to ``tfds.builder(name)`` (preparing those needs TensorFlow).
``data_dir=None`` is TFDS's default (``~/tensorflow_datasets`` or ``$TFDS_DATA_DIR``).

Every input the dataset cannot use (name, split, ``manual_dir`` and its files) raises
:class:`DataError`, a ``ValueError`` that names the argument at fault (``field``).
TFDS and the builders are imported on first use (importing this module is cheap).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import fcntl
import importlib
import importlib.util
import os

import numpy as np

BUILTIN = ("digits", "mnist1d", "mnist")
_BUILDERS = {"digits": "digits.CnnlabDigits", "mnist1d": "mnist1d.CnnlabMnist1d",
             "mnist": "mnist.CnnlabMnist"}


class DataError(ValueError):
  """An argument of :func:`load` the dataset cannot use; ``field`` is its name (``name``,
  ``split``, ``manual_dir``, ``data_dir``)."""

  def __init__(self, field: str, message: str):
    super().__init__(message)
    self.field = field


def _builder_class(name):
  module, cls = _BUILDERS[name].split(".")
  return getattr(importlib.import_module(f"cnnlab.data.builders.{module}"), cls)


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """What a model and a pipeline need to know about a dataset (from its TFDS info)."""
  input_key: str          # 'image' (digits/mnist: uint8 (H, W, 1)) or 'signal' (mnist1d).
  label_key: str          # 'label'
  input_shape: tuple      # per-example shape, no batch dim.
  input_dtype: str        # numpy dtype name, e.g. 'uint8', 'float32'.
  num_classes: int
  splits: dict            # split name -> number of examples (whole splits, not the slice).


def load(name: str, split: str, *, data_dir=None, manual_dir=None):
  """``(source, DataInfo)`` for ``split`` of dataset ``name`` (see module doc).

  ``manual_dir``: for ``mnist``, a folder of IDX files to use instead of downloading; for a
  non-builtin dataset, TFDS's manual download folder. Raises :class:`DataError` for an
  unknown name, a bad split or bad IDX files, ImportError if a non-builtin dataset must be
  prepared and TensorFlow is not installed.
  """
  import tensorflow_datasets as tfds  # noqa: PLC0415 - heavy; only when data is read
  builder = _builder(name, data_dir, manual_dir)
  if not builder.is_prepared() and name not in BUILTIN and (
      importlib.util.find_spec("tensorflow") is None):
    raise ImportError(
        f"dataset {name!r} is not prepared in {builder.data_dir} and preparing TFDS's own "
        f"builders needs TensorFlow, which is not installed; the builtin datasets {BUILTIN} "
        "need no TensorFlow (or `pip install tensorflow`).")
  # Parallel jobs (sweeps) may share a data_dir: prepare, or see it prepared, under a lock so
  # that no process reads a dataset another one is still writing.
  with _prepare_lock(builder):
    builder = _builder(name, data_dir, manual_dir)
    if not builder.is_prepared():
      config = tfds.download.DownloadConfig(manual_dir=manual_dir,
                                            force_checksums_validation=True)
      try:
        builder.download_and_prepare(download_config=config, file_format="array_record")
      except DataError:
        raise
      except ValueError as e:  # the builders' messages name the bad file
        raise DataError("manual_dir" if manual_dir else "name", str(e)) from e
      builder = _builder(name, data_dir, manual_dir)
  splits = sorted(builder.info.splits)
  syntax = (f"dataset {name!r} has splits {splits} (TFDS slicing syntax, e.g. "
            f"'{splits[0]}[:80%]' or '{splits[0]}[100:200]')")
  try:
    n = builder.info.splits[split].num_examples
  except Exception as e:  # noqa: BLE001 - TFDS raises ValueError / KeyError / AssertionError
    raise DataError("split", f"{syntax}: {' '.join(str(e).split())}") from None
  if not n:
    raise DataError("split", f"selects no examples; {syntax}")
  return builder.as_data_source(split=split), data_info(builder.info)


@contextlib.contextmanager
def _prepare_lock(builder):
  """An exclusive ``flock`` on ``<dataset dir>/.prepare.lock`` while one process prepares."""
  lock_dir = os.path.dirname(os.path.dirname(os.fspath(builder.data_dir)))
  os.makedirs(lock_dir, exist_ok=True)
  with open(os.path.join(lock_dir, ".prepare.lock"), "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def data_info(info) -> DataInfo:
  """``DataInfo`` of a supervised classification dataset's TFDS info."""
  import tensorflow_datasets as tfds  # noqa: PLC0415
  if not info.supervised_keys or len(info.supervised_keys) != 2:
    raise ValueError(f"dataset {info.name!r} has supervised_keys={info.supervised_keys}; "
                     "need (input_key, label_key)")
  input_key, label_key = info.supervised_keys
  feature, label = info.features[input_key], info.features[label_key]
  if not isinstance(label, tfds.features.ClassLabel):
    raise ValueError(f"dataset {info.name!r}: label {label_key!r} is {label}, not a ClassLabel")
  return DataInfo(input_key=input_key, label_key=label_key, input_shape=tuple(feature.shape),
                  input_dtype=np.dtype(feature.np_dtype).name, num_classes=label.num_classes,
                  splits={k: v.num_examples for k, v in info.splits.items()})


def _builder(name, data_dir, manual_dir):
  import tensorflow_datasets as tfds  # noqa: PLC0415
  if not isinstance(name, str):
    raise DataError("name", f"must be a dataset name (str), e.g. one of {BUILTIN}; got {name!r}")
  if name == "mnist" and manual_dir is not None:
    from cnnlab.data.builders import mnist  # noqa: PLC0415
    try:
      return mnist.CnnlabMnist(config=mnist.manual_config(manual_dir), data_dir=data_dir)
    except OSError as e:
      raise DataError("manual_dir", f"cannot read {manual_dir}: {e}") from e
    except ValueError as e:  # names the bad file
      raise DataError("manual_dir", str(e)) from e
  if name in BUILTIN:
    if manual_dir is not None:
      raise DataError("manual_dir", f"dataset {name!r} takes no manual_dir (among {BUILTIN} "
                      "only 'mnist' reads one; allowed: '')")
    return _builder_class(name)(data_dir=data_dir)
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    close = difflib.get_close_matches(name, BUILTIN, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise DataError("name", f"unknown dataset {name!r}: not builtin {list(BUILTIN)} and not a "
                    f"TFDS dataset{hint}") from None
