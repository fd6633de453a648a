"""The zoo on real digits: one family's representative trained on mnist8k, picked by ``:model``.

Recipe (`cnnlab.train.config.mnist8k`): images 0-5,999 train / 6,000-7,999 eval, 28x28 resized to
32x32 on device (64x64 for AlexNet, whose 11x11/4 stem needs it, and for SqueezeNet and
ShuffleNet v2, whose 4x stems leave 1x1 maps by the last stage at 32x32), random 2-pixel
shifts, Adam 1e-3 with cosine decay, batch 32, 2 epochs (375 steps: a budget most families
finish in minutes on a 2-core CPU), seed 0.
Command (one family; ``:model=NAME`` works too):
  python scripts/run.py --config=configs/zoo/mnist8k.py:resnet18 --workdir=runs/zoo/resnet18
Every family, cheapest first, as a sweep:
  python scripts/sweep.py --config=configs/zoo/mnist8k.py --workdir=runs/zoo --parallel=2
Then the table (eval accuracy, parameters, train img/s, wall time):
  python scripts/run.py --config=configs/zoo/mnist8k.py:analysis --workdir=runs/zoo/analysis
Smoke (2 steps): --config=configs/zoo/mnist8k.py:resnet18,smoke
Result: the table in docs/zoo_mnist8k.md (2026-12-01; DenseNet-BC-100 2026-12-02).
"""

from cnnlab import sweep
from cnnlab.train import config as config_lib

# Cheapest first (sweep order). Model options make 32x32 single-channel digits fit each family.
FAMILIES = {
    "squeezenet1_1": dict(image_size=64),
    "shufflenet_v2_x0_5": dict(image_size=64),
    "alexnet": dict(image_size=64, hidden_features=1024),
    "resnet20": {},
    "googlenet": {},
    "mobilenet_v2": {},
    "allcnn_c": {},
    "resnet18": dict(small_stem=True),
    "efficientnet_b0": {},
    "vgg11_bn": dict(hidden_features=512),
    "densenet_bc_100": {},
}


SWEEP_WORKDIR = "runs/zoo"


def get_config(arg=None):
  """One family's training config; ``:analysis``: the results table of the sweep."""
  args = config_lib.parse_arg(arg, ("smoke", "analysis"), {"model": tuple(FAMILIES)},
                              positional="model")
  if args.get("analysis"):
    return config_lib.analysis("zoo_table", sweep_workdir=SWEEP_WORKDIR)
  name = args.get("model", "resnet20")
  options = dict(FAMILIES[name])
  c = config_lib.mnist8k(name, image_size=options.pop("image_size", 32), num_epochs=2,
                         **options)
  return config_lib.smoke(c) if args.get("smoke") else c


def get_sweep(arg=None):
  """One point per family (an ``:arg`` given to the sweep, e.g. ``smoke``, joins each point's)."""
  del arg
  return sweep.args(list(FAMILIES))
