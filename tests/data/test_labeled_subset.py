"""``data.labels_per_class``: a seeded per-class subset of the train split, against a brute-force
re-statement of its definition; its validation and its effect on a training run's data."""

import numpy as np
import pytest

from cnnlab import train
from cnnlab.data import DataInfo, pipeline, views
from cnnlab.train import validate


def _brute_force(labels, k, seed):
  """For each class, walk the seeded permutation and keep the first k examples of that class."""
  order = np.random.default_rng(seed).permutation(len(labels))
  kept = []
  for c in sorted(set(labels.tolist())):
    kept += [int(i) for i in order if labels[i] == c][:k]
  return sorted(kept)


@pytest.mark.parametrize("k,seed", [(1, 0), (3, 1), (7, 5), (12, 2)])
def test_per_class_indices_match_brute_force(k, seed):
  labels = np.random.default_rng(100 + seed).integers(0, 4, 60)
  labels[:4 * 12] = np.repeat(np.arange(4), 12)  # every class has >= 12 examples
  got = pipeline.per_class_indices(labels, k, seed, num_classes=4)
  assert got.tolist() == _brute_force(labels, k, seed)
  assert np.bincount(labels[got], minlength=4).tolist() == [k] * 4


def test_subsets_are_deterministic_and_differ_by_seed():
  labels = np.tile(np.arange(10), 20)
  a = pipeline.per_class_indices(labels, 5, 0, 10)
  assert np.array_equal(a, pipeline.per_class_indices(labels, 5, 0, 10))
  assert not np.array_equal(a, pipeline.per_class_indices(labels, 5, 1, 10))


def test_too_few_examples_of_a_class_is_an_error():
  labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
  with pytest.raises(ValueError, match=r"class 1 has only 2 examples .*1\.\.2"):
    pipeline.per_class_indices(labels, 3, 0, 3)
  with pytest.raises(ValueError, match="class 3 has only 0"):  # a class absent from the split
    pipeline.per_class_indices(labels, 1, 0, 4)


def test_labeled_subset_reads_the_examples_of_the_indices():
  labels = np.repeat(np.arange(3), 4)
  source = views.Arrays({"x": np.repeat(np.arange(12)[:, None], 2, 1), "y": labels})
  info = DataInfo("x", "y", (2,), "int64", 3, {"train": 12})
  cfg = train.base().data
  assert pipeline.labeled_subset(source, info, cfg) is source  # unset: every example
  cfg.labels_per_class, cfg.subset_seed = 2, 4
  sub = pipeline.labeled_subset(source, info, cfg)
  want = _brute_force(labels, 2, 4)
  assert [sub[i]["x"][0] for i in range(len(sub))] == want


@pytest.mark.parametrize("field,value", [("labels_per_class", -1), ("labels_per_class", 2.0),
                                         ("subset_seed", True)])
def test_bad_fields_are_one_line_errors(field, value):
  config = train.base()
  config.data[field] = value
  with pytest.raises(train.ConfigError, match=rf"^config\.data\.{field}={value!r} is invalid: "
                     "must be an integer >= 0"):
    validate.check_fields(config)


def test_a_run_trains_on_the_subset(digits_config, tmp_path):
  """digits with 2 labels per class: 20 examples, so batch 20 is one epoch and batch 21 fails."""
  digits_config.data.labels_per_class = 2
  digits_config.batch_size = 21
  with pytest.raises(train.ConfigError, match="batch_size=21 is invalid: it is larger than the "
                     "train split 'train' \\(20 examples\\)"):
    train.train_and_evaluate(digits_config, str(tmp_path / "a"))
  digits_config.data.labels_per_class = 200
  with pytest.raises(train.ConfigError, match=r"^config\.data\.labels_per_class=200 is invalid: "
                     r"class \d has only \d+ examples"):
    train.train_and_evaluate(digits_config, str(tmp_path / "b"))
