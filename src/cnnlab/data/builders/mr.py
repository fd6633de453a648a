"""``cnnlab_mr``: Pang & Lee's movie-review polarity sentences (Kim 2014's MR), from a folder.

``manual_dir`` holds ``rt-polarity.neg`` and ``rt-polarity.pos`` (one sentence per line,
Windows-1252/Latin-1; ``cnnlab.data.text.decode_lines`` refuses anything else), e.g.
``../shared/data/mr``. Prepared (config ``manual_<fp>``, ``<fp>`` = 16 hex digits of the files'
sha256, as for ``mnist``): one TFDS split of every sentence, negatives then positives in file
order, ``tokens`` = Kim's ``clean_str`` tokens (str ``(None,)``), ``label`` ClassLabel
(``neg`` = 0, ``pos`` = 1). No download: the data has no checksummed release.

``load('mr', split, fold=, num_folds=, fold_seed=, min_count=, max_len=, vocab_file=)``:
- splits: ``test`` = fold ``fold`` of ``num_folds`` (a ``fold_seed``-seeded permutation of the
  sentences cut into ``num_folds`` near-equal parts, each kept in file order), ``train`` = the
  other folds, ``all`` = every sentence;
- examples ``{'tokens': int32 (max_len,) ids, 'label': int}`` encoded with the run's vocabulary
  (``cnnlab.data.text``): built from the ``train`` examples only (words seen ``min_count``
  times; ``max_len`` 0 = the longest training sentence) and, with ``vocab_file``, written there
  when ``train`` is loaded and read back for every other split and folder (evaluating another
  folder of sentences maps its words with the run's vocabulary, unknown -> ``UNK``). A
  ``vocab_file`` built from other training data (another fold, folder or option) is refused for
  ``train``; another split without the file is refused (never rebuilt from evaluation data).
  Without ``vocab_file`` the vocabulary is rebuilt in memory from this data's ``train`` part.
"""

from __future__ import annotations

import hashlib
import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from cnnlab.data import builders, text, views
from cnnlab.data.builders import ArrayRecordBuilder

FILES = (("rt-polarity.neg", 0), ("rt-polarity.pos", 1))
VOCAB_FILE = "vocab.json"
OPTIONS = {"fold": 0, "num_folds": 10, "fold_seed": 0, "min_count": 1, "max_len": 0,
           "vocab_file": None}


def read_folder(folder):
  """({'tokens': list of token lists, 'label': int64 (N,)}, fingerprint) of ``folder``."""
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise ValueError(f"manual_dir {folder} is not a directory")
  h = hashlib.sha256()
  tokens, labels = [], []
  for name, label in FILES:
    path = folder / name
    if not path.is_file():
      raise ValueError(f"manual_dir {folder}: missing {name} (expected "
                       f"{[f for f, _ in FILES]}, one sentence per line, Latin-1)")
    raw = path.read_bytes()
    h.update(name.encode() + hashlib.sha256(raw).digest())
    lines = text.decode_lines(raw, path)
    tokens += [np.array(text.clean_str(s), dtype=object) for s in lines]
    labels += [label] * len(lines)
  return {"tokens": tokens, "label": np.array(labels, np.int64)}, h.hexdigest()


def manual_config(folder) -> tfds.core.BuilderConfig:
  """The config for the sentence files in ``folder``, read and validated (raises ValueError)."""
  if folder is None:
    raise ValueError("dataset 'mr' needs manual_dir: a folder with rt-polarity.neg and "
                     "rt-polarity.pos (e.g. ../shared/data/mr); it has no download")
  _, fp = read_folder(folder)
  return builders.folder_config(folder, fp, "Sentence files")


def folds(n: int, num_folds: int, seed: int) -> list[np.ndarray]:
  """The ``num_folds`` sorted, disjoint index sets that cover ``range(n)``."""
  perm = np.random.default_rng(seed).permutation(n)
  return [np.sort(f) for f in np.array_split(perm, num_folds)]


