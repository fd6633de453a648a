"""configs/sequence/wavenet_generate_fsdd.py:smoke end to end: 2 next-step training steps on
FSDD, then a sampled clip written as a valid 8 kHz 16-bit WAV and a PNG."""

import wave

import numpy as np
import pytest

from cnnlab import experiments
from cnnlab.train.errors import ConfigError
from conftest import REPO, SHARED_DATA, load_config_module


def test_trains_samples_and_writes_wav_and_png(tmp_path):
  if not (SHARED_DATA / "fsdd").is_dir():
    pytest.skip(f"FSDD not found at {SHARED_DATA / 'fsdd'} (the shared data folder)")
  c = load_config_module(REPO / "configs" / "sequence" / "wavenet_generate_fsdd.py").get_config(
      "smoke")
  out = experiments.run(c, str(tmp_path))
  assert np.isfinite(out["loss"]) and 0 <= out["accuracy"] <= 1
  with wave.open(out["wavs"][0], "rb") as f:
    assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, 8000)
    assert f.getnframes() == 1 + 200  # the prime and the drawn samples
    pcm = np.frombuffer(f.readframes(f.getnframes()), "<i2")
  f = 2 * 128 / 255 - 1  # the prime, mu-law code 128 (silence), decoded by G.711's formula
  assert pcm[0] == round(np.sign(f) * (256 ** abs(f) - 1) / 255 * 32767)
  with open(out["png"], "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("field, value, message", [
    ("num_samples", 0, r"config.generate.num_samples=0 is invalid: must be >= 1"),
    ("temperature", 0.0, r"config.generate.temperature=0.0 is invalid: must be > 0"),
])
def test_bad_generate_field_fails_before_training(field, value, message, tmp_path):
  """The sampling fields are checked first: a bad one does not cost a training run."""
  c = load_config_module(REPO / "configs" / "sequence" / "wavenet_generate_fsdd.py").get_config(
      "smoke")
  c.generate[field] = value
  with pytest.raises(ConfigError, match=message):
    experiments.run(c, str(tmp_path))
  assert not list(tmp_path.iterdir())

