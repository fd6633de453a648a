"""Grain input pipelines: a checkpointable training iterator and full-split eval batches.

Batches are dicts: ``inputs`` float32 ``(B, *input_shape)``, ``label`` int32 ``(B,)`` and, for
eval, ``mask`` bool ``(B,)`` (False on padding). ``B`` is the per-process batch size; each
process reads the examples ``process_index::process_count``.

Datasets whose images vary in size (``None`` in ``DataInfo.input_shape``, e.g. imagenet2012)
first go through a per-example stage in Grain (decoded images cannot be batched before it):
train takes an Inception-style random-resized crop (area 8-100 %, aspect 3/4-4/3), eval the
central 87.5 % square, both resized to ``image_size`` squared (PIL, bilinear).

Per batch, vectorised in numpy (no loop over examples): random crop (zero-pad by
``random_crop_padding``, then crop back) and horizontal flip for 2D images, seeded by Grain
(so the iterator state alone restores the stream); uint8 scaled to [0, 1]; ``(x - mean) / std``;
optional fixed permutation of the spatial positions (``permute_features``).

Waveforms of varying length (``input_shape == (None,)``, e.g. ``fsdd``; see ``cnnlab.data.audio``)
are cropped/padded per example to ``audio_length`` samples (train: uniform random offset, eval:
centred), then per batch scaled by a random gain (``gain_db``) plus Gaussian noise (``noise_std``)
in training and, with ``log_mel``, turned into ``(mel_bins, frames, 1)`` log-mel spectrograms
(``frame_length``, ``frame_step``, ``sample_rate``); else inputs are ``(audio_length, 1)``. These
fields are read with ``cfg.get`` (defaults in ``AUDIO_DEFAULTS``). Float labels (regression
targets) stay float32; integer labels of any shape become int32.

Grain worker processes (``num_workers`` > 0) die with the process that started them.

``labels_per_class`` (0 = all; read with ``cfg.get``) keeps a seeded per-class subset of the
train split (:func:`labeled_subset`, seed ``subset_seed``), for "few labels" experiments.
"""

from __future__ import annotations

import math

import numpy as np

from cnnlab import procs
from cnnlab.data import audio, views

AUDIO_DEFAULTS = dict(audio_length=0, gain_db=0.0, noise_std=0.0, log_mel=False, mel_bins=40,
                      frame_length=256, frame_step=80, sample_rate=8000)


def _audio_cfg(cfg) -> dict:
  a = {k: cfg.get(k, v) for k, v in AUDIO_DEFAULTS.items()}
  if a["audio_length"] <= 0:
    raise ValueError(f"data.audio_length={a['audio_length']} is invalid: the dataset's inputs "
                     "are waveforms of varying length; set the number of samples to crop/pad to "
                     "(allowed: > 0, e.g. 8000 = 1 s at 8 kHz)")
  return a


def _audio_batches(ds, cfg, train: bool):
  """Per batch: gain/noise augmentation (train), then the front end -> (B, L, 1) or log-mel."""
  a = _audio_cfg(cfg)
  if train and (a["gain_db"] or a["noise_std"]):
    ds = ds.random_map(lambda batch, rng: {**batch, "inputs": audio.augment(
        batch["inputs"], rng, a["gain_db"], a["noise_std"])})

  def front(batch):
    x = batch["inputs"]
    if a["log_mel"]:
      x = audio.log_mel(x, a["sample_rate"], a["mel_bins"], a["frame_length"], a["frame_step"])
    return {**batch, "inputs": x[..., None]}

  return ds.map(front)


