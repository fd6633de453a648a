"""The command line shared by ``scripts/run.py``, ``train.py`` and ``evaluate.py``:
``--config=configs/X.py[:arg]`` (+ ``--config.field=value`` overrides), ``--workdir``,
``--multihost`` (``jax.distributed.initialize()`` first, for multi-host TPU/GPU; its
``--coordinator_address``, ``--num_processes``, ``--process_id`` when the cluster is not
auto-detected, as for :mod:`cnnlab.launch`'s local processes), ``--verbose`` (tracebacks of
errors).

``run(fn)`` parses the flags, calls ``fn(config, workdir)`` and prints its result as one JSON
line. Every known failure (a bad flag, override, ``:arg`` or config field, a bad data file, a
busy workdir, a non-finite loss, a stop on a signal) is one ``error: ...`` line on stderr and
the exit code of :mod:`cnnlab.train.errors`. This module imports no JAX: a bad command line
is reported before anything heavy is loaded.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import sys
import traceback

from absl import app, flags, logging
from ml_collections import config_flags

from cnnlab import hostmem
from cnnlab.train import errors

_OVERRIDE = re.compile(r"^--?config\.([\w.]+)(=.*)?$")


def define_flags(flag_values: flags.FlagValues = flags.FLAGS, argv=None):
  """Defines the shared flags on ``flag_values`` (``argv``: the command line the config flag
  reads its overrides from; default ``sys.argv``)."""
  config_flags.DEFINE_config_file("config", None, "Config file, path[:arg].", lock_config=True,
                                  flag_values=flag_values, sys_argv=argv)
  flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the config record.",
                      flag_values=flag_values)
  flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() first (multi-host).",
                    flag_values=flag_values)
  flags.DEFINE_string("coordinator_address", None, "With --multihost: host:port of process 0 "
                      "(default: auto-detected, e.g. SLURM, TPU).", flag_values=flag_values)
  flags.DEFINE_integer("num_processes", None, "With --multihost: processes in the job.",
                       flag_values=flag_values)
  flags.DEFINE_integer("process_id", None, "With --multihost: this process's index.",
                       flag_values=flag_values)
  flags.DEFINE_bool("verbose", False, "Print the traceback of an error, not only its line.",
                    flag_values=flag_values)


def _line(e: BaseException) -> str:
  return " ".join(str(e).split())


def _fail(message: str, code: int, verbose: bool) -> int:
  if verbose:
    traceback.print_exc()
  print(f"error: {message}", file=sys.stderr, flush=True)
  return code


def _unknown_override(argv, e: BaseException) -> str | None:
  """The one line for an override of a field the config lacks (ml_collections raises an
  ``AttributeError``/``KeyError`` that names only the last key)."""
  missing = re.findall(r"'(\w+)'", str(e).replace("\\'", "'"))
  for arg in argv:
    m = _OVERRIDE.match(arg)
    bad = [i for i, k in enumerate(m.group(1).split(".")) if k in missing] if m else []
    if not bad:
      continue
    keys = m.group(1).split(".")[:bad[0] + 1]
    path = ".".join(keys)
    parent = _loaded_config(argv)
    for k in keys[:-1]:
      parent = parent.get(k) if hasattr(parent, "get") else None
    fields = sorted(parent.keys()) if hasattr(parent, "keys") else []
    close = difflib.get_close_matches(keys[-1], fields, n=1)
    hint = f"; did you mean config.{'.'.join([*keys[:-1], close[0]])}?" if close else ""
    return (f"config.{path} is not a field of the config{hint} (allowed: "
            f"{', '.join(fields) or 'none'})")
  return None


def _loaded_config(argv):
  """The config of ``argv``'s ``--config`` without its overrides (for messages)."""
  fv = flags.FlagValues()
  only = [argv[0], *(a for a in argv[1:] if re.match(r"^--?config[= ]", a))]
  try:
    define_flags(fv, only)
    fv(only)
    return fv.config
  except Exception:  # noqa: BLE001 - only used to make a message better
    return None


def _config_file_error(e: BaseException) -> str:
  """ml_collections re-raises an error of ``get_config`` with the traceback in its message:
  the last line of it, less the exception's class name."""
  text = str(e)
  if "Error whilst parsing config file" not in text:
    return _line(e)
  last = [ln for ln in text.splitlines() if ln.strip()][-1]
  return re.sub(r"^[\w.]*(Error|Exception): ", "", last.strip())


