"""TFDS builders for cnnlab's built-in datasets; they prepare and read without TensorFlow.

Every builder stores ``tfds.features.Tensor`` features (+ ``ClassLabel``) in ``array_record``
files (random access: ``builder.as_data_source(split)``), keeps the source's example order
(``disable_shuffling=True``, so ``'train[:6000]'`` is the first 6,000 examples of the source)
and is registered with TFDS under its snake-case class name (``cnnlab_digits`` ...).
"""

from __future__ import annotations

import inspect
import socket
import sys
import urllib.parse

import numpy as np
import tensorflow_datasets as tfds
from etils import epath


FINGERPRINT_DIGITS = 16  # hex digits of a folder's content sha256 in its config's name
MANUAL_PREFIX = "manual_"


def folder_config(folder, fp: str, what: str) -> tfds.core.BuilderConfig:
  """The ``manual_<fp>`` config of a folder whose ``what`` (e.g. "IDX files") have content
  sha256 ``fp``: another folder or changed files prepare into their own directory."""
  return tfds.core.BuilderConfig(
      name=MANUAL_PREFIX + fp[:FINGERPRINT_DIGITS],
      description=f"{what} first prepared from {folder}; content sha256 {fp}.")


def is_folder_config(builder) -> bool:
  return builder.builder_config.name.startswith(MANUAL_PREFIX)


def read_checked(builder, read_folder, folder, what: str):
  """``read_folder(folder)``'s data, after checking that the folder's content fingerprint is the
  one in the builder's config name (``ValueError`` if the files changed)."""
  data, fp = read_folder(folder)
  name = builder.builder_config.name
  if name != MANUAL_PREFIX + fp[:FINGERPRINT_DIGITS]:
    raise ValueError(f"manual_dir {folder} holds {what} with content sha256 {fp}, not those of "
                     f"config {name!r}; use manual_config(folder)")
  return data


def check_resolvable(url: str, dataset: str, files: str, example: str) -> None:
  """Fail fast offline: TFDS's downloader retries an unresolvable host for minutes."""
  host = urllib.parse.urlparse(url).hostname
  try:
    socket.getaddrinfo(host, None)
  except socket.gaierror as e:
    raise ConnectionError(
        f"cannot resolve {host} to download {dataset} ({e}); offline? pass manual_dir=<folder of "
        f"{files}> (e.g. {example}) to cnnlab.data.load") from e


class ArrayRecordBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A GeneratorBasedBuilder writing ``array_record``; subclasses give ``_info`` and splits.

  ``_split_generators`` returns ``{split: self._generate_examples(columns)}`` where ``columns``
  maps each feature name to an array whose first axis indexes examples.
  """

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # TFDS 4.9.10's own `code_path` needs the `importlib_resources` package for a builder in an
    # installed package (not a TFDS dependency here); the module file is what it resolves to.
    # TFDS reads a downloading builder's URL checksums from `code_path.parent / 'checksums.tsv'`.
    return epath.Path(inspect.getfile(cls))

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def __init__(self, *, file_format="array_record", **kwargs):
    super().__init__(file_format=file_format, **kwargs)

  def dataset_info(self, features: dict, **kwargs) -> tfds.core.DatasetInfo:
    """``DatasetInfo`` of ``features`` (name -> TFDS feature) in the source's example order, its
    module's docstring as description; ``kwargs``: ``supervised_keys``, ``homepage``, ..."""
    return tfds.core.DatasetInfo(
        builder=self, description=sys.modules[type(self).__module__].__doc__,
        features=tfds.features.FeaturesDict(features), disable_shuffling=True, **kwargs)

  def _generate_examples(self, columns: dict[str, np.ndarray]):
    # TFDS's writer consumes one example at a time: this generator is its API, not a choice.
    n = len(next(iter(columns.values())))
    for i in range(n):
      yield i, {k: v[i] for k, v in columns.items()}
