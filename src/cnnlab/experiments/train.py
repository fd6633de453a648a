"""The training loop as an experiment (the default ``config.experiment``): trains, resuming from
``workdir``'s checkpoints, and returns the final eval metrics."""

from cnnlab.train import train_and_evaluate as run

__all__ = ["run"]
