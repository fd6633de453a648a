"""The errors a run ends with, each printed by the command-line entry points as one
``error: ...`` line (no traceback unless ``--verbose``), and the exit code of each.

Exit codes (``scripts/run.py``, ``train.py``, ``evaluate.py``):

====  ============================================================================
0     done
1     an unexpected error (a bug: the traceback is printed)
2     bad input: a config field, ``:arg``, flag, data file or workdir the run cannot use
      (:class:`ConfigError`); reported before anything is compiled or written
3     training stopped at a non-finite loss or gradient norm (:class:`NonFiniteError`);
      the last checkpoint is the last finite state
4     the workdir is in use by another run (:class:`WorkdirBusy`)
130   stopped by SIGINT (Ctrl-C), 143 by SIGTERM (preemption): the current step was finished
      and checkpointed; the same command resumes (:class:`Stopped`)
====  ============================================================================
"""

BAD_INPUT = 2
NON_FINITE = 3
BUSY = 4


class ConfigError(ValueError):
  """A config field (or an input file) has a value the run cannot use."""


class NonFiniteError(RuntimeError):
  """The loss or gradient norm became NaN/inf (``config.nonfinite_policy``)."""


class WorkdirBusy(RuntimeError):
  """Another live process holds the workdir's lock."""


class Stopped(Exception):
  """Training stopped on a signal after checkpointing; ``exit_code`` is 128 + the signal."""

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.exit_code = 128 + signum
