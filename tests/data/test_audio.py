"""cnnlab.data.audio and the pipeline's waveform stages, against independent references.

References: ``torch.stft`` (centred frames, zero padding, periodic Hann) for the STFT, triangular
filters written out one by one from the HTK mel formula, brute-force enumeration of crop offsets.
"""

import math

import numpy as np
import pytest
import torch

from cnnlab import train
from cnnlab.data import DataInfo, audio, pipeline


def _cfg(**kw):
  cfg = train.base().data
  cfg.update(kw)
  return cfg


def reference_filterbank(num_freqs, sample_rate, mel_bins, fmin, fmax):
  mel = lambda f: 2595 * math.log10(1 + f / 700)
  hz = lambda m: 700 * (10 ** (m / 2595) - 1)
  step = (mel(fmax) - mel(fmin)) / (mel_bins + 1)
  bank = np.zeros((num_freqs, mel_bins))
  for m in range(mel_bins):
    lo, mid, hi = (hz(mel(fmin) + (m + j) * step) for j in range(3))
    for k in range(num_freqs):
      f = k * sample_rate / (2 * (num_freqs - 1))
      if lo < f <= mid:
        bank[k, m] = (f - lo) / (mid - lo)
      elif mid < f < hi:
        bank[k, m] = (hi - f) / (hi - mid)
  return bank


def test_htk_mel_scale_fixed_point():
  assert audio.hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.1)  # the scale's definition
  np.testing.assert_allclose(audio.mel_to_hz(audio.hz_to_mel([0.0, 440.0, 4000.0])),
                             [0.0, 440.0, 4000.0], atol=1e-9)


@pytest.mark.parametrize("fmin,fmax", [(0.0, 4000.0), (60.0, 3800.0)])
def test_mel_filterbank_matches_formula(fmin, fmax):
  got = audio.mel_filterbank(129, 8000, 20, fmin, fmax)
  np.testing.assert_allclose(got, reference_filterbank(129, 8000, 20, fmin, fmax), atol=1e-6)


def test_log_mel_matches_torch_stft():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((3, 1000)).astype(np.float32) * 0.1
  n_fft, hop, bins = 256, 80, 24
  got = audio.log_mel(x, 8000, bins, n_fft, hop)
  window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
  spec = torch.stft(torch.from_numpy(x.astype(np.float64)), n_fft, hop, window=window,
                    center=True, pad_mode="constant", return_complex=True).numpy()
  power = np.abs(spec / window.sum().item()) ** 2  # (B, F, T)
  ref = np.log(np.einsum("bft,fm->bmt", power, reference_filterbank(129, 8000, bins, 0, 4000))
               + audio.LOG_FLOOR)
  assert got.shape == (3, bins, 1 + 1000 // hop) == ref.shape
  np.testing.assert_allclose(got, ref, atol=2e-4)


def test_crops_are_windows_of_the_clip():
  rng = np.random.default_rng(1)
  long, short = rng.integers(-3000, 3000, 50).astype(np.int16), np.arange(1, 8, dtype=np.int16)
  for clip in (long, short):
    x = clip.astype(np.float32) / 32768
    n, length = len(clip), 20
    if n >= length:
      candidates = [x[o:o + length] for o in range(n - length + 1)]
    else:
      candidates = [np.concatenate([np.zeros(o), x, np.zeros(length - n - o)])
                    for o in range(length - n + 1)]
    fn = audio.random_crop("a", length)
    outs = [fn({"a": clip}, np.random.default_rng(s))["a"] for s in range(30)]
    assert all(any(np.array_equal(o, c) for c in candidates) for o in outs)
    assert len({o.tobytes() for o in outs}) > 1  # the offset is random
    centre = audio.center_crop("a", length)({"a": clip})["a"]
    np.testing.assert_array_equal(centre, candidates[(len(candidates) - 1) // 2])


def test_gain_and_noise():
  x = np.random.default_rng(2).uniform(-0.5, 0.5, (16, 100)).astype(np.float32)
  y = audio.augment(x, np.random.default_rng(0), gain_db=6.0, noise_std=0.0)
  ratio = y / x
  np.testing.assert_allclose(ratio, ratio[:, :1].repeat(100, 1), rtol=1e-5)  # one gain per row
  assert np.all((ratio[:, 0] >= 10 ** (-6 / 20) - 1e-6) & (ratio[:, 0] <= 10 ** (6 / 20) + 1e-6))
  z = audio.augment(x, np.random.default_rng(0), gain_db=0.0, noise_std=0.01)
  assert abs(np.std(z - x) - 0.01) < 1e-3


def test_pipeline_waveforms_and_log_mel():
  clips = [np.full(n, 1000 * (i + 1), np.int16) for i, n in enumerate([300, 1200, 800, 50])]
  source = [{"audio": c, "label": i} for i, c in enumerate(clips)]
  info = DataInfo("audio", "label", (None,), "int16", 10, {"train": 4})
  raw = _cfg(audio_length=800)
  batch = next(pipeline.eval_batches(source, info, raw, batch_size=4))
  assert batch["inputs"].shape == (4, 800, 1) == (4, *pipeline.example_shape(info, raw))
  np.testing.assert_allclose(batch["inputs"][1, :, 0], 2000 / 32768)  # centre crop of 1,200
  assert batch["inputs"][3].sum() == pytest.approx(50 * 4000 / 32768)  # 50 samples, padded
  mel = _cfg(audio_length=800, log_mel=True, mel_bins=16, gain_db=3.0, noise_std=1e-3)
  tb = next(iter(pipeline.train_dataset(source, info, mel, batch_size=2, seed=0)))
  assert tb["inputs"].shape == (2, 16, 11, 1) == (2, *pipeline.example_shape(info, mel))
  assert np.isfinite(tb["inputs"]).all() and tb["label"].dtype == np.int32
  with pytest.raises(ValueError, match="data.audio_length=0 is invalid"):
    pipeline.example_shape(info, _cfg())
