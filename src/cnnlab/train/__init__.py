"""One training loop for every model and dataset (see ``loop.py``).

Importing this package is cheap: the loop (JAX, Flax, Optax, data) loads on first use of
``train_and_evaluate`` / ``evaluate`` / ``dry_run``, so a bad command line errors at once."""

from cnnlab.train.config import apply_arg, base
from cnnlab.train.errors import ConfigError

_LOOP = ("dry_run", "evaluate", "train_and_evaluate")


def __getattr__(name):
  if name in _LOOP:
    from cnnlab.train import loop  # noqa: PLC0415
    return getattr(loop, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ConfigError", "apply_arg", "base", *_LOOP]
