"""Helpers for config files: the shared defaults, ``:arg`` parsing, data recipes, repo paths.

A training config in ``configs/`` builds on :func:`base` and returns it from ``get_config(arg)``,
passing ``arg`` through :func:`apply_arg`. Fields (``config.<field>``):

- ``experiment``: the ``cnnlab.experiments`` module that runs the config (default ``train``: the
  training loop); ``seed``; ``model.name`` (registry name), ``model.conv_impl`` (the
  ``cnnlab.ops.conv`` impl every conv of the model uses; every model takes it) + any option of
  that model;
- ``data``: ``name``, ``data_dir``/``manual_dir`` ('' = unset), ``train_split``/``eval_split``
  (TFDS slicing syntax), ``image_size`` (0 = native; else resized to a square on device),
  ``mean``/``std`` (after scaling uint8 to [0, 1]), ``random_crop_padding``, ``random_flip``,
  ``permute_features`` (+ ``permute_seed``), ``num_workers`` (Grain worker processes);
- ``optimizer``: ``name``, ``learning_rate``, ``momentum``, ``b1``/``b2``, ``weight_decay``,
  ``schedule`` (+ ``warmup_epochs``, ``decay_epochs``, ``decay_factor``), ``grad_clip_norm``
  (0 = off), ``label_smoothing``;
- ``batch_size`` (global), ``eval_batch_size``, ``num_epochs`` or ``num_train_steps`` (> 0 wins),
  ``log_every_steps``, ``eval_every_steps`` / ``checkpoint_every_steps`` (0 = once per epoch),
  ``keep_checkpoints``, ``half_precision`` (bfloat16 compute), ``progress_bar``;
- ``nonfinite_policy``: ``stop`` (a NaN/inf loss or gradient norm ends the run, exit code 3) or
  ``skip`` (such steps are not applied; ``max_nonfinite_skips`` in a row end the run).

``:arg`` is a comma-separated list of switches (``smoke``) and ``key=value`` pairs
(``model=resnet18``); :func:`parse_arg` checks it against what a config declares.
"""

from __future__ import annotations

import pathlib

import ml_collections

from cnnlab.train.errors import ConfigError

ARGS = ("smoke", "local")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")


def repo_root() -> pathlib.Path:
  """The checkout this package was installed from (editable install: ``src/cnnlab/..``), else
  the current directory."""
  root = pathlib.Path(__file__).resolve().parents[3]
  return root if (root / "configs").is_dir() else pathlib.Path.cwd()


def repo_path(relative: str) -> str:
  """``relative`` resolved against the repository root (not the current directory)."""
  return str((repo_root() / relative).resolve())


def shared_data(name: str) -> str:
  """A folder of ``shared/data`` beside the repository, e.g. ``shared_data('mnist8k')``."""
  return repo_path(f"../shared/data/{name}")


def parse_arg(arg: str | None, switches=(), values: dict | None = None,
              positional: str | None = None) -> dict:
  """``'smoke,model=resnet18'`` -> ``{'smoke': True, 'model': 'resnet18'}``.

  ``switches``: allowed bare words; ``values``: ``{key: allowed values}`` for ``key=value``;
  ``positional``: a key of ``values`` that a bare word from its allowed values also sets
  (``:resnet18`` == ``:model=resnet18``). Anything else raises :class:`ConfigError` naming the
  arg and the allowed forms."""
  values = values or {}
  allowed = [*switches, *(f"{k}=<{'|'.join(map(str, v))}>" for k, v in values.items())]
  out = {}
  for token in filter(None, (arg or "").split(",")):
    key, eq, value = token.partition("=")
    if not eq and key in switches:
      out[key] = True
    elif not eq and positional and key in values[positional]:
      out[positional] = key
    elif eq and key in values and value in values[key]:
      out[key] = value
    else:
      raise ConfigError(f"config arg {token!r} is invalid: allowed {', '.join(allowed) or 'none'}")
  return out


