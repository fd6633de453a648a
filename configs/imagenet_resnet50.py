"""ResNet-50 on ImageNet (ILSVRC-2012) via TFDS, the flax/examples imagenet recipe.

Recipe: SGD Nesterov momentum 0.9, lr 0.1 x batch/256, 5 warm-up epochs then cosine, weight
decay 1e-4, label smoothing 0.1, batch 1024, 100 epochs, bfloat16 compute; torchvision's
reference reaches 76.1 % top-1 with its (similar) recipe.
Needs: `imagenet2012` prepared by TFDS from the manually downloaded archives (TensorFlow at
prepare time). Its images vary in size: the pipeline takes random-resized crops (train) and
central 87.5 % crops (eval) to 224x224 per example before batching.
Command (accelerator machine): python scripts/run.py --config=configs/imagenet_resnet50.py
  --workdir=runs/imagenet_resnet50 [--multihost]
Here: `:smoke,local` runs the same model and optimizer on the embedded digits at 64x64 for 2
steps (the test suite does this).
Result: not run here (needs ImageNet and an accelerator).
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  c = config_lib.base()
  c.model.name = "resnet50"
  c.data.name = "imagenet2012"
  c.data.train_split = "train"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.mean = (0.485, 0.456, 0.406)
  c.data.std = (0.229, 0.224, 0.225)
  c.data.random_flip = True
  c.optimizer.update(name="nesterov", learning_rate=0.1 * 1024 / 256, momentum=0.9,
                     weight_decay=1e-4, schedule="cosine", warmup_epochs=5.0,
                     label_smoothing=0.1)
  c.batch_size = 1024
  c.eval_batch_size = 1024
  c.num_epochs = 100
  c.half_precision = True
  c.log_every_steps = 100
  c = config_lib.apply_arg(c, arg)
  if arg and "local" in arg.split(","):
    c.data.image_size = 64
  return c
