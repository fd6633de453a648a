"""BN vs GN vs LN vs IN at small batch (Wu & He 2018, "Group Normalization", fig. 1).

Question: does GroupNorm's error stay flat as the batch shrinks, where BatchNorm's rises?
Model ``small_cnn`` (width 16, max-pool downsampling; LN = GN with 1 group, IN = GN with 1
channel per group) on mnist8k: train ``train[:6000]``, eval ``train[6000:8000]``, native 28x28.
One device, so the batch per "GPU" is the whole batch B in {2, 4, 8, 16, 32, 64}. SGD momentum
0.9 with the linear scaling rule (Goyal et al. 2017; Wu & He's lr = 0.1 * B / 32), half an epoch
of warmup then cosine, and the same number of epochs (2) for every B, as Wu & He, so smaller
batches take more steps.
BN is evaluated with its running averages (momentum 0.9), as usual.
Commands:
  python scripts/sweep.py --config=configs/experiments/norm_batch_size.py \
      --workdir=runs/norm_batch_size --parallel=2
  python scripts/run.py --config=configs/experiments/norm_batch_size.py:analysis \
      --workdir=runs/norm_batch_size/analysis
Smoke (2 steps): --config=configs/experiments/norm_batch_size.py:smoke
Result: docs/experiments/norm_batch_size.md (regenerated 2026-12-02).
"""

from cnnlab import sweep
from cnnlab.train import config as config_lib

BATCH_SIZES = (2, 4, 8, 16, 32, 64)
NORMS = ("batch", "group", "layer", "instance", "none")
BASE_LR, BASE_BATCH = 0.1, 32


def linear_lr(batch_size: int) -> float:
  """Goyal et al.'s linear scaling rule: lr = BASE_LR * batch_size / BASE_BATCH."""
  return BASE_LR * batch_size / BASE_BATCH


SWEEP_WORKDIR = "runs/norm_batch_size"


def get_config(arg=None):
  """The training config of one point; ``:analysis``: the table + figure from the sweep."""
  if config_lib.parse_arg(arg, ("smoke", "analysis")).get("analysis"):
    return config_lib.analysis(
        "norm_batch_size", sweep_workdir=SWEEP_WORKDIR,
        title="small_cnn on mnist8k, 2 epochs: eval error vs batch size")
  c = config_lib.mnist8k_data(config_lib.base(), image_size=0)
  c.data.random_crop_padding = 0
  c.model.name = "small_cnn"
  c.model.norm = "group"
  c.model.num_groups = 4  # GN: 4, 8, 16 channels per group in the 16-32-64-channel stages
  c.model.width = 16
  c.model.downsample = "maxpool"
  c.optimizer.name = "momentum"
  c.optimizer.momentum = 0.9
  c.optimizer.learning_rate = linear_lr(32)
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_epochs = 0.5
  c.batch_size = 32
  # 2,000 eval examples = 4 full batches of 500: no padding at all. (Padding would be harmless
  # anyway: eval BN uses running statistics and GN/LN/IN are per example; masked rows are dropped.)
  c.eval_batch_size = 500
  c.num_epochs = 2
  c.log_every_steps = 100
  return config_lib.apply_arg(c, arg, extra_switches=("analysis",))


def _points(norms, batch_sizes, seeds):
  return sweep.product(
      sweep.grid("model.norm", norms),
      sweep.zip_(sweep.grid("batch_size", batch_sizes),
                 sweep.grid("optimizer.learning_rate", [linear_lr(b) for b in batch_sizes])),
      sweep.grid("seed", seeds))


def get_sweep(arg=None):
  """norm x (batch size, linearly scaled lr), seed 0 for all, then seed 1 for all."""
  del arg
  return sweep.chain(*(_points(NORMS, BATCH_SIZES, [s]) for s in (0, 1)))
