"""Pooling and shift invariance: small_cnn on mnist8k with max-pool, average-pool, strided-conv
or no downsampling (same seed, same everything else), analysed by ``:analysis``.

Training uses NO shift augmentation (data.random_crop_padding=0), so whatever invariance the
models show comes from the architecture and the data, not from training on shifted digits.
Native 28x28 inputs, width 16 (16/32/64 channels), BatchNorm, Adam 3e-3 cosine, batch 64, 4 epochs.
Commands:
  python scripts/sweep.py --config=configs/experiments/shift_invariance.py \
      --workdir=runs/shift_invariance --parallel=2
  python scripts/run.py --config=configs/experiments/shift_invariance.py:analysis \
      --workdir=runs/shift_invariance/analysis
Smoke (2 steps): --config=configs/experiments/shift_invariance.py:smoke
Result: docs/experiments/shift_invariance.md (regenerated 2026-12-02).
"""

from cnnlab import sweep
from cnnlab.train import config as config_lib


SWEEP_WORKDIR = "runs/shift_invariance"


def get_config(arg=None):
  """The training config of one point; ``:analysis``: shifts of the trained runs' eval digits
  (``max_shift`` pixels right and down, the first ``limit`` digits, 0 = all 2,000)."""
  if config_lib.parse_arg(arg, ("smoke", "analysis")).get("analysis"):
    return config_lib.analysis("shift_invariance", sweep_workdir=SWEEP_WORKDIR, max_shift=4,
                               limit=0)
  c = config_lib.mnist8k_data(config_lib.base(), image_size=0)
  c.model.name = "small_cnn"
  c.model.width = 16
  c.model.norm = "batch"
  c.model.downsample = "maxpool"
  c.data.random_crop_padding = 0
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 3e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_epochs = 0.25
  c.batch_size = 64
  c.num_epochs = 4
  c.log_every_steps = 31
  return config_lib.apply_arg(c, arg, extra_switches=("analysis",))


def get_sweep(arg=None):
  """One run per downsampling choice, seed 0 for all."""
  del arg
  return sweep.grid("model.downsample", ["maxpool", "avgpool", "stride", "none"])
