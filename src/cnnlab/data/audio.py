"""Waveform input stages: fixed-length crop/pad, gain/noise augmentation, log-mel front end.

Waveforms are int16 recordings of any length in, float32 in [-1, 1) out (``/ 32768``).
The log-mel front end: ``scipy.signal.ShortTimeFFT`` (periodic Hann window of ``frame_length``,
hop ``frame_step``, frames centred at ``0, hop, 2 hop, ...`` with zero padding at the ends,
``1 + L // hop`` frames, magnitudes scaled by ``1 / sum(window)``), power spectrum, triangular
filters equally spaced on the HTK mel scale ``2595 log10(1 + f / 700)`` between ``fmin`` and
``fmax`` (peak 1, no area normalisation: librosa's ``filters.mel(htk=True, norm=None)``),
``log(mel + LOG_FLOOR)``.
"""

from __future__ import annotations

import numpy as np

INT16_SCALE = 32768.0
LOG_FLOOR = 1e-6


def crop_or_pad(x, length: int, offset: int) -> np.ndarray:
  """``x`` (n,) as float32 ``(length,)``: ``x[offset:offset + length]`` if ``n >= length``,
  else ``x`` placed at ``offset`` in zeros (``0 <= offset <= |n - length|``)."""
  x = np.asarray(x).astype(np.float32) / INT16_SCALE
  n = len(x)
  if n >= length:
    return x[offset:offset + length]
  out = np.zeros(length, np.float32)
  out[offset:offset + n] = x
  return out


def random_crop(key: str, length: int):
  """A Grain ``random_map`` function: ``record[key]`` cropped/padded at a uniform offset."""
  def fn(record, rng: np.random.Generator):
    x = record[key]
    offset = int(rng.integers(0, abs(len(x) - length) + 1))
    return {**record, key: crop_or_pad(x, length, offset)}
  return fn


def center_crop(key: str, length: int):
  """A Grain ``map`` function: ``record[key]`` cropped/padded about its centre."""
  def fn(record):
    x = record[key]
    return {**record, key: crop_or_pad(x, length, abs(len(x) - length) // 2)}
  return fn


def augment(x_BxL, rng: np.random.Generator, gain_db: float, noise_std: float) -> np.ndarray:
  """Each waveform times ``10 ** (g / 20)``, ``g ~ U(-gain_db, gain_db)``, plus Gaussian noise
  of standard deviation ``noise_std`` (full scale = 1)."""
  b = x_BxL.shape[0]
  gain = 10.0 ** (rng.uniform(-gain_db, gain_db, (b,) + (1,) * (x_BxL.ndim - 1)) / 20.0)
  noise = rng.standard_normal(x_BxL.shape) * noise_std if noise_std else 0.0
  return (x_BxL * gain + noise).astype(np.float32)


def hz_to_mel(f):
  return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m):
  return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filterbank(num_freqs: int, sample_rate: float, mel_bins: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
  """``(num_freqs, mel_bins)`` triangular HTK-mel filters over the one-sided FFT bins
  ``k * sample_rate / (2 (num_freqs - 1))``."""
  fmax = sample_rate / 2 if fmax is None else fmax
  freqs = np.linspace(0.0, sample_rate / 2, num_freqs)
  edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), mel_bins + 2))
  lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
  up = (freqs[:, None] - lower) / (center - lower)
  down = (upper - freqs[:, None]) / (upper - center)
  return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


def log_mel(x_BxL, sample_rate: float, mel_bins: int = 40, frame_length: int = 256,
            frame_step: int = 80, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
  """float32 ``(B, mel_bins, 1 + L // frame_step)`` log-mel spectrogram (see module doc)."""
  import scipy.signal  # noqa: PLC0415 - ~1-4 s to import; only log-mel runs need it
  window = scipy.signal.windows.hann(frame_length, sym=False)
  stft = scipy.signal.ShortTimeFFT(window, frame_step, sample_rate, scale_to="magnitude")
  n = x_BxL.shape[-1]
  spec_BxFxT = stft.stft(x_BxL, p0=0, p1=n // frame_step + 1, axis=-1)
  power = np.abs(spec_BxFxT) ** 2
  bank = mel_filterbank(power.shape[-2], sample_rate, mel_bins, fmin, fmax)
  mel_BxMxT = np.einsum("bft,fm->bmt", power, bank)
  return np.log(mel_BxMxT + LOG_FLOOR).astype(np.float32)


def num_frames(length: int, frame_step: int) -> int:
  return 1 + length // frame_step
