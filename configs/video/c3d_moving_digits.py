"""C3D-style 3D CNN (Tran et al. 2015) on Moving-MNIST clips: which way does the digit move?

Data: `cnnlab.train.config.moving_digits_data` (16 frames of 64x64, one mnist8k digit moving in one
of 8 directions; clips of digits 0-5,999 train, of the never-seen digits 6,000-7,999 eval).
Recipe: `cnnlab.train.config.moving_digits` (Adam 1e-3, cosine, batch 16). `:target=digit` labels
each clip with its digit instead of its direction.
Command:
  python scripts/run.py --config=configs/video/c3d_moving_digits.py --workdir=runs/video/c3d
Evaluate on clips composed from another IDX folder (images-idx3-ubyte.gz, labels-idx1-ubyte.gz):
  python scripts/evaluate.py --config=configs/video/c3d_moving_digits.py \
      --workdir=runs/video/c3d --config.data.manual_dir=DIR --config.data.eval_split=train
Smoke (2 steps, 64 eval clips): :smoke
Result (2026-12-05, eval clips of the never-seen digits):
  direction 92.2 %, digit 27.1 % (100 steps each);
  the whole table: docs/video_dense.md, "Video".
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  return config_lib.moving_digits("c3d", arg)
