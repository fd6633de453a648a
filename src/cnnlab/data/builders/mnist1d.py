"""``cnnlab_mnist1d``: MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package.

``signal``: float32 (40, 1), the package's standardised 40-sample sequences. Generated with
``mnist1d.data.make_dataset(get_dataset_args())`` (5,000 examples, ``seed`` 42, nothing
downloaded); splits as the package gives them: ``train`` 4,000 / ``test`` 1,000, in its order.
The package seeds NumPy's and Python's global RNGs; their states are restored afterwards.
"""

from __future__ import annotations

import random

import numpy as np
import tensorflow_datasets as tfds
from mnist1d import data as mnist1d_data

from cnnlab.data.builders import ArrayRecordBuilder


def arrays():
  """{'train'|'test': (signals float32 (N, 40, 1), labels int64 (N,))} from the package."""
  np_state, py_state = np.random.get_state(), random.getstate()
  try:
    d = mnist1d_data.make_dataset(mnist1d_data.get_dataset_args())
  finally:
    np.random.set_state(np_state)
    random.setstate(py_state)
  return {split: (d[x].astype(np.float32)[..., None], d[y].astype(np.int64))
          for split, x, y in (("train", "x", "y"), ("test", "x_test", "y_test"))}


class CnnlabMnist1d(ArrayRecordBuilder):
  """MNIST-1D with the package's default arguments (see module doc)."""

  def _info(self):
    args = mnist1d_data.get_dataset_args()
    return self.dataset_info(
        {"signal": tfds.features.Tensor(shape=(args.final_seq_length, 1), dtype=np.float32),
         "label": tfds.features.ClassLabel(num_classes=10)},
        supervised_keys=("signal", "label"),
        homepage="https://github.com/greydanus/mnist1d",
        citation="Greydanus & Kobak, Scaling Down Deep Learning with MNIST-1D, ICML 2024.")

  def _split_generators(self, dl_manager):
    del dl_manager  # generated locally.
    return {split: self._generate_examples({"signal": x, "label": y})
            for split, (x, y) in arrays().items()}
