"""Evaluates a checkpoint of WORKDIR on the config's eval split (any dataset, manual_dir or split
can be given by overrides; the model and normalisation must be the run's own):

  python scripts/evaluate.py --config=configs/X.py --workdir=DIR [--step=latest|best|STEP] \
      [--config.data.eval_split=...]

The last line printed is JSON: {"step": ..., "loss": ..., "accuracy": ..., "num_examples": ...}."""

from absl import flags

from cnnlab import train
from cnnlab.train import cli

cli.define_flags()
STEP = flags.DEFINE_string("step", "latest", "Checkpoint to evaluate: latest, best (highest eval "
                           "accuracy) or a step number.")

if __name__ == "__main__":
  cli.run(lambda config, workdir: train.evaluate(config, workdir, step=STEP.value))
