"""Frozen subtrees and per-group learning rates from ``config.transfer`` (docs/transfer.md).

A parameter is frozen if ``transfer.trainable`` is set and does not match it, or if
``transfer.frozen`` matches it, or if its ``transfer.lr_multipliers`` entry (the first that
matches) is 0. Frozen parameters:

- get no gradient: the train step wraps them in ``lax.stop_gradient`` (XLA computes no weight
  gradient for them, the global norm and clipping see zeros);
- get no update and no optimizer state: ``optax.multi_transform`` sends them to
  ``optax.set_to_zero`` (no weight decay either);
- if they are a BatchNorm's ``scale``, that BatchNorm runs in inference mode in training too
  (normalises with its running statistics and leaves them unchanged, as Keras does for a frozen
  BN): a Flax method interceptor re-applies such a module with ``use_running_average=True``.

Every other parameter is trained by the configured optimizer with its learning-rate schedule
times its multiplier (default 1; one optimizer state per multiplier group). ``grad_clip_norm``
clips the global norm over all groups, as without groups.
"""

from __future__ import annotations

import contextlib
import dataclasses
import types

import flax.linen as nn
import jax
import optax

from cnnlab import nn as cnn
from cnnlab.train import optim, patterns
from cnnlab.train.errors import ConfigError

FROZEN = "frozen"
_BATCH_NORMS = (cnn.BatchNorm, nn.BatchNorm)


def _path(kpath) -> patterns.Path:
  return tuple(str(getattr(k, "key", k)) for k in kpath)


@dataclasses.dataclass(frozen=True)
class Frozen:
  """The parsed ``config.transfer`` groups (see the module docstring)."""
  trainable: tuple[str, ...] = ()
  frozen: tuple[str, ...] = ()
  multipliers: tuple = ()

  def multiplier(self, path: patterns.Path) -> float:
    """0 for a frozen parameter, else its learning-rate multiplier."""
    if (self.trainable and not patterns.matches(self.trainable, path, "params")) or \
        patterns.matches(self.frozen, path, "params"):
      return 0.0
    return next((m for globs, m in self.multipliers if patterns.matches(globs, path, "params")),
                1.0)

  def is_frozen(self, path: patterns.Path) -> bool:
    return self.multiplier(path) == 0.0

  def labels(self, params):
    """The tree of ``params`` with each leaf's group: ``'frozen'`` or ``'lr*<multiplier>'``."""
    return jax.tree_util.tree_map_with_path(lambda p, _: _label(self.multiplier(_path(p))),
                                            params)

  def stop_gradient(self, params):
    return jax.tree_util.tree_map_with_path(
        lambda p, x: jax.lax.stop_gradient(x) if self.is_frozen(_path(p)) else x, params)

  @contextlib.contextmanager
  def batch_norm_inference(self):
    """While active (around ``apply`` in the train step), frozen BatchNorms use running stats."""
    with nn.intercept_methods(self._intercept):
      yield

  def _intercept(self, next_fun, args, kwargs, context):
    m = context.module
    if (context.method_name != "__call__" or not isinstance(m, _BATCH_NORMS)
        or m.is_initializing() or not self.is_frozen((*m.path, "scale"))):
      return next_fun(*args, **kwargs)
    use_ra = m.use_running_average
    if use_ra is None:
      use_ra = kwargs.get("use_running_average", args[1] if len(args) > 1 else None)
    if use_ra:
      return next_fun(*args, **kwargs)
    variables = {c: m.variables[c] for c in ("params", "batch_stats") if c in m.variables}
    return m.clone(parent=None, name=None, use_running_average=True).apply(
        variables, args[0], mask=kwargs.get("mask"))


def _label(multiplier: float) -> str:
  return FROZEN if multiplier == 0.0 else f"lr*{multiplier:g}"


def from_config(config) -> Frozen | None:
  """The groups of ``config.transfer``; None when it freezes nothing and scales nothing."""
  t = config.get("transfer")
  if not t:
    return None
  f = Frozen(patterns.parse(t.get("trainable", "")), patterns.parse(t.get("frozen", "")),
             patterns.parse_multipliers(t.get("lr_multipliers", "")))
  trivial = not f.trainable and not f.frozen and all(m == 1.0 for _, m in f.multipliers)
  return None if trivial else f


def optimizer(config, schedule: optax.Schedule) -> optax.GradientTransformation:
  """``optim.make_optimizer(config.optimizer, schedule)``, split into the transfer groups."""
  groups = from_config(config)
  if groups is None:
    return optim.make_optimizer(config.optimizer, schedule)
  opt = types.SimpleNamespace(**{**config.optimizer.to_dict(), "grad_clip_norm": 0.0})
  txs = {FROZEN: optax.set_to_zero()}
  for m in {1.0, *(m for _, m in groups.multipliers if m > 0)}:
    txs[_label(m)] = optim.make_optimizer(opt, lambda s, m=m: m * schedule(s))
  tx = optax.multi_transform(txs, groups.labels)
  clip = config.optimizer.grad_clip_norm
  return optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx


def check(config, params) -> None:
  """Each ``config.transfer`` glob matches a parameter of the model (``params``: its abstract
  tree); a :class:`ConfigError` names the field and the model's top-level modules otherwise."""
  t = config.get("transfer")
  if not t:
    return
  paths = [("params", _path(p)) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
  fields = {"trainable": patterns.parse(t.get("trainable", "")),
            "frozen": patterns.parse(t.get("frozen", "")),
            "lr_multipliers": tuple(g for globs, _ in patterns.parse_multipliers(
                t.get("lr_multipliers", "")) for g in globs)}
  for field, globs in fields.items():
    bad = patterns.unused(globs, paths)
    if bad:
      raise ConfigError(f"config.transfer.{field}={t[field]!r} is invalid: {bad[0]!r} matches no "
                        f"parameter of model {config.model.name!r} (allowed: globs over its "
                        f"paths, whose top-level modules are {patterns.top_level(paths)})")
