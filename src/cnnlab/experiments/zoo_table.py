"""The zoo results table: one row per finished point of a zoo sweep (configs/zoo/mnist8k.py).

For each point in ``config.sweep_workdir``: the model, its input size, the final eval accuracy
(``result.json``), trainable parameters (from the checkpoint), training throughput (the median
``examples_per_s`` of the logged train windows after the first, which includes compilation)
and the job's wall time. Writes ``zoo_table.{md,json}``.
"""

from __future__ import annotations

import json
import pathlib
import statistics

import jax

from cnnlab import report
from cnnlab.experiments._sweep_results import finished_points
from cnnlab.train import workdir as workdir_lib

COLUMNS = ("model", "input", "eval accuracy (%)", "parameters", "train img/s", "wall time (min)")


def row(point: pathlib.Path) -> dict:
  result = json.loads((point / "result.json").read_text())
  config, _, variables = workdir_lib.load(point)
  train = workdir_lib.read_metrics(point, "train")
  speeds = [r["examples_per_s"] for r in train[1:]] or [r["examples_per_s"] for r in train]
  size = config.data.image_size or 28
  return {"model": config.model.name, "input": f"{size}x{size}",
          "eval accuracy (%)": f"{100 * result['accuracy']:.2f}",
          "parameters": sum(x.size for x in jax.tree.leaves(variables["params"])),
          "train img/s": round(statistics.median(speeds), 1),
          "wall time (min)": round(result["wall_s"] / 60, 1)}


def run(config, workdir: str) -> dict:
  rows = [row(p) for p in finished_points(config.sweep_workdir, "configs/zoo/mnist8k.py")]
  md = report.markdown_table(rows, list(COLUMNS))
  report.write(workdir, "zoo_table", rows, markdown=md)
  print(md)
  return {"rows": rows}
