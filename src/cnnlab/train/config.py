"""Helpers for config files: the shared defaults, ``:arg`` parsing, data recipes, repo paths.

A training config in ``configs/`` builds on :func:`base` and returns it from ``get_config(arg)``,
passing ``arg`` through :func:`apply_arg`. Fields (``config.<field>``):

- ``experiment``: the ``cnnlab.experiments`` module that runs the config (default ``train``: the
  training loop); ``seed``; ``task``: the loss and metrics (``cnnlab.train.steps``:
  ``classification``, ``sequence_classification`` per step, ``regression`` MSE, ``next_step``
  mu-law prediction, ``segmentation`` per pixel with mIoU, ``denoise`` (inputs + noise of std
  ``noise_std`` -> clean inputs), ``vae`` negative ELBO; chosen by the config, not guessed from
  the data); ``model.name``
  (registry name), ``model.conv_impl`` (the
  ``cnnlab.ops.conv`` impl every conv of the model uses; every model takes it; default ``auto``:
  per conv, the fastest measured on this backend, docs/performance.md) + any option of that
  model;
- ``data``: ``name``, ``data_dir``/``manual_dir`` ('' = unset), ``train_split``/``eval_split``
  (TFDS slicing syntax), ``image_size`` (0 = native; else resized to a square on device),
  ``mean``/``std`` (after scaling uint8 to [0, 1]), ``random_crop_padding``, ``random_flip``,
  ``permute_features`` (+ ``permute_seed``), ``num_workers`` (Grain worker processes),
  ``labels_per_class`` (optional; 0 = all: else a per-class subset of the train split drawn
  with ``subset_seed``, ``cnnlab.data.pipeline.labeled_subset``); a
  sequence dataset's options and audio front end (docs/data.md: e.g. ``fold``, ``speakers``,
  ``seq_len``, ``audio_length``) and ``eval_options`` (a ConfigDict of options that differ for
  the eval split, e.g. fsdd's held-out ``speakers``);
- ``optimizer``: ``name``, ``learning_rate``, ``momentum``, ``b1``/``b2``, ``rho``/``eps``
  (Adadelta's), ``weight_decay``, ``schedule`` (+ ``warmup_epochs``, ``decay_epochs``,
  ``decay_factor``), ``grad_clip_norm`` (0 = off), ``max_norm`` (0 = off: else each output
  unit's weights of the output layer ``fc`` are projected to l2 norm <= it after every update,
  Kim 2014), ``label_smoothing``;
- ``batch_size`` (global), ``eval_batch_size``, ``num_epochs`` or ``num_train_steps`` (> 0 wins),
  ``log_every_steps``, ``eval_every_steps`` / ``checkpoint_every_steps`` (0 = once per epoch),
  ``keep_checkpoints``, ``half_precision`` (compute in ``half_precision_dtype``: ``bfloat16``
  or ``float16``; params stay float32), ``progress_bar``;
- ``loss_scale``: ``none`` or ``dynamic`` (float16: the loss is multiplied by a scale that halves
  on an overflowing gradient, whose step is skipped, and doubles after ``loss_scale_period``
  finite steps; starts at ``loss_scale_init``; ``cnnlab.train.state``, docs/scale.md);
- ``grad_accum_steps`` (k: each step averages the gradients of k micro-batches of
  ``batch_size / k``), ``grad_accum_impl`` (``multisteps`` or ``scan``, ``cnnlab.train.accum``),
  ``ema_decay`` (0 = off; else evaluation uses an EMA of the params, ``cnnlab.train.state``);
  ``model.remat`` (ResNets: a ``jax.checkpoint`` policy per block, ``blocks.REMAT_POLICIES``);
  docs/scale.md;
- ``xla_cpu_options``: XLA compiler options for the train and eval steps, applied on the CPU
  backend only (``cnnlab.train.backend``: ``''`` = XLA's defaults, a preset (default
  ``no_ynn_conv``), or ``'name=value ...'``; docs/performance.md); may change on resumption;
- ``profile_steps``: ``(start, stop)`` traces steps start+1..stop into ``WORKDIR/profile`` and
  prints their input-wait / compute split (``cnnlab.train.profile``); ``(0, 0)`` = off;
- ``nonfinite_policy``: ``stop`` (a NaN/inf loss or gradient norm ends the run, exit code 3) or
  ``skip`` (such steps are not applied; ``max_nonfinite_skips`` in a row end the run).
- ``init_from`` (docs/transfer.md, "Init from another run"): ``workdir`` ('' = off: a training
  workdir or a ``scripts/convert_weights.py`` folder), ``step`` (``latest``/``best``/a number),
  ``include``/``skip`` (path patterns of the variables to load / leave fresh);
- ``transfer`` (docs/transfer.md, "Freezing and learning-rate groups"): ``trainable``/``frozen``
  (path patterns), ``lr_multipliers`` (``'PATTERN=M,...'``), ``cut_after`` (a feature name: cut
  the model there and put a new head, '' = off).

``:arg`` is a comma-separated list of switches (``smoke``) and ``key=value`` pairs
(``model=resnet18``); :func:`parse_arg` checks it against what a config declares.
"""

