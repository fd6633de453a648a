"""Transfer scenario "large target, similar domain" -> the lecture's fine-tune all: LeNet-5 from
configs/transfer/pretrain_mnist8k.py with a new 10-way head, every layer trained (the
pretrained ones at 0.1x the head's learning rate) on all 1,437 training images of sklearn
digits upscaled to 32x32; eval on the 360 test digits.
Recipe and the other approaches (``:approach=scratch|probe|early|finetune``):
configs/transfer/scenarios.py.
Command (after the pretraining run, from the repository root):
  python scripts/run.py --config=configs/transfer/digits_large_similar.py \\
      --workdir=runs/transfer/digits_large_similar
Smoke (2 steps, no init_from): :smoke
Result: docs/experiments/transfer_scenarios.md (the sweep over labels per class and approaches).
"""

import pathlib

from cnnlab.sweep import job

scenarios = job.load_module(str(pathlib.Path(__file__).with_name("scenarios.py")))


def get_config(arg=None):
  _, approach, smoke, _ = scenarios.parse(arg, "digits", "finetune")
  return scenarios.scenario("digits", approach, 0, smoke)
