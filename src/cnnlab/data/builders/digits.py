"""``cnnlab_digits``: scikit-learn's 1,797 real 8x8 handwritten digits (UCI optdigits test set).

``image``: uint8 (8, 8, 1), sklearn's 0..16 counts scaled by 255/16 and rounded (0..255).
Fixed split: ``sklearn.model_selection.train_test_split(test_size=0.2, stratify=labels,
random_state=SPLIT_SEED)`` -> ``train`` 1,437 / ``test`` 360, each in that function's order.
Resizing (e.g. to 32x32 for LeNet-5) belongs to the input pipeline, not here.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from cnnlab.data.builders import ArrayRecordBuilder

SPLIT_SEED = 0
TEST_FRACTION = 0.2


def arrays():
  """{'train'|'test': (images uint8 (N, 8, 8, 1), labels int64 (N,))}, from sklearn."""
  from sklearn import datasets, model_selection  # noqa: PLC0415 - ~1 s; only when preparing
  d = datasets.load_digits()
  images = np.round(d.images * (255 / 16)).astype(np.uint8)[..., None]
  x_tr, x_te, y_tr, y_te = model_selection.train_test_split(
      images, d.target.astype(np.int64), test_size=TEST_FRACTION, stratify=d.target,
      random_state=SPLIT_SEED)
  return {"train": (x_tr, y_tr), "test": (x_te, y_te)}


class CnnlabDigits(ArrayRecordBuilder):
  """sklearn ``load_digits`` with a fixed stratified 80/20 split (see module doc)."""

  def _info(self):
    return self.dataset_info(
        {"image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
         "label": tfds.features.ClassLabel(num_classes=10)},
        supervised_keys=("image", "label"),
        homepage="https://archive.ics.uci.edu/dataset/80")

  def _split_generators(self, dl_manager):
    del dl_manager  # sklearn ships the data.
    return {split: self._generate_examples({"image": x, "label": y})
            for split, (x, y) in arrays().items()}
