"""Spoken digits with a WaveNet classifier on the raw waveform, speaker-independent on FSDD.

Model `wavenet_classifier`: one cycle of dilations 1..512 (kernel 2: a 1,024-sample receptive
field, 128 ms at 8 kHz), gated tanh x sigmoid units, residual 16 / skip 32 channels; the summed
skips -> 1x1 -> global average pool -> dense. Data as configs/sequence/m5_fsdd.py
(`cnnlab.train.config.fsdd_data`: train george, jackson, lucas, nicolas; validate on yweweler,
never heard in training; 1 s crops). Adam 1e-3, cosine, 20 epochs of batch 32 (62 steps each).
Command:
  python scripts/run.py --config=configs/sequence/wavenet_fsdd.py --workdir=runs/wavenet_fsdd
Evaluate on another folder of WAVs: as m5_fsdd.py (--config.data.manual_dir=DIR
  --config.data.eval_split=all --config.data.eval_options.speakers="()").
Smoke (2 steps, 0.25 s crops, yweweler's test recordings): :smoke
Result (2026-12-05, seed 0, one core shared with one or two other runs, 92 min for 20 epochs):
  eval accuracy on yweweler, the held-out speaker (500 recordings, chance 10 %): 10.4 % (best
  20.0 % at epoch 2), eval loss rising from 2.3 to 5.1; train accuracy 75.6 %. The same
  checkpoint on george, a training speaker (--config.data.eval_options.speakers="('george',)"
  with scripts/evaluate.py): 72.6 %, so eval works and the net learned the training voices, not
  the digits: 128 ms of context averaged over the clip does not transfer to a new speaker, where
  M5 and the log-mel CNN do (57.6 % / 55.6 %, configs/sequence/m5_fsdd.py).
Published: WaveNet (van den Oord et al. 2016) reports no digit classification; the comparison
is with m5_fsdd.py (1D raw waveform) and m5_fsdd.py:spectrogram_cnn (2D log-mel) on this split.
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  args = config_lib.parse_arg(arg, ("smoke",))
  c = config_lib.fsdd_data(config_lib.base())
  c.model.update(name="wavenet_classifier", residual_channels=16, skip_channels=32,
                 layers_per_cycle=10, num_cycles=1)
  c.optimizer.update(name="adam", learning_rate=1e-3, schedule="cosine", warmup_epochs=1.0)
  c.batch_size = 32
  c.eval_batch_size = 100
  c.num_epochs = 20
  c.log_every_steps = 31
  if args.get("smoke"):
    config_lib.smoke(c)
    c.data.update(audio_length=2000, eval_split="test")
  return c
