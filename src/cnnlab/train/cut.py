"""Fine-tune from earlier activations: a model cut after a named stage with a new head there
(``config.transfer.cut_after``; docs/transfer.md, "Cutting after a stage").

``cut(model, name, num_classes)`` runs ``model`` up to the point where it sows the feature
``name`` (an ``extract_features`` name: ``stem``, ``stage1`` ..., ``pre_logits``), global-average
pools it if it is a map ``(B, *S, C)``, and applies a new ``Dense(num_classes)`` named
:data:`HEAD`. The layers after the cut are never called, so they have no variables and cost
nothing. The cut model shares the original's scope (``nn.share_scope``): its variables keep the
original's paths (``stage1/conv/kernel``), so ``config.init_from`` and ``config.transfer``
patterns read the same, plus ``cut_head``.

How the cut works: every registered model sows its features from its own top-level
``__call__``; the cut model calls a subclass of the model's class whose ``sow`` raises an
exception carrying the value when it is asked to store ``name``, and catches it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnlab import models, ops
from cnnlab.train.errors import ConfigError

HEAD = "cut_head"


class _Cut(Exception):  # noqa: N818 - control flow, not an error
  def __init__(self, value):
    super().__init__("cut")
    self.value = value


@functools.lru_cache(maxsize=None)
def _stopping_at(cls: type, name: str) -> type:
  """A subclass of the model class ``cls`` whose ``sow('intermediates', name, x)`` raises
  :class:`_Cut` with ``x`` (one class per ``(cls, name)``, so equal models stay equal)."""
  def sow(self, col, key, value, *args, **kwargs):
    if col == "intermediates" and key == name:
      raise _Cut(value)
    return super(sub, self).sow(col, key, value, *args, **kwargs)
  sub = type(cls.__name__, (cls,), {"sow": sow, "__module__": cls.__module__,
                                     "__qualname__": f"{cls.__qualname__}[:{name}]"})
  return sub


class CutHead(nn.Module):
  """``trunk`` (a model whose class stops at ``cut_after``) -> pool -> ``Dense`` :data:`HEAD`.
  Input and output as the model's: ``(B, ...) -> (B, num_classes)``; sows ``pre_logits``."""
  trunk: nn.Module
  cut_after: str
  num_classes: int
  dtype: Any = None

  def setup(self):
    nn.share_scope(self, self.trunk)

  @nn.compact
  def __call__(self, x, train: bool = False):
    try:
      self.trunk(x, train=train)
    except _Cut as cut_at:
      feats = cut_at.value
    else:
      raise ValueError(f"CutHead: the model never produced the feature {self.cut_after!r}")
    if feats.ndim > 2:
      feats = ops.global_avg_pool(feats)
    self.sow("intermediates", "pre_logits", feats)
    return nn.Dense(self.num_classes, dtype=self.dtype, name=HEAD)(feats)


def cut(model: nn.Module, name: str, num_classes: int) -> CutHead:
  """``model`` cut after its feature ``name``, with a new ``num_classes`` head."""
  fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model)
            if f.name not in ("parent", "name")}
  return CutHead(_stopping_at(type(model), name)(**fields), name, num_classes,
                 getattr(model, "dtype", None))


def feature_names(model: nn.Module, input_shape) -> list[str]:
  """The names of the features ``model`` sows on inputs ``(1, *input_shape)``, sorted
  (traced abstractly)."""
  x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
  abstract = jax.eval_shape(lambda a: models.extract_features(
      model, model.init(jax.random.key(0), a), a)[1], x)
  return list(abstract)


def from_config(config, model: nn.Module, input_shape, num_classes: int) -> nn.Module:
  """``model``, cut after ``config.transfer.cut_after`` if set (checked against the features
  the model produces, before anything is compiled)."""
  name = (config.get("transfer") or {}).get("cut_after", "")
  if not name:
    return model
  available = feature_names(model, input_shape)
  if name not in available:
    raise ConfigError(f"config.transfer.cut_after={name!r} is invalid: model "
                      f"{config.model.name!r} produces the features {available} (allowed: one "
                      "of those, or '' for no cut)")
  return cut(model, name, num_classes)
