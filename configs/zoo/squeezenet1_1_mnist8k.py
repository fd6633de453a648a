"""SqueezeNet 1.1 on real MNIST digits (mnist8k), the SqueezeNet family's config for data available here.

Recipe: `cnnlab.train.config.mnist8k` (fixed split 0-5,999 / 6,000-7,999, 32x32 input,
Adam + cosine, batch 32, 10 epochs).
Command:
  python scripts/train.py --config=configs/zoo/squeezenet1_1_mnist8k.py --workdir=runs/squeezenet1_1_mnist8k
Smoke (2 steps): --config=configs/zoo/squeezenet1_1_mnist8k.py:smoke
Result: not run to completion yet (smoke-tested in the suite).
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  return config_lib.apply_arg(config_lib.mnist8k("squeezenet1_1", image_size=32), arg)
