"""Parameters of conv layers vs fully connected layers between the same feature maps.

Shows the lecture's count: a conv layer has O(C1*C2*h*w) parameters, a dense layer mapping the
same C1 x H x W input map to the same C2 x H' x W' output map has O(C1*C2*H*W*H'*W') — on the
real conv layers of LeNet-5, VGG-16 and ResNet-18 at their registered input sizes, with both
formulas checked against the parameter counts of real modules (``jax.eval_shape``).

  python scripts/run.py --config=configs/analysis/fc_vs_conv.py --workdir=runs/fc_vs_conv
  Smoke (LeNet-5 only): --config=configs/analysis/fc_vs_conv.py:smoke

Result: docs/experiments/fc_vs_conv.md (regenerated 2026-12-01).
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  smoke = config_lib.parse_arg(arg, ("smoke",)).get("smoke")
  # registry names; every 2D cnnlab.nn.Conv call is counted
  models = ("lenet5",) if smoke else ("lenet5", "vgg16", "resnet18")
  return config_lib.analysis("fc_vs_conv", models=models)
