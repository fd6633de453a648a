"""A trained run's model, variables and eval split, read from its workdir.

A workdir made by ``cnnlab.train.train_and_evaluate`` holds ``config.json`` and
``checkpoints/<step>/state``; :func:`load` returns the config, the model and its inference
variables (``params`` and, for BatchNorm models, ``batch_stats``) at the latest step.
"""

from __future__ import annotations

import json
import pathlib

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from cnnlab import data, models
from cnnlab.data import pipeline
from cnnlab.train import steps, validate


def latest_step(workdir) -> int | None:
  ckpts = pathlib.Path(workdir, "checkpoints")
  found = [int(p.name) for p in ckpts.glob("*") if p.name.isdigit()] if ckpts.is_dir() else []
  return max(found, default=None)


def load(workdir):
  """``(config, model, variables)`` of the latest checkpoint in ``workdir``."""
  step = latest_step(workdir)
  if step is None:
    raise FileNotFoundError(f"no checkpoint in {workdir!r}/checkpoints")
  config = ml_collections.ConfigDict(json.loads(pathlib.Path(workdir, "config.json").read_text()))
  path = pathlib.Path(workdir, "checkpoints", str(step), "state").resolve()
  ckptr = ocp.StandardCheckpointer()
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        ckptr.metadata(path).item_metadata.tree)
  state = ckptr.restore(path, target)
  variables = {k: state[k] for k in ("params", "batch_stats") if state.get(k) is not None}
  _, info = _eval_source(config)
  model = models.create(config.model.name,
                        **validate.model_kwargs(config, num_classes=info.num_classes))
  return config, model, variables


def _eval_source(config):
  return data.load(config.data.name, config.data.eval_split, data_dir=config.data.data_dir or None,
                   manual_dir=config.data.manual_dir or None)


def eval_arrays(config, limit: int | None = None):
  """The eval split as the model sees it: ``(x_BxHxWxC float32, y_B int32)``, normalised and
  resized like ``cnnlab.train.steps.eval_step``; the first ``limit`` examples if given."""
  source, info = _eval_source(config)
  n = len(source) if limit is None else min(limit, len(source))
  batch = next(pipeline.eval_batches(source, info, config.data, batch_size=len(source)))
  x = steps.preprocess(batch["inputs"][:n], config.data.image_size)
  return np.asarray(x, np.float32), np.asarray(batch["label"][:n], np.int32)
