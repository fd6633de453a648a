"""One training loop for every model and dataset (see ``loop.py``)."""

from cnnlab.train.config import apply_arg, base
from cnnlab.train.loop import dry_run, evaluate, train_and_evaluate
from cnnlab.train.validate import ConfigError
