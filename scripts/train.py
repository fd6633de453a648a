"""Trains a config, resuming from WORKDIR's latest checkpoint if there is one:

  python scripts/train.py --config=configs/X.py[:arg] --workdir=DIR [--config.field=value ...]

Prints the final eval metrics as a JSON line."""

from absl import app

from cnnlab import train
from cnnlab.train import cli

cli.define_flags()

if __name__ == "__main__":
  app.run(cli.main(train.train_and_evaluate))