def select(builder, split, *, fold, num_folds, fold_seed, min_count, max_len, vocab_file):
  """``(source, DataInfo)`` of ``split`` encoded with the run's vocabulary (see module doc)."""
  from cnnlab.data import sources  # noqa: PLC0415 - sources imports this module lazily
  DataError = sources.DataError  # noqa: N806
  if split not in ("train", "test", "all"):
    raise DataError("split", f"dataset 'mr' has splits 'train' / 'test' (the other folds / fold "
                    f"`fold` of `num_folds`) and 'all'; got {split!r}")
  data = views.read_all(builder.as_data_source("train"), ["tokens", "label"])
  n = len(data["label"])
  built_from = {"data": builder.builder_config.name, "fold": fold, "num_folds": num_folds,
                "fold_seed": fold_seed, "min_count": min_count, "max_len": max_len}
  reuse = bool(vocab_file) and os.path.exists(vocab_file)
  if vocab_file and not reuse and split != "train":
    raise DataError("vocab_file", f"{vocab_file} not found: the vocabulary is written when the "
                    "run's 'train' split is loaded and is never rebuilt from evaluation data")
  rows = {"all": np.arange(n)}
  if split != "all" or not reuse:  # the folds matter
    if not isinstance(num_folds, int) or not 2 <= num_folds <= n:
      raise DataError("num_folds", f"num_folds={num_folds!r} is invalid (allowed: 2..{n})")
    if not isinstance(fold, int) or not 0 <= fold < num_folds:
      raise DataError("fold", f"fold={fold!r} is invalid (allowed: 0..{num_folds - 1})")
    rows["test"] = folds(n, num_folds, fold_seed)[fold]
    rows["train"] = np.setdiff1d(np.arange(n), rows["test"])
  if reuse:
    try:
      vocab = text.Vocabulary.load(vocab_file)
    except ValueError as e:
      raise DataError("vocab_file", str(e)) from None
    if split == "train" and vocab.built_from != built_from:
      raise DataError("vocab_file", f"{vocab_file} was built from {vocab.built_from}, not from "
                      f"this training data {built_from}; use a fresh workdir")
  else:
    for field, v, low in (("min_count", min_count, 1), ("max_len", max_len, 0)):
      if not isinstance(v, int) or v < low:
        raise DataError(field, f"{field}={v!r} is invalid (allowed: an int >= {low})")
    vocab = text.Vocabulary.build([data["tokens"][i] for i in rows["train"]], min_count,
                                  max_len, built_from)
    if vocab_file:
      vocab.save(vocab_file)
  labels = np.asarray(data["label"], np.int64)[rows[split]]
  source = views.Arrays({"tokens": vocab.encode([data["tokens"][i] for i in rows[split]]),
                         "label": labels})
  info = sources.DataInfo("tokens", "label", (vocab.max_len,), "int32", 2,
                          {k: len(v) for k, v in rows.items()})
  return source, info


class CnnlabMr(ArrayRecordBuilder):
  """MR sentences from a folder (see module doc)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "A folder with rt-polarity.neg and rt-polarity.pos (sentence polarity dataset v1.0, "
      "Latin-1); use the config `manual_config(folder)`.")

  def _info(self):
    return self.dataset_info(
        {"tokens": tfds.features.Tensor(shape=(None,), dtype=np.str_),
         "label": tfds.features.ClassLabel(names=["neg", "pos"])},
        supervised_keys=("tokens", "label"),
        homepage="https://www.cs.cornell.edu/people/pabo/movie-review-data/",
        citation="B. Pang & L. Lee, Seeing stars: exploiting class relationships for sentiment "
                 "categorization with respect to rating scales, ACL 2005.")

  def _split_generators(self, dl_manager):
    columns = builders.read_checked(self, read_folder, dl_manager.manual_dir, "sentence files")
    return {"train": self._generate_examples(columns)}
