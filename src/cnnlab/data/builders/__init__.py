"""TFDS builders for cnnlab's built-in datasets; they prepare and read without TensorFlow.

Every builder stores ``tfds.features.Tensor`` features (+ ``ClassLabel``) in ``array_record``
files (random access: ``builder.as_data_source(split)``), keeps the source's example order
(``disable_shuffling=True``, so ``'train[:6000]'`` is the first 6,000 examples of the source)
and is registered with TFDS under its snake-case class name (``cnnlab_digits`` ...).
"""

from __future__ import annotations

import inspect

import numpy as np
import tensorflow_datasets as tfds
from etils import epath


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

  def __init__(self, *, file_format="array_record", **kwargs):
    super().__init__(file_format=file_format, **kwargs)

  def _generate_examples(self, columns: dict[str, np.ndarray]):
    # TFDS's writer consumes one example at a time: this generator is its API, not a choice.
    n = len(next(iter(columns.values())))
    for i in range(n):
      yield i, {k: v[i] for k, v in columns.items()}
