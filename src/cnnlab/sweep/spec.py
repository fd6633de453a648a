"""Sweep declarations: a sweep is a list of points, a point a dict ``{dotted.field: value}``.

  def get_sweep(arg=None):
    return product(grid("optimizer.learning_rate", [1e-3, 3e-3]), grid("seed", [0, 1, 2]))

``grid`` lists values of one field; ``product`` is the Cartesian product (itertools order),
``zip_`` pairs sweeps of equal length, ``chain`` concatenates, ``uniform``/``log_uniform`` draw
``n`` seeded random values; ``args`` sweeps the config file's ``:arg`` itself (for configs
that pick e.g. a model family by arg), joined with the sweep's own arg.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

Point = dict
Sweep = list
ARG = ":arg"  # the point key that holds a config ``:arg`` (not a config field)


def grid(field: str, values) -> Sweep:
  return [{field: v} for v in values]


def product(*sweeps: Sweep) -> Sweep:
  return [dict(itertools.chain.from_iterable(p.items() for p in combo))
          for combo in itertools.product(*sweeps)]


def zip_(*sweeps: Sweep) -> Sweep:
  if len({len(s) for s in sweeps}) > 1:
    raise ValueError(f"zip_ needs sweeps of equal length, got {[len(s) for s in sweeps]}")
  return [dict(itertools.chain.from_iterable(p.items() for p in ps)) for ps in zip(*sweeps)]


def chain(*sweeps: Sweep) -> Sweep:
  return [p for s in sweeps for p in s]


def uniform(field: str, low: float, high: float, n: int, seed: int = 0) -> Sweep:
  return grid(field, [float(v) for v in np.random.default_rng(seed).uniform(low, high, n)])


def log_uniform(field: str, low: float, high: float, n: int, seed: int = 0) -> Sweep:
  vals = np.random.default_rng(seed).uniform(math.log(low), math.log(high), n)
  return grid(field, [float(math.exp(v)) for v in vals])


def args(values) -> Sweep:
  """One point per config ``:arg`` value (``get_config(value)``)."""
  return [{ARG: v} for v in values]
