"""A trained run's eval split as arrays, for analyses that feed it to the model directly."""

from __future__ import annotations

import numpy as np

from cnnlab import data
from cnnlab.data import pipeline
from cnnlab.train import steps


def eval_arrays(config, limit: int | None = None):
  """The eval split of ``config`` (with its dataset options) as the model sees it:
  ``(x_BxHxWxC float32, y_B int32)`` (labels keep their per-position axes), normalised and
  resized like ``cnnlab.train.steps.eval_step``; the first ``limit`` if given."""
  source, info = data.load(config.data.name, config.data.eval_split,
                           data_dir=config.data.data_dir or None,
                           manual_dir=config.data.manual_dir or None,
                           **data.options(config.data.name, config.data))
  n = len(source) if limit is None else min(limit, len(source))
  batch = next(pipeline.eval_batches(source, info, config.data, batch_size=n))
  x = steps.preprocess(batch["inputs"][:n], config.data.image_size)
  return np.asarray(x, np.float32), np.asarray(batch["label"][:n], np.int32)
