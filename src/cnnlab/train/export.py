"""A trained model's inference function as a serialised ``jax.export`` artifact (StableHLO).

``export_run(workdir, step)`` bakes the checkpoint's inference variables into
``predict(inputs_BxD...) -> logits_BxK``, where ``inputs`` are batches as the input pipeline gives
them (scaled and normalised with the run's ``data.mean``/``data.std``; the on-device resize to
``data.image_size`` is inside) and the batch size ``B`` is symbolic. ``save`` writes the bytes
and a JSON record beside them (input shape, normalisation, classes, source run and step);
``load`` returns the callable, which needs neither cnnlab nor the model code: the model is
traced with ``cnnlab.ops.native`` disabled, so the artifact names no custom call of cnnlab's.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp

from cnnlab import data, models
from cnnlab.data import pipeline
from cnnlab.ops import native
from cnnlab.train import steps, workdir as workdir_lib
from cnnlab.train.errors import ConfigError


def export_run(workdir, step: int | str = "latest", platforms=None) -> tuple[jax.export.Exported,
                                                                         dict]:
  """``(exported, record)`` of ``workdir``'s checkpoint at ``step`` ('latest', 'best', N) for
  ``platforms`` (default: this machine's backend)."""
  step = workdir_lib.resolve_step(workdir, step)
  config, model, variables = workdir_lib.load(workdir, step)
  task = config.get("task", "classification")
  if task == "next_step":
    raise ConfigError(f"config.task={task!r} is invalid for export: the model's inputs are "
                      "mu-law codes made inside the train step (allowed: runs of every other task)")
  d = config.data
  _, info = data.load(d.name, d.eval_split, data_dir=d.data_dir or None,
                      manual_dir=d.manual_dir or None, **data.options(d.name, d, str(workdir)))
  shape = tuple(pipeline.example_shape(info, d))
  dtype = models.get_spec(config.model.name).input_dtype

  def predict(inputs):
    x = steps.preprocess(inputs, d.image_size).astype(dtype)  # as the train/eval steps do
    out = model.apply(variables, x, train=False)  # an array, or a tuple (vae)
    return jax.tree.map(lambda a: a.astype(jnp.float32), out)

  (batch,) = jax.export.symbolic_shape("b")
  with native.disabled():
    exported = jax.export.export(jax.jit(predict), platforms=platforms)(
        jax.ShapeDtypeStruct((batch, *shape), jnp.float32))
  record = {"workdir": str(pathlib.Path(workdir).resolve()), "step": step,
            "model": config.model.name, "input_shape": ["B", *shape],
            "mean": list(d.mean), "std": list(d.std), "num_classes": info.num_classes,
            "platforms": list(exported.platforms)}
  return exported, record


def save(exported: jax.export.Exported, record: dict, path) -> pathlib.Path:
  """Writes ``path`` (the serialised function) and ``path.json`` (``record``)."""
  path, blob = pathlib.Path(path), exported.serialize()
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(blob)
  path.with_name(path.name + ".json").write_text(json.dumps(record, indent=2))
  return path


def load(path):
  """The exported ``predict`` at ``path`` as a callable on ``(B, ...)`` float32 inputs."""
  return jax.export.deserialize(bytearray(pathlib.Path(path).read_bytes())).call
