"""Generative WaveNet on FSDD's raw audio: a 256-way mu-law softmax over the next sample, then
audio drawn with the fast incremental sampler (per-layer queues, Paine et al. 2016).

Model `wavenet`: one cycle of dilations 1..512 (kernel 2: 1,024-sample receptive field, 128 ms
at 8 kHz), residual 32 / skip 64 channels, unconditioned. Task `next_step`: each 0.5 s crop
(4,000 samples, random offset; the pipeline's waveform in [-1, 1]) is mu-law encoded, the model
sees codes[:-1] and is trained on the cross entropy of codes[1:]. Data: FSDD's `train` split
(index >= 5, all five speakers), eval on `test` (index 0-4). Adam 1e-3, cosine, batch 8,
3,000 steps. Then experiment `wavenet_generate` writes 4 clips of 1 s (temperature 1) to
WORKDIR/samples/sample_{0..3}.wav and samples.png (waveform + spectrogram).
Command:
  python scripts/run.py --config=configs/sequence/wavenet_generate_fsdd.py \
      --workdir=runs/wavenet_generate_fsdd
Smoke (2 steps of a 4-layer net on 512-sample crops, one 200-sample clip): :smoke
Result (2026-12-05, seed 0, one core shared with another training run; 45 min of wall time
  for the 3,000 steps and the four clips): eval (FSDD's test split, 250 crops) next-sample
  cross entropy 2.63 nats, accuracy 27.3 % (step 1,000: 2.73 / 26.2 %). Samples: speech-like
  bursts between silences, energy mostly below 1 kHz, no words; docs/figures/wavenet_generate_fsdd/
  (samples.png, sample_{0..3}.wav), shown in docs/sequence.md, "Generated audio".
Published: van den Oord et al. 2016 give no FSDD figure (their speech model: VCTK, 30 layers,
MOS ratings); the next-sample accuracy and loss here are the reference. Receptive field of one
1..512 cycle with kernel 2: 1,024 samples, as the paper.
"""

import ml_collections

from cnnlab.train import config as config_lib


def get_config(arg=None):
  args = config_lib.parse_arg(arg, ("smoke",))
  c = config_lib.fsdd_data(config_lib.base(), audio_length=4000)
  c.experiment = "wavenet_generate"
  c.task = "next_step"
  c.data.update(train_split="train", eval_split="test", exclude_speakers=(), gain_db=0.0,
                noise_std=0.0)
  c.data.eval_options = ml_collections.ConfigDict({"speakers": (), "exclude_speakers": ()})
  c.model.update(name="wavenet", residual_channels=32, skip_channels=64, layers_per_cycle=10,
                 num_cycles=1, quantization_levels=256)
  c.optimizer.update(name="adam", learning_rate=1e-3, schedule="cosine", warmup_epochs=0.5)
  c.batch_size = 8
  c.eval_batch_size = 50
  c.num_train_steps = 3000
  c.log_every_steps = 100
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 500
  c.generate = ml_collections.ConfigDict(dict(num_samples=4, length=8000, temperature=1.0,
                                              seed=0))
  if args.get("smoke"):
    config_lib.smoke(c)
    c.data.update(audio_length=512)
    c.model.update(layers_per_cycle=4, residual_channels=8, skip_channels=16)
    c.generate.update(num_samples=1, length=200)
  return c
