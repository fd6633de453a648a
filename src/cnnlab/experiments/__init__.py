"""Experiments: each module ``cnnlab.experiments.<name>`` has ``run(config, workdir) -> dict``.

A config names its experiment in ``config.experiment`` (``train``, the training loop, when it has
none); :func:`run` imports that module and calls it (big_vision's dispatch by name). The runner
(``scripts/run.py``) and sweep jobs both come through here.
"""

from __future__ import annotations

import importlib
import pkgutil

from cnnlab.train.errors import ConfigError


def names() -> list[str]:
  """Every experiment module (those that define ``run``)."""
  return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str):
  """The ``run`` function of experiment ``name``; a :class:`ConfigError` listing the names if
  there is no such experiment."""
  if name not in names():
    raise ConfigError(f"config.experiment={name!r} is invalid: must be one of {names()}")
  return importlib.import_module(f"{__name__}.{name}").run


def run(config, workdir: str) -> dict:
  """Runs ``config`` with the experiment it names, outputs in ``workdir``."""
  return get(config.get("experiment", "train"))(config, workdir)
