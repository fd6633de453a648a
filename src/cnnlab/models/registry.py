"""Model registry: ``create(name, **overrides)``, ``list_models()``, ``get_spec(name)``.

A model is registered with a builder (a Linen module class or a ``functools.partial`` of one)
and metadata: default input shape (without batch) and dtype (``int32`` for token ids / codes),
paper, and the reference trainable-parameter count where a published one exists (1,000 classes
unless stated).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

import flax.linen as nn


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  name: str
  builder: Callable[..., nn.Module]
  input_shape: tuple[int, ...]          # (H, W, C), (L, C) or (D, H, W, C); no batch dim.
  paper: str = ""
  num_params: int | None = None         # reference count with the builder's defaults.
  family: str = ""
  small_input_shape: tuple[int, ...] | None = None  # smallest cheap valid input, for tests.
  input_dtype: str = "float32"          # what the model takes: 'int32' for token ids / codes.

  @property
  def test_input_shape(self) -> tuple[int, ...]:
    return self.small_input_shape or self.input_shape


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, builder: Callable[..., nn.Module], *, input_shape, paper="",
             num_params=None, family="", small_input_shape=None,
             input_dtype="float32") -> ModelSpec:
  if name in _REGISTRY:
    raise ValueError(f"model {name!r} is already registered")
  spec = ModelSpec(name, builder, tuple(input_shape), paper, num_params, family,
                   tuple(small_input_shape) if small_input_shape else None, input_dtype)
  _REGISTRY[name] = spec
  return spec


def list_models(family: str | None = None) -> list[str]:
  return sorted(n for n, s in _REGISTRY.items() if family is None or s.family == family)


def get_spec(name: str) -> ModelSpec:
  if name not in _REGISTRY:
    close = difflib.get_close_matches(str(name), _REGISTRY, n=3)
    hint = f" Did you mean {close}?" if close else ""
    raise ValueError(f"model={name!r} is not registered.{hint} Valid names: {list_models()}")
  return _REGISTRY[name]


def _module_fields(builder) -> set[str]:
  cls = getattr(builder, "func", builder)
  return {f.name for f in dataclasses.fields(cls) if f.name not in ("parent", "name")}


def create(name: str, **overrides: Any) -> nn.Module:
  """Builds the registered model ``name`` with field ``overrides`` (e.g. ``num_classes=10``)."""
  spec = get_spec(name)
  fields = _module_fields(spec.builder)
  unknown = sorted(set(overrides) - fields)
  if unknown:
    raise ValueError(f"model {name!r} has no option(s) {unknown}; valid options: {sorted(fields)}")
  return spec.builder(**overrides)
