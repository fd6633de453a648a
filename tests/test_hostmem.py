"""``cnnlab.hostmem``: the environment it restarts a process with, and the effect in a real
process: a 64 MB buffer gets transparent huge pages (the kernel's ``AnonHugePages``) after
``reexec()``, and none without it where the kernel's THP mode is ``madvise``."""

import inspect
import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from cnnlab import hostmem

GLIBC = dict(libc="glibc", mode="madvise")


def test_environment_adds_the_tunable_after_existing_ones():
  before = {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
  env = hostmem.environment(before, **GLIBC)
  assert env == {**before, "GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}
  assert hostmem.environment({}, **GLIBC) == {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
  assert hostmem.environment({}, libc="glibc", mode="always") is not None


@pytest.mark.parametrize("env,libc,mode", [
    ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "glibc", "madvise"),  # the user's choice
    ({"GLIBC_TUNABLES": "a=1:glibc.malloc.hugetlb=2"}, "glibc", "madvise"),
    ({hostmem.OFF: "0"}, "glibc", "madvise"),
    ({}, "", "madvise"),  # not glibc (musl, macOS, Windows)
    ({}, "glibc", "never"),
    ({}, "glibc", ""),  # no THP in this kernel
], ids=["hugetlb-set", "hugetlb-set-later", "off", "not-glibc", "thp-never", "no-thp"])
def test_environment_left_alone(env, libc, mode):
  assert hostmem.environment(env, libc=libc, mode=mode) is None


def test_reexec_goes_on_when_the_restart_fails(monkeypatch):
  calls = []

  def execve(*args):
    calls.append(args)
    raise OSError("no such interpreter")

  monkeypatch.setattr(hostmem, "environment", lambda env: {**env, "GLIBC_TUNABLES": "x=1"})
  monkeypatch.setattr(os, "execve", execve)
  hostmem.reexec()  # returns: the process goes on as it started
  assert len(calls) == 1
  assert calls[0][0] == sys.executable and calls[0][2]["GLIBC_TUNABLES"] == "x=1"


def test_thp_mode_reads_the_bracketed_word(tmp_path):
  (tmp_path / "enabled").write_text("always [madvise] never\n")
  assert hostmem.thp_mode(tmp_path / "enabled") == "madvise"
  assert hostmem.thp_mode(tmp_path / "missing") == ""


def huge_kb() -> int:
  """The kernel's AnonHugePages of this process, in kB."""
  with open("/proc/self/smaps_rollup") as f:
    return next(int(l.split()[1]) for l in f if l.startswith("AnonHugePages:"))


# Restarts itself with hostmem, then reports its GLIBC_TUNABLES and the AnonHugePages (kB) that a
# 64 MB malloc, written once, added to the process (numpy would advise huge pages by itself).
CHILD = "import ctypes, json, os\n" + inspect.getsource(huge_kb) + """
from cnnlab import hostmem
hostmem.reexec()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
before = huge_kb()
buf = libc.malloc(64 << 20)
ctypes.memset(buf, 1, 64 << 20)
print(json.dumps({"tunables": os.environ.get("GLIBC_TUNABLES", ""), "huge_kb": huge_kb() - before}))
"""


def child(**env):
  base = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", hostmem.OFF)}
  out = subprocess.run([sys.executable, "-c", CHILD], env={**base, **env}, capture_output=True,
                       text=True, check=True, timeout=120)
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or hostmem.thp_mode() not in
                    ("always", "madvise") or not os.path.exists("/proc/self/smaps_rollup"),
                    reason="needs glibc and a kernel with THP on (madvise or always; elsewhere "
                    "hostmem leaves the process as it is) that reports AnonHugePages")
def test_reexec_gives_a_large_buffer_huge_pages():
  before = huge_kb()
  probe = np.ones(16 << 20, np.float32)  # numpy advises huge pages for its large buffers itself
  if huge_kb() - before == 0:
    pytest.skip("this process gets no huge pages even when it asks (THP off for the container)")
  del probe
  on = child()
  assert on["tunables"] == "glibc.malloc.hugetlb=1"
  assert on["huge_kb"] >= 32 << 10, on  # at least half of the 64 MB in 2 MB pages
  off = child(**{hostmem.OFF: "0"})
  assert off["tunables"] == ""
  if hostmem.thp_mode() == "madvise":  # without the advice the kernel gives 4 KB pages only
    assert off["huge_kb"] == 0, off
