"""Transfer scenario "large target, very different domain" -> the lecture's fine-tune all:
LeNet-5 from configs/transfer/pretrain_mnist8k.py with a new 10-way head, every layer trained
(the pretrained ones at 0.1x the head's learning rate) on all 2,000 FSDD recordings of george,
jackson, lucas and nicolas as 40 log-mel bins x 101 frames resized to 32x32; eval on all 500
recordings of the unseen speaker yweweler.
Recipe and the other approaches (``:approach=scratch|probe|early|finetune``):
configs/transfer/scenarios.py.
Command (after the pretraining run, from the repository root):
  python scripts/run.py --config=configs/transfer/fsdd_large_different.py \\
      --workdir=runs/transfer/fsdd_large_different
Smoke (2 steps, 0.25 s crops, yweweler's 50 test recordings, no init_from): :smoke
Result: docs/experiments/transfer_scenarios.md (the sweep over labels per class and approaches).
"""

import pathlib

from cnnlab.sweep import job

scenarios = job.load_module(str(pathlib.Path(__file__).with_name("scenarios.py")))


def get_config(arg=None):
  _, approach, smoke, _ = scenarios.parse(arg, "fsdd", "finetune")
  return scenarios.scenario("fsdd", approach, 0, smoke)
