"""The video table: every video model of configs/video/ on Moving-MNIST clips, labelled by motion
direction (8 classes) and by digit (10 classes).

Points: `cnnlab.train.config.VIDEO_MODELS` x targets, each trained with the recipe of
`cnnlab.train.config.moving_digits` (375 steps of 16 clips, 100 for the 3D nets; Adam 1e-3,
cosine; eval on the 2,000 clips of the never-seen digits 6,000-7,999).
Command (the sweep, then the table: accuracy per target, parameters, MACs, train clips/s):
  python scripts/sweep.py --config=configs/video/fusion_table.py --workdir=runs/video/table \
      --parallel=2
  python scripts/run.py --config=configs/video/fusion_table.py:analysis \
      --workdir=runs/video/table/analysis
One point: --config=configs/video/fusion_table.py:model=c3d,target=digit
Result: the table in docs/video_dense.md.
"""

from cnnlab import sweep
from cnnlab.train import config as config_lib

SWEEP_WORKDIR = "runs/video/table"
TARGETS = ("direction", "digit")


def get_config(arg=None):
  """One (model, target) point; ``:analysis``: the table of the sweep."""
  args = config_lib.parse_arg(arg, ("smoke", "analysis"),
                              {"model": tuple(config_lib.VIDEO_MODELS), "target": TARGETS})
  if args.get("analysis"):
    return config_lib.analysis("video_table", sweep_workdir=SWEEP_WORKDIR)
  rest = ",".join([f"target={args.get('target', 'direction')}"] +
                  (["smoke"] if args.get("smoke") else []))
  return config_lib.moving_digits(args.get("model", "c3d"), rest)


def get_sweep(arg=None):
  """Cheapest models first, both targets each."""
  del arg
  return sweep.args([f"model={m},target={t}" for m in config_lib.VIDEO_MODELS for t in TARGETS])