def per_class_indices(labels, labels_per_class: int, seed: int, num_classes: int) -> np.ndarray:
  """Indices (ascending) of ``labels_per_class`` examples of each of the ``num_classes`` classes
  of ``labels`` (N,): for each class, its first ones in the order of
  ``np.random.default_rng(seed).permutation(N)``. ValueError if a class has fewer."""
  labels = np.asarray(labels)
  order = np.random.default_rng(seed).permutation(len(labels))
  by_class = order[np.argsort(labels[order], kind="stable")]  # classes ascending, draw order kept
  counts = np.bincount(labels, minlength=num_classes)
  if counts.min() < labels_per_class:
    m = int(counts.min())
    raise ValueError(f"class {int(counts.argmin())} has only {m} examples in the train split "
                     f"(allowed: 0 = all{f', or 1..{m}' if m else ''})")
  rank = np.arange(len(labels)) - np.repeat(np.cumsum(counts) - counts, counts)
  return np.sort(by_class[rank < labels_per_class])


def labeled_subset(source, info, cfg):
  """``source`` (a train split) cut to ``cfg.labels_per_class`` examples per class
  (:func:`per_class_indices` with seed ``cfg.subset_seed``); ``source`` itself if it is 0 or
  unset. Reads every label once."""
  k = cfg.get("labels_per_class", 0)
  if not k:
    return source
  labels = np.asarray(views.read_all(source, [info.label_key])[info.label_key])
  return views.Subset(source, per_class_indices(labels, k, cfg.get("subset_seed", 0),
                                                info.num_classes))


def is_audio(info) -> bool:
  """Waveforms of varying length, cropped to ``audio_length`` by the pipeline."""
  return tuple(info.input_shape) == (None,)


def _augment(cfg):
  p, flip = cfg.random_crop_padding, cfg.random_flip

  def fn(batch, rng: np.random.Generator):
    x = batch["inputs"]
    if x.ndim != 4:
      raise ValueError("data.random_crop_padding / data.random_flip need 2D images (B, H, W, C); "
                       f"got batches of shape {x.shape}")
    b, h, w, _ = x.shape
    if p:
      padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
      win = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(1, 2))
      oy, ox = rng.integers(0, 2 * p + 1, size=(2, b))
      x = np.moveaxis(win[np.arange(b), oy, ox], 1, -1)  # (B, C, H, W) -> (B, H, W, C)
    if flip:
      x = np.where(rng.random(b)[:, None, None, None] < 0.5, x[:, :, ::-1], x)
    return {**batch, "inputs": x}

  return fn


def _finish(cfg, info):
  """Scaling, normalisation and the optional feature permutation of a batch."""
  mean = np.asarray(cfg.mean, np.float32)
  std = np.asarray(cfg.std, np.float32)
  perm = None
  if cfg.permute_features:
    n = int(np.prod(example_shape(info, cfg)[:-1]))
    perm = np.random.default_rng(cfg.permute_seed).permutation(n)

  def fn(batch):
    x = batch["inputs"]
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    x = (x - mean) / std
    if perm is not None:
      x = x.reshape(x.shape[0], -1, x.shape[-1])[:, perm].reshape(x.shape)
    y = batch["label"]
    y = y.astype(np.float32 if np.issubdtype(y.dtype, np.floating) else np.int32)
    return {**batch, "inputs": x, "label": y}

  return fn


def is_variable_size(info) -> bool:
  """Images (H, W, C) whose size varies."""
  return len(info.input_shape) == 3 and any(d is None for d in info.input_shape)


def example_shape(info, cfg) -> tuple:
  """Per-example input shape as batched: variable spatial dims become ``cfg.image_size``;
  waveforms ``(audio_length, 1)`` or, with ``log_mel``, ``(mel_bins, frames, 1)``."""
  if is_audio(info):
    a = _audio_cfg(cfg)
    if a["log_mel"]:
      return (a["mel_bins"], audio.num_frames(a["audio_length"], a["frame_step"]), 1)
    return (a["audio_length"], 1)
  return tuple(cfg.image_size if d is None else d for d in info.input_shape)


def _resize(img, box, size):
  """Crops ``box`` = (left, top, right, bottom) of a uint8 ``(H, W, C)`` image, resizes to
  ``size`` squared."""
  from PIL import Image  # noqa: PLC0415
  pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
  out = np.asarray(pil.resize((size, size), Image.BILINEAR, box=box))
  return out[..., None] if img.shape[-1] == 1 else out


