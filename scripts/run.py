"""Runs any config: training, an analysis, a benchmark or one sweep point, by the experiment it
names (``config.experiment``, ``cnnlab.experiments.<name>``; default ``train``):

  python scripts/run.py --config=configs/X.py[:arg] --workdir=DIR [--config.field=value ...]

Training resumes from DIR's newest good checkpoint. Prints the experiment's result as a JSON
line. Exit codes (cnnlab.train.errors): 0 done, 2 bad input (one line; --verbose for the
traceback), 3 non-finite loss, 4 workdir in use, 130/143 stopped by SIGINT/SIGTERM after
checkpointing (the same command resumes)."""

from cnnlab import experiments
from cnnlab.train import cli

cli.define_flags()

if __name__ == "__main__":
  cli.run(experiments.run)
