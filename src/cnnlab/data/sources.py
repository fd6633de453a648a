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
- ``fsdd``, ``mr``, ``sequential_mnist``, ``permuted_mnist``, ``adding``, ``copy_memory``,
  ``co2``, ``sunspots``: sequence data (audio, sentences, generated tasks, forecasting), each
  with dataset options passed as keyword arguments (``load(name, split, **options)``; the
  defaults are the module's ``OPTIONS``, :func:`options` reads them from a config); see
  ``docs/data.md`` and each module of ``cnnlab.data.builders``.
- ``moving_digits`` (videos), ``digit_segmentation`` (per-pixel labels): generated from the
  ``mnist`` digits (download or ``manual_dir``, same splits and slicing), with options.
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
import types

import numpy as np

BUILTIN = ("digits", "mnist1d", "mnist", "fsdd", "mr", "sequential_mnist", "permuted_mnist",
           "adding", "copy_memory", "co2", "sunspots", "moving_digits", "digit_segmentation")
_BUILDERS = {"digits": "digits.CnnlabDigits", "mnist1d": "mnist1d.CnnlabMnist1d",
             "mnist": "mnist.CnnlabMnist", "fsdd": "fsdd.CnnlabFsdd", "mr": "mr.CnnlabMr"}
# Datasets read from a folder (``manual_dir``) by their module's ``manual_config(folder)``.
_MANUAL = ("mnist", "fsdd", "mr")
# Datasets that are views of another's prepared data, generated or built in memory: their
# module's ``load(name, split, data_dir=, manual_dir=, **options)`` replaces the TFDS path.
_VIEWS = {"sequential_mnist": "sequences", "permuted_mnist": "sequences",
          "adding": "sequences", "copy_memory": "sequences", "co2": "forecast",
          "sunspots": "forecast", "moving_digits": "moving_digits",
          "digit_segmentation": "digit_segmentation"}


class DataError(ValueError):
  """An argument of :func:`load` the dataset cannot use; ``field`` is its name (``name``,
  ``split``, ``manual_dir``, ``data_dir``)."""

  def __init__(self, field: str, message: str):
    super().__init__(message)
    self.field = field


def _builder_class(name):
  module, cls = _BUILDERS[name].split(".")
  return getattr(importlib.import_module(f"cnnlab.data.builders.{module}"), cls)


def _module(name):
  """The builder module of builtin dataset ``name`` (None for other names)."""
  module = _VIEWS.get(name) or _BUILDERS.get(name, "").split(".")[0]
  return importlib.import_module(f"cnnlab.data.builders.{module}") if module else None


def _defaults(name) -> dict:
  """Dataset ``name``'s options and their defaults: its module's ``OPTIONS`` or, for a module
  of several datasets, ``DATASET_OPTIONS[name]``."""
  module = _module(name)
  return dict(getattr(module, "DATASET_OPTIONS", {}).get(name, getattr(module, "OPTIONS", {})))


def _options(name, given: dict) -> dict:
  """``given`` completed with the dataset's defaults."""
  defaults = _defaults(name)
  for k in given:
    if k not in defaults:
      raise DataError(k, f"dataset {name!r} takes no option {k!r} (allowed: "
                      f"{sorted(defaults) or 'none'})")
  return {**defaults, **given}


def options(name: str, cfg, workdir: str | None = None) -> dict:
  """The options of dataset ``name`` that ``cfg`` (a config's ``data``) sets, the others left
  at their defaults, plus ``vocab_file`` in ``workdir`` for a dataset that stores its
  vocabulary with the run (``mr``): ``load(name, split, **options(name, config.data, workdir))``.
  """
  module, defaults = _module(name), _defaults(name)
  out = {k: tuple(cfg[k]) if isinstance(defaults[k], tuple) else cfg[k]
         for k in defaults if k in cfg}
  if "vocab_file" in defaults and workdir:
    out["vocab_file"] = os.path.join(workdir, module.VOCAB_FILE)
  return out


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """What a model and a pipeline need to know about a dataset (from its TFDS info)."""
  input_key: str          # 'image' (digits/mnist: uint8 (H, W, 1)) or 'signal' (mnist1d).
  label_key: str          # 'label'
  input_shape: tuple      # per-example shape, no batch dim.
  input_dtype: str        # numpy dtype name, e.g. 'uint8', 'float32'.
  num_classes: int
  splits: dict            # split name -> number of examples (whole splits, not the slice).


def load(name: str, split: str, *, data_dir=None, manual_dir=None, **options):
  """``(source, DataInfo)`` for ``split`` of dataset ``name`` (see module doc).

  ``manual_dir``: for ``mnist``/``fsdd``/``mr`` (and the MNIST sequence tasks), a folder of
  files to use instead of downloading; for a non-builtin dataset, TFDS's manual download
  folder. ``options``: the dataset's own options (see module doc). Raises :class:`DataError`
  for an unknown name or option, a bad split or bad files, ImportError if a non-builtin
  dataset must be prepared and TensorFlow is not installed.
  """
  import tensorflow_datasets as tfds  # noqa: PLC0415 - heavy; only when data is read
  if not isinstance(name, str):
    raise DataError("name", f"must be a dataset name (str), e.g. one of {BUILTIN}; got {name!r}")
  options = _options(name, options)
  if name in _VIEWS:
    return _module(name).load(name, split, data_dir=data_dir, manual_dir=manual_dir, **options)
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
  if hasattr(_module(name), "select"):
    return _module(name).select(builder, split, **options)
  return split_source(name, builder, split)


def split_source(name, builder, split):
  """``(source, DataInfo)`` of a prepared ``builder``'s ``split`` (TFDS slicing syntax)."""
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


def absolute_indices(split: str, splits: dict) -> np.ndarray:
  """``(n, 2)`` int64: for each example of ``split`` (TFDS slicing syntax, already checked), its
  whole split's number in ``sorted(splits)`` and its index there (``'train[6000:8000]'`` ->
  rows ``(k, 6000) .. (k, 7999)``), so that generated views draw the same example whatever the
  slice. ``splits``: split name -> number of examples."""
  import tensorflow_datasets as tfds  # noqa: PLC0415
  infos = {k: types.SimpleNamespace(num_examples=v) for k, v in splits.items()}
  names = sorted(splits)
  parts = [(names.index(a.splitname), np.arange(splits[a.splitname])[a.from_:a.to])
           for a in tfds.core.ReadInstruction.from_spec(split).to_absolute(infos)]
  return np.concatenate([np.stack([np.full(len(i), k), i], 1) for k, i in parts]).astype(np.int64)


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
  if name in _MANUAL and (manual_dir is not None or name == "mr"):
    try:
      return _builder_class(name)(config=_module(name).manual_config(manual_dir),
                                  data_dir=data_dir)
    except OSError as e:
      raise DataError("manual_dir", f"cannot read {manual_dir}: {e}") from e
    except ValueError as e:  # names the bad file
      raise DataError("manual_dir", str(e)) from e
  if name in BUILTIN:
    if manual_dir is not None:
      raise DataError("manual_dir", f"dataset {name!r} takes no manual_dir (among {BUILTIN} "
                      f"only {_MANUAL} and the MNIST sequence tasks read one; allowed: '')")
    return _builder_class(name)(data_dir=data_dir)
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    close = difflib.get_close_matches(name, BUILTIN, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise DataError("name", f"unknown dataset {name!r}: not builtin {list(BUILTIN)} and not a "
                    f"TFDS dataset{hint}") from None
