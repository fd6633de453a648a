"""What LeNet-5 learned on mnist8k: C1 filters and one eval digit's maps through every layer.

Reads the trained run in ``run_workdir`` (first training ``train`` there — the recipe of
configs/lenet5_mnist8k.py — if it has no checkpoint and ``train_if_missing``); ``:smoke`` trains
2 steps into a temporary directory.
Command (trains LeNet-5 for 10 epochs, 1,870 steps, if runs/lenet5_mnist8k_features is empty):
  python scripts/run.py --config=configs/analysis/lenet_features.py --workdir=runs/lenet_features
Result: docs/experiments/lenet_features.md (regenerated 2026-12-02).
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  smoke = config_lib.parse_arg(arg, ("smoke",)).get("smoke")
  train = config_lib.mnist8k("lenet5")
  if smoke:
    config_lib.smoke(train)
  train.progress_bar = False
  return config_lib.analysis(
      "lenet_features", train=train,
      run_workdir="" if smoke else "runs/lenet5_mnist8k_features",  # '': a temporary directory
      train_if_missing=True,
      digit_index=0)  # which eval digit (of train[6000:8000]) to show
