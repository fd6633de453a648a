"""Spoken digits from raw audio or log-mel: Dai et al. 2017's M5 (or M11) 1D CNN on the waveform
and a 2D CNN on log-mel spectrograms, speaker-independent on FSDD.

Data (`cnnlab.train.config.fsdd_data`): shared/data/fsdd; train on every recording of george,
jackson, lucas and nicolas (2,000), validate on every recording of yweweler (500), a speaker the
model never heard; 1 s crops (8,000 samples, 8 kHz), +-6 dB gain and light noise in training.
`:model=m11` or `:spectrogram_cnn` (40 log-mel bins x 101 frames) swap the model. Adam 1e-3,
cosine, 30 epochs of batch 32 (62 steps each).
Command:
  python scripts/run.py --config=configs/sequence/m5_fsdd.py --workdir=runs/m5_fsdd
  python scripts/run.py --config=configs/sequence/m5_fsdd.py:spectrogram_cnn \
      --workdir=runs/spectrogram_fsdd
Evaluate on another folder of WAVs ({digit}_{speaker}_{index}.wav, any speakers):
  python scripts/evaluate.py --config=configs/sequence/m5_fsdd.py --workdir=runs/m5_fsdd \
      --config.data.manual_dir=DIR --config.data.eval_split=all \
      --config.data.eval_options.speakers="()"
Smoke (2 steps, 0.25 s crops, yweweler's test recordings): :smoke
Result (2026-12-05, seed 0, each run on one core of the 2-core CPU, 30 epochs): eval accuracy on
yweweler, the held-out speaker (500 recordings, chance 10 %):
  M5 (raw waveform)          57.6 % (best 62.4 % at epoch 24), train 99.7 %, 10.2 min
  log-mel 2D CNN             55.6 % (its best),                train 97.1 %, 13.3 min
  M11 (raw waveform)         28.4 % (best 38.4 % at epoch 8),  train 99.5 %,  8.7 min
All three fit the four training speakers and generalise poorly to a fifth voice: four speakers
are too few for speaker independence (the deeper M11 overfits most).
Published: Dai et al. report M5 63.4 % / M11 69.1 % on UrbanSound8k (not FSDD); FSDD's own README
gives no speaker-independent figure, so this config's number is the reference here.
"""

from cnnlab.train import config as config_lib

MODELS = ("m5", "m11", "spectrogram_cnn")


def get_config(arg=None):
  args = config_lib.parse_arg(arg, ("smoke",), {"model": MODELS}, positional="model")
  c = config_lib.fsdd_data(config_lib.base())
  c.model.name = args.get("model", "m5")
  if c.model.name == "spectrogram_cnn":
    c.data.log_mel = True  # (40, 101, 1): mel_bins 40, frame_step 80
  c.optimizer.update(name="adam", learning_rate=1e-3, schedule="cosine", warmup_epochs=1.0)
  c.batch_size = 32
  c.eval_batch_size = 100
  c.num_epochs = 30
  c.log_every_steps = 31
  if args.get("smoke"):
    config_lib.smoke(c)
    c.data.update(audio_length=2000, eval_split="test")
  return c
