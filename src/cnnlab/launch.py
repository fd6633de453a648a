"""N local processes running one command as one multi-process JAX job (what a multi-host TPU/GPU
job does, on one machine).

``launch_local(command, num_processes=N, devices_per_process=M)`` starts ``command`` N times, each
with ``--multihost --coordinator_address=localhost:PORT --num_processes=N --process_id=i``
appended (``cnnlab.train.cli`` passes them to ``jax.distributed.initialize``) and
``XLA_FLAGS=--xla_force_host_platform_device_count=M``, so the job sees N*M CPU devices in N
processes. The children die with the launcher (``procs.die_with_parent``). A SIGTERM/SIGINT of
the launcher is sent on to every child as SIGTERM (JAX's preemption notice: all processes stop at
the same step and checkpoint it); a second one kills them. When one child fails, the others are
stopped. Returns process 0's exit code, else the first non-zero one, else 0 (a child killed by
signal ``s`` counts as ``128 + s``, as in a shell).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from cnnlab import procs

GRACE_S = 30.0


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def child_argv(command: list[str], num_processes: int, process_id: int, port: int) -> list[str]:
  """``command`` (a leading ``python`` is this interpreter) with the multi-process flags."""
  argv = [sys.executable, *command[1:]] if command[0] in ("python", "python3") else list(command)
  return [*argv, "--multihost", f"--coordinator_address=localhost:{port}",
          f"--num_processes={num_processes}", f"--process_id={process_id}"]


def child_env(devices_per_process: int, env=None) -> dict:
  env = dict(os.environ if env is None else env)
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  env["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count="
                                       f"{devices_per_process}"])
  env["JAX_PLATFORMS"] = "cpu"
  return env


def _signal_all(children, signum):
  for p in children:
    if p.poll() is None:
      p.send_signal(signum)


def launch_local(command: list[str], *, num_processes: int, devices_per_process: int = 1,
                 port: int | None = None, cwd=None) -> int:
  if num_processes < 1 or devices_per_process < 1:
    raise ValueError(f"num_processes={num_processes} and devices_per_process="
                     f"{devices_per_process} must both be >= 1")
  port = port or free_port()
  env = child_env(devices_per_process)
  children = [subprocess.Popen(child_argv(command, num_processes, i, port), env=env, cwd=cwd,
                               preexec_fn=procs.die_with_parent)
              for i in range(num_processes)]
  signals = []

  def forward(signum, frame):
    del frame
    signals.append(signum)
    _signal_all(children, signal.SIGTERM if len(signals) == 1 else signal.SIGKILL)

  old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    failed_at = None
    while any(p.poll() is None for p in children):
      if failed_at is None and any(p.poll() not in (None, 0) for p in children):
        failed_at = time.monotonic()
        _signal_all(children, signal.SIGTERM)
      elif failed_at is not None and time.monotonic() - failed_at > GRACE_S:
        _signal_all(children, signal.SIGKILL)
      time.sleep(0.1)
  finally:
    for s, handler in old.items():
      signal.signal(s, handler)
  codes = [p.returncode if p.returncode >= 0 else 128 - p.returncode for p in children]
  return codes[0] or next((c for c in codes if c), 0)
