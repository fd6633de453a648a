"""VGG-11 with BatchNorm (512-wide classifier) on real MNIST digits (mnist8k), the VGG family's config for data available here.

Recipe: `cnnlab.train.config.mnist8k` (fixed split 0-5,999 / 6,000-7,999, 32x32 input,
Adam + cosine, batch 32, 10 epochs).
Command:
  python scripts/train.py --config=configs/zoo/vgg11_bn_mnist8k.py --workdir=runs/vgg11_bn_mnist8k
Smoke (2 steps): --config=configs/zoo/vgg11_bn_mnist8k.py:smoke
Result: not run to completion yet (smoke-tested in the suite).
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  return config_lib.apply_arg(config_lib.mnist8k("vgg11_bn", image_size=32, hidden_features=512), arg)
