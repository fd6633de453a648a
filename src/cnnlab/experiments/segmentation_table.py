"""The segmentation table (configs/dense/segmentation_table.py): one row per finished point —
model and decoder, eval mIoU and pixel accuracy (``result.json``), trainable parameters,
multiply-accumulates per canvas (``cnnlab.models.summary``), median train canvases/s, wall time.
Writes ``segmentation_table.{md,json}``."""

from __future__ import annotations

import json

from cnnlab import report
from cnnlab.experiments import zoo_table
from cnnlab.experiments._sweep_results import finished_points, model_macs
from cnnlab.train import workdir as workdir_lib

COLUMNS = ("model", "mIoU (%)", "pixel accuracy (%)", "parameters", "MACs (M)",
           "train canvases/s", "wall time (min)")


def run(config, workdir: str) -> dict:
  rows = []
  for point in finished_points(config.sweep_workdir, "configs/dense/segmentation_table.py"):
    c = workdir_lib.read_config(point)
    result = json.loads((point / "result.json").read_text())
    r = zoo_table.row(point)
    s = c.data.canvas_size
    name = c.model.name + (f" ({c.model.decoder} decoder)" if "decoder" in c.model else "")
    rows.append({"model": name, "mIoU (%)": f"{100 * result['miou']:.2f}",
                 "pixel accuracy (%)": f"{100 * result['pixel_accuracy']:.2f}",
                 "parameters": r["parameters"],
                 "MACs (M)": round(model_macs(c, (s, s, 1)) / 1e6, 1),
                 "train canvases/s": r["train img/s"], "wall time (min)": r["wall time (min)"]})
  md = report.markdown_table(rows, list(COLUMNS))
  report.write(workdir, "segmentation_table", rows, markdown=md)
  print(md)
  return {"rows": rows}
