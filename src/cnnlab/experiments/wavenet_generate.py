"""Generative WaveNet on FSDD: trains it with the training loop (``config.task='next_step'``,
resuming like any run), then draws ``config.generate.num_samples`` clips of
``config.generate.length`` samples with the model's fast incremental sampler
(``cnnlab.models.wavenet.sample``: per-layer queues, Paine et al. 2016) from a silent prime, and
writes them to ``WORKDIR/samples/sample_{i}.wav`` (16-bit PCM mono at ``data.sample_rate``) and
``WORKDIR/samples/samples.png`` (each clip's waveform above its spectrogram).
"""

from __future__ import annotations

import pathlib
import wave

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cnnlab.models import wavenet  # noqa: E402
from cnnlab.train import train_and_evaluate, workdir as workdir_lib  # noqa: E402
from cnnlab.train.validate import check_number  # noqa: E402


def write_wav(path, audio, sample_rate: int) -> None:
  """``audio`` in [-1, 1] as 16-bit PCM mono (the standard library's ``wave``)."""
  pcm = np.clip(np.round(np.asarray(audio) * 32767), -32768, 32767).astype("<i2")
  with wave.open(str(path), "wb") as f:
    f.setnchannels(1)
    f.setsampwidth(2)
    f.setframerate(sample_rate)
    f.writeframes(pcm.tobytes())


def plot(audio_NxL, sample_rate: int, path) -> None:
  n = len(audio_NxL)
  fig, axes = plt.subplots(2, n, figsize=(4 * n, 5), squeeze=False)
  t = np.arange(audio_NxL.shape[1]) / sample_rate
  for i, a in enumerate(audio_NxL):
    axes[0, i].plot(t, a, lw=0.5)
    axes[0, i].set(title=f"sample {i}", xlabel="s", ylim=(-1, 1))
    nfft = min(256, len(a) // 2)  # 32 ms frames at 8 kHz (shorter for a short clip)
    axes[1, i].specgram(a, NFFT=nfft, Fs=sample_rate, noverlap=nfft * 11 // 16)
    axes[1, i].set(xlabel="s", ylabel="Hz")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def run(config, workdir: str) -> dict:
  for field in ("num_samples", "length"):  # checked before training, not after
    check_number(config, f"generate.{field}", 1, integer=True)
  check_number(config, "generate.temperature", 0, low_open=True)
  check_number(config, "generate.seed", integer=True)
  result = train_and_evaluate(config, workdir)
  _, model, variables = workdir_lib.load(workdir, "latest")
  g, rate = config.generate, config.data.get("sample_rate", 8000)
  prime = jnp.full((g.num_samples, 1), model.quantization_levels // 2, jnp.int32)  # silence
  codes = wavenet.sample(model, variables, jax.random.key(g.seed), prime, g.length,
                         temperature=g.temperature)
  audio = np.asarray(wavenet.mu_law_decode(codes, model.quantization_levels))
  out = pathlib.Path(workdir, "samples")
  out.mkdir(parents=True, exist_ok=True)
  wavs = []
  for i, a in enumerate(audio):
    write_wav(out / f"sample_{i}.wav", a, rate)
    wavs.append(str(out / f"sample_{i}.wav"))
  plot(audio, rate, out / "samples.png")
  return {**result, "wavs": wavs, "png": str(out / "samples.png")}
