"""Path patterns that pick variables of a model (docs/transfer.md, "Path patterns").

A variable's path is its module names and leaf name joined by ``/`` (``stage1/conv/kernel``),
the same in ``params`` and ``batch_stats``. A pattern string holds ``|``-separated shell globs
(``fnmatch``: ``*`` also crosses ``/``); a glob matches a variable if it matches any ``/``-prefix
of its path (so ``head`` and ``head/*`` both pick the whole ``head`` subtree) or of
``<collection>/<path>`` (``batch_stats`` picks every running statistic). ``''`` picks nothing.
"""

from __future__ import annotations

import fnmatch
import math

Path = tuple[str, ...]


def parse(text: str) -> tuple[str, ...]:
  """``'Dense_*|head'`` -> ``('Dense_*', 'head')``; ``ValueError`` on an empty alternative."""
  if not text:
    return ()
  globs = tuple(g.strip() for g in text.split("|"))
  if not all(globs) or any(any(c.isspace() for c in g) for g in globs):
    raise ValueError(f"{text!r} is not a pattern: '|'-separated globs such as 'stem|stage1/*', "
                     "none empty, no spaces")
  return globs


def parse_multipliers(text: str) -> tuple[tuple[tuple[str, ...], float], ...]:
  """``'stem|stage1=0.1,stage2=0.5'`` -> ``((('stem', 'stage1'), 0.1), (('stage2',), 0.5))``:
  comma-separated ``PATTERN=MULTIPLIER`` entries, multipliers finite and >= 0."""
  out = []
  for entry in filter(None, (e.strip() for e in (text or "").split(","))):
    pattern, eq, value = entry.rpartition("=")
    try:
      m = float(value)
    except ValueError:
      m = math.nan
    if not eq or not pattern or not math.isfinite(m) or m < 0:
      raise ValueError(f"{entry!r} is not PATTERN=MULTIPLIER with a finite multiplier >= 0, "
                       "e.g. 'stem|stage1=0.1,stage2=0.5'")
    out.append((parse(pattern), m))
  return tuple(out)


def names(path: Path, collection: str | None = None) -> list[str]:
  """Every ``/``-prefix of ``path`` (and of ``collection/path``): what globs are matched to."""
  out = ["/".join(path[:i]) for i in range(1, len(path) + 1)]
  if collection:
    out += [collection] + [f"{collection}/{n}" for n in out]
  return out


def matches(globs: tuple[str, ...], path: Path, collection: str | None = None) -> bool:
  return any(fnmatch.fnmatchcase(n, g) for n in names(path, collection) for g in globs)


def unused(globs: tuple[str, ...], paths) -> list[str]:
  """The globs that match none of ``paths`` (``(collection, path)`` pairs)."""
  return [g for g in globs if not any(matches((g,), p, c) for c, p in paths)]


def top_level(paths) -> list[str]:
  """The distinct first names of ``paths`` (``(collection, path)`` pairs), in order."""
  return list(dict.fromkeys(p[0] for _, p in paths))