from __future__ import annotations

import pathlib

import ml_collections

from cnnlab.train.errors import ConfigError

# A preset of cnnlab.train.backend (named here: a config loads without JAX). On this project's
# 2-core CPU, ResNet-18's train step ran 0.71x torch eager with it against 0.43x with XLA's
# defaults (docs/performance.md, "XLA CPU options").
DEFAULT_XLA_CPU_OPTIONS = "no_ynn_conv"

ARGS = ("smoke", "local")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "adadelta")
TASKS = ("classification", "sequence_classification", "regression", "next_step",
         "segmentation", "denoise", "vae")
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
  c.task = "classification"
  c.noise_std = 0.0
  c.model = ml_collections.ConfigDict({"name": "lenet5", "conv_impl": "auto"})
  c.data = ml_collections.ConfigDict(dict(
      name="digits", data_dir="", manual_dir="", train_split="train", eval_split="test",
      image_size=0, mean=(0.0,), std=(1.0,), random_crop_padding=0, random_flip=False,
      permute_features=False, permute_seed=0, num_workers=0))
  c.optimizer = ml_collections.ConfigDict(dict(
      name="adam", learning_rate=1e-3, momentum=0.9, b1=0.9, b2=0.999, weight_decay=0.0,
      schedule="cosine", warmup_epochs=0.0, decay_epochs=(), decay_factor=0.1,
      grad_clip_norm=0.0, label_smoothing=0.0, rho=0.9, eps=1e-6, max_norm=0.0))
  c.batch_size = 128
  c.eval_batch_size = 256
  c.num_epochs = 10.0
  c.num_train_steps = 0
  c.log_every_steps = 50
  c.eval_every_steps = 0
  c.checkpoint_every_steps = 0
  c.keep_checkpoints = 2
  c.half_precision = False
  c.half_precision_dtype = "bfloat16"
  c.loss_scale = "none"
  c.loss_scale_init = 2.0 ** 15
  c.loss_scale_period = 2000
  c.progress_bar = True
  c.nonfinite_policy = "stop"
  c.max_nonfinite_skips = 10
  c.profile_steps = (0, 0)
  c.xla_cpu_options = DEFAULT_XLA_CPU_OPTIONS
  c.grad_accum_steps = 1
  c.grad_accum_impl = "multisteps"
  c.ema_decay = 0.0
  c.init_from = ml_collections.ConfigDict(dict(workdir="", step="latest", include="", skip=""))
  c.transfer = ml_collections.ConfigDict(dict(trainable="", frozen="", lr_multipliers="",
                                              cut_after=""))
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
  c.model = ml_collections.ConfigDict({"name": model_name, "conv_impl": "auto", **model_options})
  c.optimizer.update(name="adam", learning_rate=1e-3, schedule="cosine",
                     warmup_epochs=min(0.5, num_epochs / 4))
  c.batch_size = 32
  c.num_epochs = num_epochs
  c.log_every_steps = 94
  return c


FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "yweweler")


def fsdd_data(config: ml_collections.ConfigDict, held_out: str = "yweweler",
              audio_length: int = 8000) -> ml_collections.ConfigDict:
  """FSDD (``shared/data/fsdd``), speaker-independent: train on every recording of the other
  four speakers, evaluate on every recording of ``held_out`` (``all`` split both, selected by
  speaker); 1 s crops (``audio_length`` samples at 8 kHz; train at a random offset, eval
  centred), +-6 dB gain and noise std 0.003 in training."""
  config.data.update(name="fsdd", manual_dir=shared_data("fsdd"), train_split="all",
                     eval_split="all", audio_length=audio_length, gain_db=6.0, noise_std=0.003,
                     log_mel=False, speakers=(), exclude_speakers=(held_out,))
  config.data.eval_options = ml_collections.ConfigDict(
      {"speakers": (held_out,), "exclude_speakers": ()})
  return config


def moving_digits_data(config: ml_collections.ConfigDict, target: str = "direction",
                       num_frames: int = 16, frame_size: int = 64) -> ml_collections.ConfigDict:
  """Moving-MNIST clips (``moving_digits``) composed from mnist8k: clips of digits 0-5,999
  train, of digits 6,000-7,999 eval (a digit never seen in training); one digit,
  ``num_frames`` frames of ``frame_size`` squared; labels: ``target`` (``direction``, 8 classes,
  or ``digit``); MNIST mean/std."""
  config.data.update(name="moving_digits", manual_dir=shared_data("mnist8k"),
                     train_split="train[:6000]", eval_split="train[6000:8000]",
                     mean=(0.1307,), std=(0.3081,), num_frames=num_frames,
                     frame_size=frame_size, num_digits=1, target=target)
  return config


# The video models' options on 16x64x64 clips (cnnlab.models.video; 3D nets at half width).
VIDEO_MODELS = {"single_frame": {}, "early_fusion": {}, "late_fusion": {}, "slow_fusion": {},
                "c3d": {"widths": (8, 16, 32, 64, 64)}, "r2plus1d": {"widths": (8, 16, 32, 64, 64)}}


# The 3D nets' training budget in steps: ~4-6 s per step of 16 clips on one core of this CPU
# (XLA:CPU's 3D convs; 2026-12-05), so 100 steps (1,600 clips) in place of the others' 375.
VIDEO_STEPS = {"c3d": 100, "r2plus1d": 100}


def moving_digits(model_name: str, arg: str | None) -> ml_collections.ConfigDict:
  """The video recipe: ``model_name`` (with its :data:`VIDEO_MODELS` options) on
  :func:`moving_digits_data` (``:target=digit`` for the digit's class), Adam 1e-3 with cosine
  decay, batch 16, 1 epoch of 375 steps (:data:`VIDEO_STEPS` for the 3D nets); ``:smoke``: 2
  steps (the eval clips of 64 digits); ``:figure``: clips of ``runs/video/MODEL`` with its
  predictions (``cnnlab.experiments.predictions_figure``)."""
  args = parse_arg(arg, ("smoke", "figure"), {"target": ("direction", "digit")})
  if args.get("figure"):
    return analysis("predictions_figure", run_workdir=f"runs/video/{model_name}", num_examples=4)
  c = moving_digits_data(base(), args.get("target", "direction"))
  c.model = ml_collections.ConfigDict({"name": model_name, "conv_impl": "auto",
                                       **VIDEO_MODELS[model_name]})
  c.optimizer.update(name="adam", learning_rate=1e-3, schedule="cosine", warmup_epochs=0.2)
  c.batch_size = 16
  c.eval_batch_size = 100
  c.num_epochs = 1
  c.num_train_steps = VIDEO_STEPS.get(model_name, 0)
  c.log_every_steps = 75
  if args.get("smoke"):
    smoke(c)
    c.data.eval_split = "train[6000:6064]"
  return c


