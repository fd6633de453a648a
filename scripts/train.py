"""An alias of ``scripts/run.py`` (same flags, same dispatch by ``config.experiment``):

  python scripts/train.py --config=configs/X.py[:arg] --workdir=DIR [--config.field=value ...]
"""

from cnnlab import experiments
from cnnlab.train import cli

cli.define_flags()

if __name__ == "__main__":
  cli.run(experiments.run)
