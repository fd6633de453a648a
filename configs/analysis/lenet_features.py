"""What LeNet-5 learned on mnist8k: C1 filters and one eval digit's maps through every layer.

Reads the trained run in ``run_workdir`` (trains it there with ``train_config`` first if it has
no checkpoint and ``train_if_missing``); ``:smoke`` trains 2 steps into a temporary directory.
Command (trains configs/lenet5_mnist8k.py, 10 epochs, if runs/lenet5_mnist8k_features is empty):
  python scripts/exp_lenet_features.py --config=configs/analysis/lenet_features.py \
      --workdir=runs/lenet_features
Result (seed 0, 10 epochs, 1,870 steps; training 4 min 9 s wall on the shared 2-core CPU, the
analysis 10 s): eval accuracy 97.85 %; eval digit 0 (a 9) predicted 9 (logit 7.49, next 7: 3.27).
Figures docs/figures/lenet_filters.png and lenet_feature_maps.png; see
docs/experiments/lenet_features.md.
"""

import ml_collections


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.train_config = "configs/lenet5_mnist8k.py"
  c.train_arg = ""
  c.run_workdir = "runs/lenet5_mnist8k_features"
  c.train_if_missing = True
  c.digit_index = 0  # which eval digit (of train[6000:8000]) to show
  for a in filter(None, (arg or "").split(",")):
    if a != "smoke":
      raise ValueError(f"config arg {a!r} is not one of ('smoke',)")
    c.train_arg = "smoke"
    c.run_workdir = ""  # a fresh temporary directory
  return c
