"""One training loop for every model and dataset (see ``loop.py``).

Importing this package is cheap: the loop (JAX, Flax, Optax, data) loads on first use of
``train_and_evaluate`` / ``evaluate`` / ``dry_run``, after :func:`validate.check_fields` has
checked the config's plain fields, so a bad field errors before JAX is imported."""

from cnnlab.train import validate
from cnnlab.train.config import apply_arg, base
from cnnlab.train.errors import ConfigError

_LOOP = ("dry_run", "evaluate", "train_and_evaluate")


def _checked(name):
  def fn(config, *args, **kwargs):
    validate.check_fields(config)
    from cnnlab.train import loop  # noqa: PLC0415
    return getattr(loop, name)(config, *args, **kwargs)
  fn.__name__ = fn.__qualname__ = name
  fn.__doc__ = f"``loop.{name}`` after the pure-Python field checks."
  return fn


def __getattr__(name):
  if name in _LOOP:
    return _checked(name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ConfigError", "apply_arg", "base", *_LOOP]
