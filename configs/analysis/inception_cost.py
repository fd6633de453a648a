"""Naive vs 1x1-reduced Inception blocks (GoogLeNet's 9): parameters and MACs, as a figure.

Shows the point of the 1x1 reductions (Szegedy et al. 2015, fig. 2): per block and in total,
the naive block costs several times the parameters and multiply-adds of the reduced one. The
closed form (``cnnlab.experiments.inception_cost.inception_cost_table``) is cross-checked against
each block module (``jax.eval_shape`` parameters, ``cnnlab.models.summary`` MACs) and against the
summary of the whole reduced GoogLeNet.

  python scripts/run.py --config=configs/analysis/inception_cost.py --workdir=runs/inception_cost
  Smoke (32x32 input): --config=configs/analysis/inception_cost.py:smoke

Result: docs/experiments/inception_cost.md (regenerated 2026-12-01).
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  smoke = config_lib.parse_arg(arg, ("smoke",)).get("smoke")
  return config_lib.analysis(
      "inception_cost",
      kernel_5x5=5,                        # 5: the paper's branch; 3: torchvision's
      image_size=32 if smoke else 224)     # square input; sets each block's map size