def _bad_flag(argv, e: BaseException) -> str:
  """The one line for a flag that failed to parse."""
  cause = e.__cause__ or e.__context__
  if isinstance(e, errors.ConfigError):
    return _config_file_error(e)
  if isinstance(cause, (TypeError, ValueError)) and "config file" in str(cause):
    return f"--config: {_config_file_error(cause)}"
  if isinstance(e, (AttributeError, KeyError)):
    return _unknown_override(argv, e) or _line(e)
  m = re.match(r"flag --config\.([\w.]+)=(.*?): (.*)", _line(e))
  if m:
    return f"config.{m.group(1)}={m.group(2)!r} is invalid: {m.group(3)}"
  return _line(e)


def parse(argv, flag_values: flags.FlagValues = flags.FLAGS):
  """Parses ``argv`` into ``flag_values``; a :class:`ConfigError` (one line) if it cannot."""
  try:
    rest = flag_values(argv)
  except Exception as e:  # noqa: BLE001 - absl / ml_collections / the config file's own errors
    raise errors.ConfigError(_bad_flag(argv, e)) from e
  if flag_values["config"].value is not None:
    try:
      flag_values.config.keys()  # ml_collections defers a file's IOError to the first access
    except OSError as e:
      last = [ln for ln in str(e).splitlines() if ln.strip()][-1].strip()
      raise errors.ConfigError(f"--config cannot be loaded: {last}") from None
  if len(rest) > 1:
    raise errors.ConfigError(f"unexpected arguments {rest[1:]} (allowed: --config=FILE[:arg], "
                             "--workdir=DIR, --config.FIELD=VALUE, --multihost, --verbose)")
  given = [f for f in ("coordinator_address", "num_processes", "process_id")
           if flag_values[f].value is not None]
  if given and not flag_values.multihost:
    raise errors.ConfigError(f"--{given[0]} is only allowed with --multihost")
  for name, what in (("config", "a config file, e.g. --config=configs/lenet5_digits.py"),
                     ("workdir", "a directory for the run's outputs, e.g. --workdir=runs/x")):
    if flag_values[name].value is None:
      raise errors.ConfigError(f"--{name} is required: {what}")
  return rest


def _strict_json(x):
  if isinstance(x, float) and not math.isfinite(x):
    return None
  if isinstance(x, dict):
    return {k: _strict_json(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_strict_json(v) for v in x]
  return x


def call(fn, flag_values: flags.FlagValues = flags.FLAGS) -> int:
  """Runs ``fn(config, workdir)`` of parsed ``flag_values``; prints the result as a JSON line
  (non-finite numbers as ``null``; process 0 only) and returns the exit code."""
  verbose = flag_values.verbose
  if "verbosity" in flag_values and not flag_values["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax's per-save INFO lines drown the progress bar
  main_process = True
  try:
    if flag_values.multihost:
      import jax  # noqa: PLC0415 - only multi-host runs need JAX before the config is checked
      jax.distributed.initialize(flag_values.coordinator_address, flag_values.num_processes,
                                 flag_values.process_id)
      main_process = jax.process_index() == 0
    result = fn(flag_values.config, flag_values.workdir)
  except (errors.ConfigError, FileNotFoundError) as e:
    return _fail(_line(e), errors.BAD_INPUT, verbose)
  except errors.NonFiniteError as e:
    return _fail(_line(e), errors.NON_FINITE, verbose)
  except errors.WorkdirBusy as e:
    return _fail(_line(e), errors.BUSY, verbose)
  except errors.Stopped as e:
    return _fail(_line(e), e.exit_code, verbose)
  if main_process:
    print(json.dumps(_strict_json(result), allow_nan=False), flush=True)
  return 0


def execute(fn, argv) -> int:
  """Parses ``argv`` on fresh flags and runs ``fn``; returns the exit code (in-process use)."""
  fv = flags.FlagValues()
  define_flags(fv, argv)
  try:
    parse(argv, fv)
  except errors.ConfigError as e:
    return _fail(_line(e), errors.BAD_INPUT, "--verbose" in argv)
  return call(fn, fv)


def _parse_flags(argv):
  try:
    return parse(argv)
  except errors.ConfigError as e:
    sys.exit(_fail(_line(e), errors.BAD_INPUT, "--verbose" in argv))


def run(fn):
  """The entry point of a script: ``cli.define_flags()`` at import, then ``cli.run(fn)`` (which
  first restarts the process with huge pages for large buffers, :mod:`cnnlab.hostmem`)."""
  hostmem.reexec()
  app.run(lambda argv: sys.exit(call(fn)), flags_parser=_parse_flags)


def main(fn):
  """An absl ``main`` running ``fn`` (for ``app.run(cli.main(fn))``; :func:`run` also turns
  flag errors into one line)."""
  def _main(argv):
    del argv
    sys.exit(call(fn))
  return _main
