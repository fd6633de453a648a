"""The source network of the transfer scenarios (configs/transfer/scenarios.py): LeNet-5 on
mnist8k images 0-5,999 (eval 6,000-7,999), the recipe of configs/lenet5_mnist8k.py: 28x28
resized to 32x32, random 2-pixel shifts; Adam 1e-3, cosine, 0.5 warm-up epochs, batch 32, 10
epochs (1,870 steps). LeNet-5 takes 32x32x1 inputs, the size every target is resized to
(sklearn digits upscaled, FSDD log-mel spectrograms).
Command (its workdir is the scenarios' ``init_from.workdir``; run from the repository root):
  python scripts/run.py --config=configs/transfer/pretrain_mnist8k.py \\
      --workdir=runs/transfer/pretrain_mnist8k
Smoke (2 steps): --config=configs/transfer/pretrain_mnist8k.py:smoke
Result: docs/experiments/transfer_scenarios.md ("Source network").
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  c = config_lib.mnist8k("lenet5", num_epochs=10)
  c.eval_batch_size = 500
  return config_lib.apply_arg(c, arg)
