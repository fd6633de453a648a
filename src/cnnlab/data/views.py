"""Random-access sources built from others or from arrays; each is a sequence for
``grain.MapDataset.source`` (``len()``, ``source[i]`` -> dict of numpy values / Python ints)."""

from __future__ import annotations

import numpy as np


class Subset:
  """The examples ``indices`` (in that order) of ``source``."""

  def __init__(self, source, indices):
    self.source, self.indices = source, np.asarray(indices, np.int64)

  def __len__(self):
    return len(self.indices)

  def __getitem__(self, i):
    return self.source[int(self.indices[i])]

  def __getitems__(self, idx):
    return [self[i] for i in idx]


class Mapped:
  """``fn(source[i])`` for every example of ``source``."""

  def __init__(self, source, fn):
    self.source, self.fn = source, fn

  def __len__(self):
    return len(self.source)

  def __getitem__(self, i):
    return self.fn(self.source[i])

  def __getitems__(self, idx):
    return [self[i] for i in idx]


class Arrays:
  """Example ``i`` is ``{k: v[i]}`` for columns ``v`` whose first axis indexes examples."""

  def __init__(self, columns: dict[str, np.ndarray]):
    self.columns = columns
    self._n = len(next(iter(columns.values())))

  def __len__(self):
    return self._n

  def __getitem__(self, i):
    if not -self._n <= i < self._n:
      raise IndexError(f"example {i} of {self._n}")
    return {k: v[i] for k, v in self.columns.items()}

  def __getitems__(self, idx):
    return [self[i] for i in idx]


class Computed:
  """Example ``i`` is ``fn(i)`` for ``i`` in ``range(n)`` (negative ``i`` counts from the end):
  random access, nothing stored."""

  def __init__(self, n: int, fn):
    self.n, self.fn = n, fn

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    if not -self.n <= i < self.n:
      raise IndexError(f"example {i} of {self.n}")
    return self.fn(int(i) % self.n)

  def __getitems__(self, idx):
    return [self[i] for i in idx]


class Generated(Computed):
  """Example ``i`` is ``fn(np.random.default_rng([*key, i]))``: random access, deterministic in
  ``(key, i)``, nothing stored."""

  def __init__(self, n: int, key: tuple, fn):
    key = tuple(key)
    super().__init__(n, lambda i: fn(np.random.default_rng([*key, i])))


def read_all(source, keys) -> dict[str, list]:
  """``{key: [example[key] for every example]}`` of ``source`` (one batched read)."""
  examples = source.__getitems__(list(range(len(source))))
  return {k: [e[k] for e in examples] for k in keys}