def digit_segmentation_data(config: ml_collections.ConfigDict,
                            canvas_size: int = 64) -> ml_collections.ConfigDict:
  """Digit canvases (``digit_segmentation``: 1-3 digits at scales 0.75-1.25, overlapping, 11
  classes with background 10) composed from mnist8k: digits 0-5,999 train, 6,000-7,999 eval;
  MNIST mean/std; task ``segmentation``."""
  config.data.update(name="digit_segmentation", manual_dir=shared_data("mnist8k"),
                     train_split="train[:6000]", eval_split="train[6000:8000]",
                     mean=(0.1307,), std=(0.3081,), canvas_size=canvas_size)
  config.task = "segmentation"
  return config


# The segmentation models' options (cnnlab.models: fcn8s, unet, dilated_context) on 64x64 canvases.
DENSE_MODELS = {"fcn8s": {}, "unet": {"decoder": "transpose"}, "dilated_context": {}}


def digit_segmentation(model_name: str, arg: str | None, num_epochs: float = 10
                       ) -> ml_collections.ConfigDict:
  """The segmentation recipe: ``model_name`` (with its :data:`DENSE_MODELS` options;
  ``:decoder=resize`` for U-Net's resize-conv decoder) on :func:`digit_segmentation_data`, Adam
  1e-3 with cosine decay and 0.5 warm-up epochs, batch 32, ``num_epochs`` epochs (187 steps each);
  ``:smoke``: 2 steps (64 eval canvases); ``:figure``: canvases, true and predicted masks of
  ``runs/dense/MODEL`` (``cnnlab.experiments.predictions_figure``)."""
  args = parse_arg(arg, ("smoke", "figure"), {"decoder": ("transpose", "resize")})
  if args.get("figure"):
    return analysis("predictions_figure", run_workdir=f"runs/dense/{model_name}", num_examples=4)
  c = digit_segmentation_data(base())
  c.model = ml_collections.ConfigDict({"name": model_name, "conv_impl": "auto",
                                       **DENSE_MODELS[model_name]})
  if "decoder" in args:
    c.model.decoder = args["decoder"]
  c.optimizer.update(name="adam", learning_rate=1e-3, schedule="cosine", warmup_epochs=0.5)
  c.batch_size = 32
  c.eval_batch_size = 100
  c.num_epochs = num_epochs
  c.log_every_steps = 94
  if args.get("smoke"):
    smoke(c)
    c.data.eval_split = "train[6000:6064]"
  return c


def mnist8k_unit(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """mnist8k as in :func:`mnist8k_data` but 28x28 pixels in [0, 1] (mean 0, std 1), no shifts:
  the inputs and targets of the generative models."""
  mnist8k_data(config, image_size=0)
  config.data.update(mean=(0.0,), std=(1.0,), random_crop_padding=0)
  return config


def sequence_mnist_data(config: ml_collections.ConfigDict, dataset: str = "sequential_mnist"
                        ) -> ml_collections.ConfigDict:
  """mnist8k (as :func:`mnist8k_data`: images 0-5,999 train, 6,000-7,999 eval, MNIST mean/std)
  as 784-step sequences: ``sequential_mnist`` (row-major) or ``permuted_mnist`` (permutation
  seed 0)."""
  config.data.update(name=dataset, manual_dir=shared_data("mnist8k"), train_split="train[:6000]",
                     eval_split="train[6000:8000]", mean=(0.1307,), std=(0.3081,))
  if dataset == "permuted_mnist":
    config.data.permutation_seed = 0
  return config
