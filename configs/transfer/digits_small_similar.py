"""Transfer scenario "small target, similar domain" -> the lecture's feature extractor: a linear
probe (only a new 10-way head on LeNet-5's frozen F6 features, weights from
configs/transfer/pretrain_mnist8k.py) on sklearn digits upscaled to 32x32 with 5 labels per
class (50 images, a per-class subset drawn with the run's seed); eval on the 360 test digits.
Recipe and the other approaches (``:approach=scratch|probe|early|finetune``):
configs/transfer/scenarios.py.
Command (after the pretraining run, from the repository root):
  python scripts/run.py --config=configs/transfer/digits_small_similar.py \\
      --workdir=runs/transfer/digits_small_similar
Smoke (2 steps, no init_from): :smoke
Result: docs/experiments/transfer_scenarios.md (the sweep over labels per class and approaches).
"""

import pathlib

from cnnlab.sweep import job

scenarios = job.load_module(str(pathlib.Path(__file__).with_name("scenarios.py")))


def get_config(arg=None):
  _, approach, smoke, _ = scenarios.parse(arg, "digits", "probe")
  return scenarios.scenario("digits", approach, 5, smoke)
