"""Transparent huge pages for the host's large buffers, set before the process starts.

XLA's CPU runtime allocates each execution's temporary buffer anew (222 MB for MobileNet-v2's
train step at batch 32, 555 MB for ResNet-18 CIFAR's at 64) and frees it after; glibc serves an
allocation that large with ``mmap`` and returns it with ``munmap``, so every step faults the
whole buffer in again, 4 KB at a time (55,600 and 142,000 page faults, 0.10 and 0.26 s of kernel
time per step). glibc's tunable ``glibc.malloc.hugetlb=1`` makes ``malloc`` advise transparent
huge pages (``MADV_HUGEPAGE``, 2 MB) for such mappings, where the kernel's THP mode is
``madvise`` or ``always``; MobileNet-v2's step then ran 1.3-1.4x faster (docs/performance.md,
"Page faults and huge pages"). glibc reads its tunables once, when the process starts, so
:func:`reexec` restarts the process with the tunable added to ``GLIBC_TUNABLES``.

The scripts call :func:`reexec` first (``cnnlab.train.cli.run``, ``scripts/sweep.py`` and the
benchmarks' entry points). Nothing changes where the C library is not glibc, the kernel has no
THP (or its mode is ``never``), ``GLIBC_TUNABLES`` already sets ``glibc.malloc.hugetlb`` (to any
value), or ``CNNLAB_HUGEPAGES=0``. Huge pages change speed and resident memory, never results.
No JAX here.
"""

from __future__ import annotations

import os
import pathlib
import platform
import sys

from absl import logging

TUNABLE = "glibc.malloc.hugetlb"
OFF = "CNNLAB_HUGEPAGES"  # set to 0: keep the process as started
THP_MODE = pathlib.Path("/sys/kernel/mm/transparent_hugepage/enabled")


def thp_mode(path: pathlib.Path = THP_MODE) -> str:
  """The kernel's transparent-huge-page mode (``always``, ``madvise``, ``never``), the bracketed
  word of ``path``; ``''`` where there is none (not Linux, or no THP)."""
  try:
    text = path.read_text()
  except OSError:
    return ""
  return text.partition("[")[2].partition("]")[0]


def environment(env: dict[str, str], *, libc: str | None = None,
                mode: str | None = None) -> dict[str, str] | None:
  """``env`` with ``glibc.malloc.hugetlb=1`` added to its ``GLIBC_TUNABLES``, or None where it
  should be left as it is (see the module doc). ``libc``, ``mode``: the C library's name and the
  THP mode (default: this machine's)."""
  libc = platform.libc_ver()[0] if libc is None else libc
  mode = thp_mode() if mode is None else mode
  tunables = env.get("GLIBC_TUNABLES", "")
  if (libc != "glibc" or mode not in ("always", "madvise") or env.get(OFF) == "0"
      or any(t.partition("=")[0] == TUNABLE for t in tunables.split(":"))):
    return None
  return {**env, "GLIBC_TUNABLES": ":".join(filter(None, [tunables, f"{TUNABLE}=1"]))}


def reexec() -> None:
  """Restarts this process (same interpreter, same command line) with :func:`environment`, if
  that changes anything; else returns, as it does (after a warning) where the restart fails.
  Call it before any work: the process is replaced."""
  env = environment(dict(os.environ))
  if env is None or not sys.executable:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  try:
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
  except OSError as e:
    logging.warning("cnnlab.hostmem: running without huge pages, the restart with %s=1 failed: %s",
                    TUNABLE, e)


def in_force() -> str:
  """The ``GLIBC_TUNABLES`` of this process and the THP mode, for benchmark reports."""
  return f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')!r}, THP {thp_mode() or 'none'}"
