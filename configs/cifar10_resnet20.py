"""CIFAR ResNet-20 (He et al. 2016, section 4.2) on CIFAR-10 via TFDS, as in the paper.

Recipe: SGD momentum 0.9, lr 0.1, weight decay 1e-4, batch 128, 164 epochs (64k steps) with the
lr divided by 10 at epochs 82 and 123; 4-pixel random crops and horizontal flips; per-channel
normalisation. The paper reports 8.75 % test error (91.25 % accuracy).
Needs: `cifar10` prepared by TFDS (network + `pip install tensorflow` at prepare time).
Command (networked machine):
  python scripts/run.py --config=configs/cifar10_resnet20.py --workdir=runs/cifar10_resnet20
Here (no network, no TensorFlow): `:smoke,local` runs the same model and optimizer on the
embedded digits at 32x32 for 2 steps (the test suite does this).
Result: not run here (needs CIFAR-10).
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  c = config_lib.base()
  c.model.name = "resnet20"
  c.data.name = "cifar10"
  c.data.train_split = "train"
  c.data.eval_split = "test"
  c.data.image_size = 32
  c.data.mean = (0.4914, 0.4822, 0.4465)
  c.data.std = (0.2470, 0.2435, 0.2616)
  c.data.random_crop_padding = 4
  c.data.random_flip = True
  c.optimizer.update(name="momentum", learning_rate=0.1, momentum=0.9, weight_decay=1e-4,
                     schedule="step", decay_epochs=(82, 123), decay_factor=0.1)
  c.batch_size = 128
  c.num_epochs = 164
  c.log_every_steps = 100
  return config_lib.apply_arg(c, arg)
