"""Runs the sweep a config file declares in ``get_sweep(arg)``, one training job per point:

  python scripts/sweep.py --config=configs/mlp_digits.py[:arg] --workdir=runs/sweep \
      [--executor=local|submitit_local|slurm] [--parallel=N]
  # SLURM: --executor=slurm --slurm_partition=gpu --slurm_gpus_per_job=1 --slurm_time_min=120
  # one multi-node run (a config without get_sweep is one point):
  #   --executor=slurm --slurm_nodes=2 --slurm_tasks_per_node=1 --slurm_gpus_per_task=8

Re-running the same command skips finished points. Writes results.csv/.md/.png to --workdir.
With --slurm_nodes x --slurm_tasks_per_node > 1 every point is one multi-process JAX job
(jax.distributed.initialize() auto-detects SLURM); --executor=submitit_local runs its tasks here.
"""

import os
import sys

from absl import app, flags

from cnnlab import hostmem
from cnnlab.sweep import job, runner
from cnnlab.train.errors import ConfigError

flags.DEFINE_string("config", None, "Config file with get_config and get_sweep, path[:arg].")
flags.DEFINE_string("workdir", None, "Sweep directory (one subdirectory per point).")
flags.DEFINE_enum("executor", "local", runner.EXECUTORS, "Where the jobs run.")
flags.DEFINE_integer("parallel", None, "Jobs at a time (default: number of CPU cores).",
                     lower_bound=1)
flags.DEFINE_string("metric", "accuracy", "Result field to tabulate and plot.")
flags.DEFINE_string("slurm_partition", "", "SLURM partition.")
flags.DEFINE_integer("slurm_gpus_per_job", 0, "GPUs per SLURM job.", lower_bound=0)
flags.DEFINE_integer("slurm_cpus_per_job", 4, "CPUs per SLURM job.", lower_bound=1)
flags.DEFINE_integer("slurm_mem_gb", 32, "Memory per SLURM job (GB).", lower_bound=1)
flags.DEFINE_integer("slurm_time_min", 120, "Time limit per SLURM job (minutes).",
                     lower_bound=1)
flags.DEFINE_integer("slurm_nodes", 1, "Nodes per job (one multi-process JAX run).",
                     lower_bound=1)
flags.DEFINE_integer("slurm_tasks_per_node", 1, "JAX processes per node.", lower_bound=1)
flags.DEFINE_integer("slurm_gpus_per_task", 0, "GPUs per process (0: --slurm_gpus_per_job "
                     "per node).", lower_bound=0)
flags.mark_flags_as_required(["config", "workdir"])
flags.register_validator("config", lambda v: v is None or os.path.isfile(v.partition(":")[0]),
                         message="names no config file (path[:arg], e.g. configs/mlp_digits.py)")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  path, _, arg = FLAGS.config.partition(":")
  module = job.load_module(path)
  points = module.get_sweep(arg or None) if hasattr(module, "get_sweep") else [{}]  # one run
  slurm = runner.SlurmOptions(FLAGS.slurm_partition, FLAGS.slurm_gpus_per_job,
                              FLAGS.slurm_cpus_per_job, FLAGS.slurm_mem_gb, FLAGS.slurm_time_min,
                              FLAGS.slurm_nodes, FLAGS.slurm_tasks_per_node,
                              FLAGS.slurm_gpus_per_task)
  try:
    rows = runner.run_sweep(path, points, FLAGS.workdir, arg=arg or None,
                            executor=FLAGS.executor, parallel=FLAGS.parallel, slurm=slurm,
                            metric=FLAGS.metric)
  except ConfigError as e:  # e.g. a --metric the points do not report: one line, exit 2
    print(f"error: {e}", file=sys.stderr)
    raise SystemExit(2) from None
  done = sum(r["status"] == "done" for r in rows)
  print(f"sweep: {done}/{len(rows)} points done; results in {FLAGS.workdir}/results.{{csv,md,png}}")
  if done < len(rows):
    raise SystemExit(1)


if __name__ == "__main__":
  hostmem.reexec()  # its local jobs inherit the environment
  app.run(main)
