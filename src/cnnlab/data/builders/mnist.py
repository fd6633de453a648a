"""``cnnlab_mnist``: MNIST (LeCun et al. 1998) from IDX files, downloaded or from a folder.

``image``: uint8 (28, 28, 1); ``label``: ClassLabel(10). Example order is the files' order.
Configs:
- ``download`` (default): the four official ``.gz`` files from ``URL_BASE`` (the mirror TFDS's
  own ``mnist`` builder uses); TFDS checks each file's size and sha256 against
  ``checksums.tsv`` beside this module -> ``train`` 60,000 / ``test`` 10,000. The files are
  fetched one at a time: TFDS's downloader raises on the first bad file while the others'
  threads still write into ``data_dir``; one at a time, nothing is written after it raises.
- ``manual_<fp>`` (``manual_config(folder)``): IDX files in a local folder, raw or gzipped;
  ``train-*``/``t10k-*`` -> ``train``/``test``, or the ``images-idx3-ubyte``/``labels-idx1-ubyte``
  pair -> ``train``. ``<fp>`` is the first 16 hex digits of the files' content sha256, so
  another folder or changed files prepare into their own directory, never reusing old data;
  the same bytes in another folder reuse it. Pass the folder as the download config's
  ``manual_dir``: preparing re-checks that its fingerprint is the config's.
Bad files (see ``idx``) raise ``ValueError`` before any example is written; an unresolvable
download host raises ``ConnectionError`` at once.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from cnnlab.data import builders
from cnnlab.data.builders import ArrayRecordBuilder, idx

URL_BASE = "https://storage.googleapis.com/cvdf-datasets/mnist/"


def manual_config(folder) -> tfds.core.BuilderConfig:
  """The config for the IDX files in ``folder``, all read and validated (raises ValueError)."""
  _, fp = idx.read_folder(folder)
  return builders.folder_config(folder, fp, "IDX files")


class CnnlabMnist(ArrayRecordBuilder):
  """MNIST from the official files or a folder of IDX files (see module doc)."""

  BUILDER_CONFIGS = [tfds.core.BuilderConfig(
      name="download", description=f"The official files from {URL_BASE}.")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "A folder of MNIST IDX files (raw or .gz): train-images-idx3-ubyte, "
      "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, or the pair "
      "images-idx3-ubyte / labels-idx1-ubyte; use the config `manual_config(folder)`.")

  def _info(self):
    return self.dataset_info(
        {"image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
         "label": tfds.features.ClassLabel(num_classes=10)},
        supervised_keys=("image", "label"),
        homepage="https://yann.lecun.com/exdb/mnist/",
        citation="LeCun, Bottou, Bengio & Haffner, Gradient-based learning applied to document "
                 "recognition, Proc. IEEE 86(11), 1998.")

  def _split_generators(self, dl_manager):
    if builders.is_folder_config(self):
      splits = builders.read_checked(self, idx.read_folder, dl_manager.manual_dir, "IDX files")
    else:
      builders.check_resolvable(URL_BASE, "MNIST", "MNIST IDX files", "../shared/data/mnist8k")
      paths = {split: [dl_manager.download(URL_BASE + stem + ".gz") for stem in stems]
               for split, stems in idx.SPLIT_FILES.items()}
      try:
        splits = {split: idx.read_pair(*p) for split, p in paths.items()}
      except ValueError as e:
        raise ValueError(f"MNIST files downloaded from {URL_BASE}: {e}") from e
    return {split: self._generate_examples({"image": x, "label": y})
            for split, (x, y) in splits.items()}
