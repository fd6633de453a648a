"""Experiment configs: the shared defaults, ``:arg`` switches and validation.

A config file in ``configs/`` builds on :func:`base` and returns it from ``get_config(arg)``,
passing ``arg`` through :func:`apply_arg`. Fields (``config.<field>``):

- ``seed``; ``model.name`` (registry name) + any model option, e.g. ``model.conv_impl``;
- ``data``: ``name``, ``data_dir``/``manual_dir`` ('' = unset), ``train_split``/``eval_split``
  (TFDS slicing syntax), ``image_size`` (0 = native; else resized to a square on device),
  ``mean``/``std`` (after scaling uint8 to [0, 1]), ``random_crop_padding``, ``random_flip``,
  ``permute_features`` (+ ``permute_seed``), ``num_workers`` (Grain worker processes);
- ``optimizer``: ``name``, ``learning_rate``, ``momentum``, ``b1``/``b2``, ``weight_decay``,
  ``schedule`` (+ ``warmup_epochs``, ``decay_epochs``, ``decay_factor``), ``grad_clip_norm``
  (0 = off), ``label_smoothing``;
- ``batch_size`` (global), ``eval_batch_size``, ``num_epochs`` or ``num_train_steps`` (> 0 wins),
  ``log_every_steps``, ``eval_every_steps`` / ``checkpoint_every_steps`` (0 = once per epoch),
  ``keep_checkpoints``, ``half_precision`` (bfloat16 compute), ``progress_bar``.
"""

from __future__ import annotations

import ml_collections

ARGS = ("smoke", "local")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")


def base() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.model = ml_collections.ConfigDict({"name": "lenet5"})
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
  return c


def apply_arg(config: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  """Applies ``:arg`` switches (comma-separated). ``smoke``: 2 steps, small batches.
  ``local``: the embedded ``digits`` data (at the config's image size) in place of the config's
  dataset, for configs whose data needs a download or TensorFlow (model, optimizer and loop are
  unchanged)."""
  for a in filter(None, (arg or "").split(",")):
    if a not in ARGS:
      raise ValueError(f"config arg {a!r} is not one of {ARGS}")
    if a == "smoke":
      config.num_train_steps = 2
      config.batch_size = 16
      config.eval_batch_size = 64
      config.log_every_steps = 1
      config.checkpoint_every_steps = 2
      config.progress_bar = False
    if a == "local":
      config.data.update(name="digits", manual_dir="", data_dir="", train_split="train",
                         eval_split="test", mean=(0.3,), std=(0.4,))
  return config


def mnist8k(model_name: str, image_size: int = 32, **model_options) -> ml_collections.ConfigDict:
  """The zoo's real-digit recipe: ``model_name`` on mnist8k (../shared/data/mnist8k, images
  0-5,999 train / 6,000-7,999 eval), 28x28 resized to ``image_size`` on device, random 2-pixel
  shifts, Adam 1e-3 with cosine decay and 0.5 warm-up epochs, batch 32, 10 epochs."""
  c = base()
  c.model = ml_collections.ConfigDict({"name": model_name, **model_options})
  c.data.name = "mnist"
  c.data.manual_dir = "../shared/data/mnist8k"
  c.data.train_split = "train[:6000]"
  c.data.eval_split = "train[6000:8000]"
  c.data.image_size = image_size
  c.data.mean = (0.1307,)
  c.data.std = (0.3081,)
  c.data.random_crop_padding = 2
  c.optimizer.learning_rate = 1e-3
  c.optimizer.warmup_epochs = 0.5
  c.batch_size = 32
  c.num_epochs = 10
  c.log_every_steps = 94
  return c
