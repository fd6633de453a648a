"""One sweep point as a job: ``python -m cnnlab.sweep.job POINT_DIR``.

``POINT_DIR/point.json`` holds ``{"config": path, "arg": str, "overrides": {field: value}}`` (an
override ``":arg"`` is the point's own config arg, joined with the sweep's). The job runs the
config's experiment (``cnnlab.experiments.run``: training unless ``config.experiment`` says
otherwise) in ``POINT_DIR``; on success it writes ``POINT_DIR/result.json`` (its result plus
``wall_s``, the job's wall time) atomically: its
presence is what marks a point finished.

A submitit job of several tasks (``SlurmOptions.nodes`` x ``tasks_per_node``) is one
multi-process JAX run: each task calls ``jax.distributed.initialize()`` first — with no
arguments under SLURM (JAX reads the job's ``SLURM_*`` variables: coordinator, process count and
index), with ``localhost:coordinator_port`` and submitit's task rank and count under its
LocalExecutor — and only process 0 writes ``result.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import sys
import time

from cnnlab.sweep.spec import ARG


def load_module(path: str):
  """Imports a config file by path (it defines ``get_config`` and maybe ``get_sweep``)."""
  spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config(path: str, arg: str | None, overrides: dict, module=None):
  """``get_config`` of the file at ``path`` with the point's arg and field overrides."""
  overrides = dict(overrides)
  arg = ",".join(filter(None, [overrides.pop(ARG, None), arg]))
  config = (module or load_module(path)).get_config(arg or None)
  # point.json is JSON: tuple values (e.g. model.hidden) come back as lists.
  config.update_from_flattened_dict(
      {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
  return config


def init_distributed(coordinator_port: int | None = None) -> None:
  """``jax.distributed.initialize`` for a submitit job of several tasks (module doc); nothing
  for one task or outside submitit."""
  import submitit  # noqa: PLC0415
  try:
    env = submitit.JobEnvironment()
  except RuntimeError:  # not a submitit job
    return
  if env.num_tasks == 1:
    return
  import jax  # noqa: PLC0415
  if "SLURM_JOB_ID" in os.environ:
    jax.distributed.initialize()  # JAX's SLURM auto-detection
  else:
    jax.distributed.initialize(f"localhost:{coordinator_port}", env.num_tasks, env.global_rank)


def run(point_dir: str, coordinator_port: int | None = None) -> dict:
  """Runs the point (as one process of a multi-task submitit job if it is one)."""
  init_distributed(coordinator_port)
  import jax  # noqa: PLC0415
  from cnnlab import experiments  # noqa: PLC0415 - the job's process imports JAX, not the runner
  point = json.loads(pathlib.Path(point_dir, "point.json").read_text())
  config = load_config(point["config"], point["arg"], point["overrides"])
  if "progress_bar" in config and "progress_bar" not in point["overrides"]:
    config.progress_bar = False  # jobs log to files
  t0 = time.perf_counter()
  result = {**experiments.run(config, point_dir), "wall_s": time.perf_counter() - t0}
  if jax.process_index() != 0:
    return result
  tmp = pathlib.Path(point_dir, "result.json.tmp")
  tmp.write_text(json.dumps(result))
  os.replace(tmp, pathlib.Path(point_dir, "result.json"))
  return result


if __name__ == "__main__":
  run(sys.argv[1])