def analysis(experiment: str, **fields) -> ml_collections.ConfigDict:
  """The config of an experiment that trains nothing itself (an analysis of other runs, a
  benchmark): ``experiment`` plus its own ``fields``."""
  return ml_collections.ConfigDict({"experiment": experiment, **fields})


def base() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.experiment = "train"
  c.seed = 0
  c.model = ml_collections.ConfigDict({"name": "lenet5", "conv_impl": "lax"})
  c.data = ml_collections.ConfigDict(dict(
      name="digits", data_dir="", manual_dir="", train_split="train", eval_split="test",
      image_size=0, mean=(0.0,), std=(1.0,), random_crop_padding=0, random_flip=False,
      permute_features=False, permute_seed=0, num_workers=0))
  c.optimizer = ml_collections.ConfigDict(dict(
      name="adam", learning_rate=1e-3, momentum=0.9, b1=0.9, b2=0.999, weight_decay=0.0,
      schedule="cosine", warmup_epochs=0.0, decay_epochs=(), decay_factor=0.1,
      grad_clip_norm=0.0, label_smoothing=0.0))
  c.batch_size = 128
  c.eval_batch_size = 256
  c.num_epochs = 10.0
  c.num_train_steps = 0
  c.log_every_steps = 50
  c.eval_every_steps = 0
  c.checkpoint_every_steps = 0
  c.keep_checkpoints = 2
  c.half_precision = False
  c.progress_bar = True
  c.nonfinite_policy = "stop"
  c.max_nonfinite_skips = 10
  return c


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """2 train steps with small batches, no progress bar."""
  config.update(num_train_steps=2, batch_size=16, eval_batch_size=64, log_every_steps=1,
                checkpoint_every_steps=2, progress_bar=False)
  return config


def local_data(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The embedded ``digits`` data in place of the config's dataset (model, optimizer and loop
  unchanged), for configs whose data needs a download, TensorFlow or ``shared/``."""
  config.data.update(name="digits", manual_dir="", data_dir="", train_split="train",
                     eval_split="test", mean=(0.3,), std=(0.4,))
  return config


def apply_arg(config: ml_collections.ConfigDict, arg: str | None,
              extra_switches=()) -> ml_collections.ConfigDict:
  """Applies the shared ``:arg`` switches: ``smoke`` (:func:`smoke`) and ``local``
  (:func:`local_data`). ``extra_switches`` are switches the config handles itself (accepted
  here, not applied)."""
  args = parse_arg(arg, (*ARGS, *extra_switches))
  if args.get("local"):
    local_data(config)
  if args.get("smoke"):
    smoke(config)
  return config


def mnist8k_data(config: ml_collections.ConfigDict, image_size: int = 32
                 ) -> ml_collections.ConfigDict:
  """mnist8k (``shared/data/mnist8k`` beside the repo): images 0-5,999 train, 6,000-7,999
  eval, 28x28 resized to ``image_size`` on device, MNIST mean/std, random 2-pixel shifts."""
  config.data.update(name="mnist", manual_dir=shared_data("mnist8k"), train_split="train[:6000]",
                     eval_split="train[6000:8000]", image_size=image_size, mean=(0.1307,),
                     std=(0.3081,), random_crop_padding=2)
  return config


def mnist8k(model_name: str, image_size: int = 32, num_epochs: float = 10,
            **model_options) -> ml_collections.ConfigDict:
  """The real-digit recipe: ``model_name`` on :func:`mnist8k_data`, Adam 1e-3 with cosine decay
  and 0.5 warm-up epochs, batch 32, ``num_epochs`` epochs (188 steps each)."""
  c = mnist8k_data(base(), image_size)
  c.model = ml_collections.ConfigDict({"name": model_name, "conv_impl": "lax", **model_options})
  c.optimizer.update(name="adam", learning_rate=1e-3, schedule="cosine",
                     warmup_epochs=min(0.5, num_epochs / 4))
  c.batch_size = 32
  c.num_epochs = num_epochs
  c.log_every_steps = 94
  return c
