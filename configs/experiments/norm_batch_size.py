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
Result (2-core CPU, seeds 0 and 1, 60 runs, 27 min wall at --parallel=2 on a shared machine):
  eval error % (mean of 2 seeds) for B = 2 / 4 / 8 / 16 / 32 / 64:
  BN    5.18 / 3.73 / 3.33 / 3.43 / 3.73 /  4.15
  GN    4.65 / 4.78 / 5.53 / 6.15 / 7.77 / 19.60
  LN    5.63 / 5.87 / 6.33 / 6.73 / 8.32 / 14.97
  IN    5.03 / 5.35 / 5.83 / 6.07 / 7.15 / 11.58
  none  2.90 / 3.10 / 3.30 / 3.20 / 4.30 / 21.32
  BN is worst at B = 2 (+1.8 points over its best); GN is flat-ish at small B and beats BN only at
  B = 2; with 2 epochs, every net without BN is undertrained at large B (fewer steps at a larger
  lr). After 8 epochs (B = 2 / 8 / 64 only, 2 seeds; command in the doc): BN 2.22 / 1.82 / 2.42,
  GN 2.05 / 2.12 / 3.45, LN 2.32 / 2.32 / 2.97, IN 0.87 / 0.87 / 1.20, none 1.50 / 1.57 / 3.33.
  See docs/experiments/norm_batch_size.md.
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
