"""One training loop for every model and dataset (see ``loop.py``).

Importing this package is cheap: the loop (JAX, Flax, Optax, data) loads on first use of
``train_and_evaluate`` / ``evaluate`` / ``dry_run``, after :func:`validate.check_fields` has
checked the config's plain fields (a bad one errors before JAX is imported) and
:func:`validate.check_model` the model's name and options (before the data, optimizer and
checkpoint libraries are imported)."""

from cnnlab.train import validate
from cnnlab.train.config import apply_arg, base
from cnnlab.train.errors import ConfigError

_LOOP = ("dry_run", "evaluate", "train_and_evaluate")


def _checked(name):
  def fn(config, *args, **kwargs):
    validate.check_fields(config)
    validate.check_model(config)
    from cnnlab.train import loop  # noqa: PLC0415
    return getattr(loop, name)(config, *args, **kwargs)
  fn.__name__ = fn.__qualname__ = name
  fn.__doc__ = f"``loop.{name}`` after the field and model checks."
  return fn


def __getattr__(name):
  if name in _LOOP:
    return _checked(name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ConfigError", "apply_arg", "base", *_LOOP]
