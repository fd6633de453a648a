"""Evaluates WORKDIR's latest checkpoint on the config's eval split (any dataset, manual_dir or
split can be given by overrides):

  python scripts/evaluate.py --config=configs/X.py --workdir=DIR [--config.data.eval_split=...]

The last line printed is JSON: {"step": ..., "loss": ..., "accuracy": ..., "num_examples": ...}."""

from absl import app

from cnnlab import train
from cnnlab.train import cli

cli.define_flags()

if __name__ == "__main__":
  app.run(cli.main(train.evaluate))
