"""Child processes that die with their parent (Linux ``prctl(PR_SET_PDEATHSIG)``).

A sweep job or a Grain worker whose parent is killed (even by SIGKILL) gets ``signum``: no orphan
keeps a CPU, a GPU or a workdir lock. A no-op elsewhere than Linux.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGKILL) -> None:
  """Asks the kernel to send ``signum`` to this process when its parent dies; if the parent
  died already (this process was re-parented), exits at once."""
  if not sys.platform.startswith("linux"):
    return
  parent = os.getppid()
  libc = ctypes.CDLL(None, use_errno=True)
  if libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
    raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
  if parent == 1:
    os._exit(128 + int(signum))


def grain_worker_init(worker_index: int, worker_count: int) -> None:
  """``worker_init_fn`` for Grain's ``mp_prefetch``: the worker dies with the trainer."""
  del worker_index, worker_count
  die_with_parent(signal.SIGKILL)
