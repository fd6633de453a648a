"""XLA compiler options for the CPU backend: ``config.xla_cpu_options``.

The field is a string: ``''`` (XLA's defaults), the name of a preset in :data:`PRESETS` (the
configs' default is ``cnnlab.train.config.DEFAULT_XLA_CPU_OPTIONS``), or XLA debug options as
space-separated ``name=value`` pairs (as in ``XLA_FLAGS``; the leading ``--`` is optional), e.g.
``'xla_cpu_enable_fast_math=true'``. The loop compiles its train and eval steps with them
(``jax.jit(..., compiler_options=...)``) only when JAX's default backend is the CPU; on GPU/TPU
they are checked but not applied. They change speed, not the parameters beyond float rounding,
so a run may resume with other options (``cnnlab.train.workdir.NON_RESULT_FIELDS``).
docs/performance.md, "XLA CPU options", has the measurements behind the preset.
"""

from __future__ import annotations

import functools

import jax
from absl import flags, logging

from cnnlab.ops import conv_auto
from cnnlab.train.errors import ConfigError

# jaxlib 0.10.2's CPU default sends convolutions to the YNN library fusion, whose weight-gradient
# conv is slow; this keeps YNN for dots and reductions and gives convolutions to XLA's own
# (Eigen) emitter (docs/performance.md, "XLA CPU options").
NO_YNN_CONV = {"xla_cpu_experimental_ynn_fusion_type":
               "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_DOT,"
               "LIBRARY_FUSION_TYPE_REDUCE"}
PRESETS = {"no_ynn_conv": NO_YNN_CONV}
FIELD = "config.xla_cpu_options"


def parse(value: str) -> dict[str, str | bool]:
  """``value`` (a preset name or ``'name=value ...'``; ``''`` = none) as ``{name: value}``, with
  ``true``/``false`` as bools (XLA reads a string bool only as ``True``/``False``). Pure Python:
  a malformed value raises :class:`ConfigError`; names and values are checked by :func:`check`."""
  allowed = (f"(allowed: '', a preset {sorted(PRESETS)}, or XLA debug options as "
             "'name=value name=value')")
  if not isinstance(value, str):
    raise ConfigError(f"{FIELD}={value!r} is invalid: must be a string {allowed}")
  if value in PRESETS:
    return dict(PRESETS[value])
  pairs = [p.removeprefix("--").partition("=") for p in value.split()]
  for name, eq, v in pairs:
    if not (name and eq and v):
      raise ConfigError(f"{FIELD}={value!r} is invalid: {name + eq + v!r} is not a preset or a "
                        f"name=value pair {allowed}")
  bools = {"true": True, "false": False}
  return {name: bools.get(v.lower(), v) for name, _, v in pairs}


@functools.lru_cache(maxsize=None)
def rejection(name: str, value: str | bool) -> str | None:
  """Why this jaxlib's compiler rejects the option ``name=value`` (None: it accepts it), from
  compiling a one-addition probe with it on the default backend (XLA's debug options are the
  same on every backend)."""
  try:
    jax.jit(lambda x: x + 1).lower(1.0).compile(compiler_options={name: value})
  except jax.errors.JaxRuntimeError as e:
    return str(e).removeprefix("INVALID_ARGUMENT: ")
  return None


def options(config) -> dict[str, str | bool]:
  """``config.xla_cpu_options`` (``''`` if the config has no such field) as ``{name: value}``.
  A preset's options name fields of one jaxlib's XLA: one that this jaxlib rejects is dropped
  with a warning (the preset is a speed choice, never a reason to fail); options written out
  are kept as written (:func:`check` rejects them)."""
  value = config.get("xla_cpu_options", "")
  opts = parse(value)
  if value not in PRESETS:
    return opts
  kept = {n: v for n, v in opts.items() if rejection(n, v) is None}
  for name in opts.keys() - kept.keys():
    logging.warning("%s=%r: this jaxlib rejects %s (%s); compiling without it", FIELD, value,
                    name, rejection(name, opts[name]))
  return kept


def check(config) -> None:
  """Rejects an option that this jaxlib's compiler does not take (:func:`rejection`) with a
  :class:`ConfigError` naming ``config.xla_cpu_options.<name>``; nothing is compiled if there
  are no options."""
  for name, v in options(config).items():
    if (reason := rejection(name, v)) is not None:
      raise ConfigError(f"{FIELD}.{name}={v!r} is invalid: {reason} (allowed: the fields of "
                        "XLA's DebugOptions with a value of their type)")


def validate_flag(value: str) -> bool:
  """An absl validator for a ``--xla_cpu_options`` flag (the benchmarks'): :func:`check` of
  ``value``, its :class:`ConfigError` raised as the flag's ``ValidationError`` (one line)."""
  try:
    check({"xla_cpu_options": value})
  except ConfigError as e:
    raise flags.ValidationError(str(e)) from None
  return True


def compiler_options(config) -> dict[str, str | bool] | None:
  """The ``compiler_options`` for ``jax.jit`` (the loop's train and eval steps, the
  benchmarks): ``config``'s options on the CPU backend; None (XLA's defaults) on any other
  backend or when there are none. ``config``: anything with ``.get('xla_cpu_options')``."""
  return (options(config) or None) if jax.default_backend() == "cpu" else None


def jit(fn, config, **kwargs):
  """``jax.jit(fn, compiler_options=compiler_options(config), **kwargs)``, with ``fn`` traced
  inside ``conv_auto.compiled_with`` those options: ``impl='auto'`` picks from conv timings made
  with the options the step is compiled with."""
  options = compiler_options(config)
  return jax.jit(conv_auto.traced_with(fn, options), compiler_options=options, **kwargs)
