"""Naive vs 1x1-reduced Inception blocks (GoogLeNet's 9): parameters and MACs, as a figure.

Shows the point of the 1x1 reductions (Szegedy et al. 2015, fig. 2): per block and in total,
the naive block costs several times the parameters and multiply-adds of the reduced one. The
closed form (``cnnlab.models.googlenet.inception_cost_table``) is cross-checked against each
block module (``jax.eval_shape`` parameters, ``cnnlab.models.summary`` MACs) and against the
summary of the whole reduced GoogLeNet.

  python scripts/exp_inception_cost.py --config=configs/analysis/inception_cost.py \
      --workdir=runs/inception_cost
  Smoke (32x32 input): --config=configs/analysis/inception_cost.py:smoke

Result (k=5, 224x224; module and network checks hold for all 9 blocks): naive / reduced =
23,728,416 / 5,856,096 parameters (4.05x) and 3,881.2 / 1,104.0 MMACs (3.52x); per block 2.4x
(3a) to 5.1x (5a). Figure: docs/figures/inception_cost.png.
"""

import ml_collections


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.kernel_5x5 = 5      # 5: the paper's branch; 3: torchvision's (pytorch/vision#906)
  c.image_size = 224    # square input; sets each block's map size (28, 14, 7 at 224)
  if arg == "smoke":
    c.image_size = 32
  elif arg:
    raise ValueError(f"config arg {arg!r} is not one of ('smoke',)")
  return c
