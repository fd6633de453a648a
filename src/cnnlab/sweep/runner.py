"""Runs a sweep's points as separate jobs and collects their results.

Layout: ``WORKDIR/sweep.json`` (the points), ``WORKDIR/<NNN>_<overrides>/`` one workdir per point
(``point.json``, ``log.txt``, checkpoints, ``result.json`` once finished), and the collected
``results.csv``, ``results.md`` and ``results.png``.

Executors: ``local`` (subprocesses, ``parallel`` at a time, one CPU thread each), ``submitit_local``
(submitit's LocalExecutor: the same code path as SLURM, run here) and ``slurm`` (submitit's
AutoExecutor; set partition, GPUs per job, time limit with :class:`SlurmOptions`). With
``nodes`` x ``tasks_per_node`` > 1 each point is one multi-process JAX job
(``cnnlab.sweep.job.init_distributed``; a config without a sweep is one such run):
``gpus_per_task`` GPUs per process under SLURM; submitit_local runs all the tasks here, on CPU
(docs/scale.md, "Cluster launch"). Re-running a
sweep skips finished points (refusing one whose config has changed since) and resumes interrupted ones from their checkpoints; a failing point
is reported with its log and does not stop the others.

Local jobs die with the driver (``prctl(PR_SET_PDEATHSIG)``: SIGTERM, so a training job saves
its step first), even when the driver is killed with SIGKILL; a point whose workdir lock is held
(its job from an earlier driver still running) is not started again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

from cnnlab import procs
from cnnlab.sweep import collect
from cnnlab.sweep import job
from cnnlab.train import workdir as workdir_lib
from cnnlab.train.errors import ConfigError

EXECUTORS = ("local", "submitit_local", "slurm")


@dataclasses.dataclass
class SlurmOptions:
  """A job's resources: ``gpus_per_job`` / ``cpus_per_job`` / ``mem_gb`` per node; ``nodes`` x
  ``tasks_per_node`` processes (one JAX process each), ``gpus_per_task`` GPUs each (0: the
  node's ``gpus_per_job`` are shared by its tasks)."""
  partition: str = ""
  gpus_per_job: int = 0
  cpus_per_job: int = 4
  mem_gb: int = 32
  time_min: int = 120
  nodes: int = 1
  tasks_per_node: int = 1
  gpus_per_task: int = 0

  @property
  def tasks(self) -> int:
    return self.nodes * self.tasks_per_node


def point_dirname(index: int, overrides: dict) -> str:
  slug = ",".join(f"{k.split('.')[-1]}={v}" for k, v in overrides.items())
  return f"{index:03d}_" + re.sub(r"[^A-Za-z0-9_.=,+-]", "", slug)[:80]


def _prepare(config_path, arg, points, workdir) -> list[pathlib.Path]:
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  record = {"config": os.path.abspath(config_path), "arg": arg, "points": points}
  sweep_file = workdir / "sweep.json"
  if sweep_file.exists() and json.loads(sweep_file.read_text()) != record:
    raise ValueError(f"{sweep_file} records a different sweep (config, arg or points); use a new "
                     "--workdir, or delete that one to start over")
  sweep_file.write_text(json.dumps(record, indent=2))
  dirs = []
  for i, overrides in enumerate(points):
    d = workdir / point_dirname(i, overrides)
    d.mkdir(exist_ok=True)
    (d / "point.json").write_text(json.dumps(
        {"config": record["config"], "arg": arg, "overrides": overrides}))
    dirs.append(d)
  return dirs


def _check_finished(dirs) -> None:
  """Refuses to count a point as finished when the config it gives now (its config file changed
  since) differs from the one it was trained with: one line naming the fields."""
  module = None
  for d in dirs:
    if not ((d / "result.json").exists() and workdir_lib.config_path(d).exists()):
      continue
    point = json.loads((d / "point.json").read_text())  # every point names the sweep's config
    module = module or job.load_module(point["config"])
    config = job.load_config(point["config"], point["arg"], point["overrides"], module)
    old, new, diff = workdir_lib.config_changes(d, config)
    if diff:
      changes = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
      raise ConfigError(f"sweep point {d} finished with a different config ({changes}); delete "
                        "that folder to rerun it, or use a new --workdir")


def _run_local(dirs, parallel: int):
  env = dict(os.environ, OMP_NUM_THREADS="1", XLA_FLAGS=(
      os.environ.get("XLA_FLAGS", "") +
      " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip())
  queue, running = list(dirs), []
  while queue or running:
    while queue and len(running) < parallel:
      d = queue.pop(0)
      log = open(d / "log.txt", "a")
      running.append((subprocess.Popen([sys.executable, "-m", "cnnlab.sweep.job", str(d)],
                                       stdout=log, stderr=subprocess.STDOUT, env=env,
                                       preexec_fn=_job_init), log))
    time.sleep(0.2)
    for proc, log in [r for r in running if r[0].poll() is not None]:
      log.close()
      running.remove((proc, log))


def _job_init():
  procs.die_with_parent(signal.SIGTERM)


def executor_for(executor: str, folder, parallel: int, slurm: SlurmOptions):
  """The submitit executor of ``executor`` ('submitit_local' or 'slurm') with ``slurm``'s
  resources."""
  import submitit
  if executor == "submitit_local":  # every task on this machine
    ex = submitit.LocalExecutor(folder=folder)
    ex.update_parameters(timeout_min=slurm.time_min, tasks_per_node=slurm.tasks)
    return ex
  ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
  gpus = ({"slurm_gpus_per_task": slurm.gpus_per_task} if slurm.gpus_per_task
          else {"gpus_per_node": slurm.gpus_per_job})
  ex.update_parameters(slurm_partition=slurm.partition or None, cpus_per_task=max(
      slurm.cpus_per_job // slurm.tasks_per_node, 1), mem_gb=slurm.mem_gb,
      timeout_min=slurm.time_min, nodes=slurm.nodes, tasks_per_node=slurm.tasks_per_node,
      slurm_array_parallelism=parallel, **gpus)
  return ex


def _run_submitit(dirs, workdir, executor: str, parallel: int, slurm: SlurmOptions):
  from cnnlab import launch
  ex = executor_for(executor, pathlib.Path(workdir) / "_submitit", parallel, slurm)
  # Local multi-task jobs meet at a port of this machine; SLURM's find theirs (JAX reads it).
  local = executor == "submitit_local" and slurm.tasks > 1
  ports = [launch.free_port() if local else None for _ in dirs]
  with ex.batch():
    jobs = [ex.submit(job.run, str(d), port) for d, port in zip(dirs, ports)]
  for d, j in zip(dirs, jobs):
    try:
      j.results()
    except Exception as e:  # noqa: BLE001 - a failed point is recorded, the others go on.
      (d / "log.txt").write_text(f"{j.stdout() or ''}\n{j.stderr() or ''}\n{e}\n")


def run_sweep(config_path: str, points: list[dict], workdir: str, *, arg: str | None = None,
              executor: str = "local", parallel: int | None = None,
              slurm: SlurmOptions | None = None, metric: str = "accuracy") -> list[dict]:
  """Runs the unfinished points of the sweep; returns the collected rows (one per point)."""
  if executor not in EXECUTORS:
    raise ValueError(f"executor={executor!r} is not one of {EXECUTORS}")
  if not points:
    raise ValueError(f"the sweep of {config_path} has no points")
  parallel = parallel or os.cpu_count() or 1
  dirs = _prepare(config_path, arg, points, workdir)
  _check_finished(dirs)
  todo = [d for d in dirs if not (d / "result.json").exists()]
  busy = {d: workdir_lib.holder(d) for d in todo}
  busy = {d: pid for d, pid in busy.items() if pid is not None}
  for d, pid in busy.items():
    print(f"sweep: point {d.name} is still running (pid {pid}, from an earlier sweep driver); "
          "not starting it again")
  todo = [d for d in todo if d not in busy]
  print(f"sweep: {len(dirs)} points, {len(dirs) - len(todo) - len(busy)} already finished, "
        f"{len(busy)} still running elsewhere, running {len(todo)} with executor={executor}")
  if executor == "local":
    _run_local(todo, parallel)
  elif todo:
    _run_submitit(todo, workdir, executor, parallel, slurm or SlurmOptions())
  rows = collect.collect(workdir, metric=metric)
  running = {d.name for d in busy}
  for r in rows:
    if r["status"] != "done" and r["point"] not in running:
      print(f"sweep: point {r['point']} FAILED; log {pathlib.Path(workdir, r['point'], 'log.txt')}:"
            f"\n{r['log_tail']}")
  return rows
