"""The spatial prior, measured by permutation: MLP vs 1D CNN on MNIST-1D, with and without a
fixed random permutation of the 40 positions (the same one for train and test).

A fully connected net has no notion of position, so permuting its inputs only relabels its
first-layer weights; a CNN's local, shared filters depend on neighbouring samples being
neighbours. Training as in the MNIST-1D paper (Greydanus 2020): Adam, lr 1e-2, batch 100,
6,000 steps (here with a cosine decay); the CNN is the paper's ConvBase (``cnn1d``).

Command:
  python scripts/sweep.py --config=configs/experiments/permutation_mnist1d.py \
      --workdir=runs/permutation_mnist1d --parallel=2
  python scripts/run.py --config=configs/experiments/permutation_mnist1d.py:analysis \
      --workdir=runs/permutation_mnist1d/analysis
Smoke (2 steps): --config=configs/experiments/permutation_mnist1d.py:smoke
Result: docs/experiments/permutation_mnist1d.md (regenerated 2026-12-02).
The MLP is cnnlab's default ``mlp`` (hidden 256, 128), not the paper's 100-100 residual MLP: a
``model.hidden`` tuple in a sweep point comes back from point.json as a list, which
sweep.collect.summarize cannot group by (TypeError: unhashable type).
"""

from cnnlab import sweep
from cnnlab.train import config as config_lib


SWEEP_WORKDIR = "runs/permutation_mnist1d"


def get_config(arg=None):
  """The training config of one point; ``:analysis``: the table + figure from the sweep."""
  if config_lib.parse_arg(arg, ("smoke", "analysis")).get("analysis"):
    return config_lib.analysis("permutation", sweep_workdir=SWEEP_WORKDIR)
  c = config_lib.base()
  c.model.name = "cnn1d"
  c.data.name = "mnist1d"
  c.data.permute_features = False
  c.data.permute_seed = 0
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-2
  c.batch_size = 100
  c.eval_batch_size = 500
  c.num_train_steps = 6000
  c.log_every_steps = 500
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 3000
  return config_lib.apply_arg(c, arg, extra_switches=("analysis",))


def get_sweep(arg=None):
  """Model x permutation x seed (12 runs); ``model.name`` holds no model-specific option."""
  del arg
  return sweep.product(sweep.grid("model.name", ["mlp", "cnn1d"]),
                       sweep.grid("data.permute_features", [False, True]),
                       sweep.grid("seed", [0, 1, 2]))
