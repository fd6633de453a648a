"""The conv impl registry and its capability checks (shapes only, before any compilation).

An impl is ``fn(x, w, *, stride, pads, dilation, groups) -> y`` on explicit zero pads,
registered with ``limits(case) -> str | None`` that names the option it cannot serve:

- ``supports(impl, x_shape, w_shape, *, stride, padding, dilation, groups, padding_mode, dtype)``
  -> bool (``conv``'s argument parsing; invalid arguments still raise ``ValueError``);
- ``impls_supporting(x_shape, w_shape, **same)`` -> the registered impls that can serve the case;
- with a parsed ``ConvCase`` (``cnnlab.ops.conv_case.make_case``): ``unsupported_reason(impl,
  case)``, and ``check(impl, case)``, which raises the ``ValueError`` ``conv`` raises, naming the
  impl, the option and the impls that can.

The impl modules import this one to register; ``cnnlab.ops`` imports them all, so the registry
is complete once ``cnnlab.ops`` is imported.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp

from cnnlab.ops.conv_case import ConvCase, make_case

ConvImpl = Callable[..., jnp.ndarray]
_IMPLS: dict[str, ConvImpl] = {}
_LIMITS: dict[str, Callable[[ConvCase], str | None]] = {}


def register_impl(name: str, limits: Callable[[ConvCase], str | None] | None = None):
  """Decorator: ``fn(x, w, *, stride, pads, dilation, groups) -> y`` with explicit pads.

  ``limits(case)`` returns why the impl cannot serve ``case`` (naming the option), else None.
  """
  def wrap(fn):
    _IMPLS[name] = fn
    if limits is not None:
      _LIMITS[name] = limits
    return fn
  return wrap


def list_impls() -> tuple[str, ...]:
  return tuple(_IMPLS)


def get_impl(impl: str) -> ConvImpl:
  """The registered function of ``impl``; ``ValueError`` listing the impls if unknown."""
  if impl not in _IMPLS:
    raise ValueError(f"impl={impl!r} is not one of {list_impls()}")
  return _IMPLS[impl]


def unsupported_reason(impl: str, case: ConvCase) -> str | None:
  """Why ``impl`` cannot serve ``case`` (naming the option), or None if it can."""
  get_impl(impl)
  limits = _LIMITS.get(impl)
  return None if limits is None else limits(case)


def check(impl: str, case: ConvCase) -> ConvImpl:
  """``impl``'s function if it can serve ``case``; else ``ValueError`` naming the option and the
  impls that can."""
  fn = get_impl(impl)
  reason = unsupported_reason(impl, case)
  if reason is not None:
    able = [name for name in _IMPLS if unsupported_reason(name, case) is None]
    raise ValueError(f"impl={impl!r} cannot serve this conv: {reason}; impls that can: {able}")
  return fn


def supports(impl: str, x_shape, w_shape, *, stride=1, padding="VALID", dilation=1, groups=1,
             padding_mode="zeros", dtype=jnp.float32) -> bool:
  """Whether ``conv(..., impl=impl)`` can serve these arguments (same parsing as ``conv``)."""
  case = make_case(x_shape, w_shape, dtype, dtype, stride=stride, padding=padding,
                   dilation=dilation, groups=groups, padding_mode=padding_mode)
  return unsupported_reason(impl, case) is None


def impls_supporting(x_shape, w_shape, **kwargs) -> tuple[str, ...]:
  """The registered impls that ``supports`` these arguments (``kwargs`` as in ``supports``)."""
  return tuple(name for name in _IMPLS if supports(name, x_shape, w_shape, **kwargs))