def _random_resized_crop(size):
  def fn(r, rng: np.random.Generator):
    img = r["inputs"]
    h, w = img.shape[:2]
    for _ in range(10):
      area = h * w * rng.uniform(0.08, 1.0)
      ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
      cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
      if 0 < cw <= w and 0 < ch <= h:
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        return {**r, "inputs": _resize(img, (left, top, left + cw, top + ch), size)}
    return _center_crop(size, 1.0)(r)
  return fn


def _center_crop(size, fraction=0.875):
  def fn(r):
    img = r["inputs"]
    h, w = img.shape[:2]
    c = fraction * min(h, w)
    top, left = (h - c) / 2, (w - c) / 2
    return {**r, "inputs": _resize(img, (left, top, left + c, top + c), size)}
  return fn


def _records(source, info):
  import grain  # noqa: PLC0415 - heavy; only when data is read
  return grain.MapDataset.source(source).map(
      lambda r: {"inputs": r[info.input_key], "label": r[info.label_key]})


def train_dataset(source, info, cfg, *, batch_size: int, seed: int, process_index: int = 0,
                  process_count: int = 1):
  """A ``grain.IterDataset``: infinite, reshuffled each epoch, checkpointable
  (``get_state``/``set_state``). ``batch_size`` is the per-process batch: process ``i`` of ``P``
  gets rows ``i*B:(i+1)*B`` of each global batch of ``P*B``: the examples of every global batch
  are the same whatever ``P`` (the batch-level augmentation draws are not); each process reads
  only its own rows."""
  import grain  # noqa: PLC0415
  ds = _records(source, info).seed(seed).shuffle().repeat(None)
  if is_variable_size(info):
    ds = ds.random_map(_random_resized_crop(cfg.image_size))
  if is_audio(info):
    ds = ds.random_map(audio.random_crop("inputs", _audio_cfg(cfg)["audio_length"]))
  ds = ds.batch(batch_size, drop_remainder=True)
  if cfg.random_crop_padding or cfg.random_flip:
    ds = ds.random_map(_augment(cfg))
  if is_audio(info):
    ds = _audio_batches(ds, cfg, train=True)
  it = ds[process_index::process_count].map(_finish(cfg, info)).to_iter_dataset()
  if cfg.num_workers:
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=cfg.num_workers),
                        worker_init_fn=procs.grain_worker_init)
  return it


def num_eval_batches(num_examples: int, batch_size: int, process_count: int = 1) -> int:
  """Batches per process so that every process runs the same number of eval steps."""
  per_process = -(-num_examples // process_count)
  return max(-(-per_process // batch_size), 1)


def eval_batches(source, info, cfg, *, batch_size: int, process_index: int = 0,
                 process_count: int = 1):
  """Yields every example of ``source`` exactly once, padded to full batches with ``mask``."""
  ds = _records(source, info)[process_index::process_count]
  if is_variable_size(info):
    ds = ds.map(_center_crop(cfg.image_size))
  if is_audio(info):
    ds = ds.map(audio.center_crop("inputs", _audio_cfg(cfg)["audio_length"]))
  ds = ds.batch(batch_size)
  if is_audio(info):
    ds = _audio_batches(ds, cfg, train=False)
  ds = ds.map(_finish(cfg, info))
  n = num_eval_batches(len(source), batch_size, process_count)
  empty = {"inputs": np.zeros((0, *example_shape(info, cfg)), np.float32),
           "label": np.zeros(0, np.int32)}
  for i in range(n):
    batch = ds[i] if i < len(ds) else empty
    k = len(batch["label"])
    pad = lambda a: np.concatenate([a, np.zeros((batch_size - k, *a.shape[1:]), a.dtype)])
    yield {"inputs": pad(batch["inputs"]), "label": pad(batch["label"]),
           "mask": np.arange(batch_size) < k}
