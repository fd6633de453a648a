"""Transfer scenario "small target, very different domain" -> the lecture's linear classifier on
earlier activations: LeNet-5 from configs/transfer/pretrain_mnist8k.py cut after C5
(``transfer.cut_after``: 120-d, before F6), trunk frozen, a new head ``cut_head`` trained on
FSDD spoken digits as 40 log-mel bins x 101 frames resized to 32x32, 5 labels per class (50
recordings of george, jackson, lucas, nicolas, a per-class subset drawn with the run's seed);
eval on all 500 recordings of the unseen speaker yweweler.
Recipe and the other approaches (``:approach=scratch|probe|early|finetune``):
configs/transfer/scenarios.py.
Command (after the pretraining run, from the repository root):
  python scripts/run.py --config=configs/transfer/fsdd_small_different.py \\
      --workdir=runs/transfer/fsdd_small_different
Smoke (2 steps, 0.25 s crops, yweweler's 50 test recordings, no init_from): :smoke
Result: docs/experiments/transfer_scenarios.md (the sweep over labels per class and approaches).
"""

import pathlib

from cnnlab.sweep import job

scenarios = job.load_module(str(pathlib.Path(__file__).with_name("scenarios.py")))


def get_config(arg=None):
  _, approach, smoke, _ = scenarios.parse(arg, "fsdd", "early")
  return scenarios.scenario("fsdd", approach, 5, smoke)
