"""The video table (configs/video/fusion_table.py): one row per model of a finished sweep, with
its eval accuracy on each target (direction, digit), trainable parameters, multiply-accumulates
per clip (``cnnlab.models.summary``), median train clips/s and wall time (both from the
direction run). Writes ``video_table.{md,json}``."""

from __future__ import annotations

from cnnlab import report
from cnnlab.experiments import zoo_table
from cnnlab.experiments._sweep_results import finished_points, model_macs
from cnnlab.train import workdir as workdir_lib

COLUMNS = ("model", "direction accuracy (%)", "digit accuracy (%)", "parameters", "MACs (M)",
           "train clips/s", "wall time (min)")


def run(config, workdir: str) -> dict:
  rows: dict[str, dict] = {}
  for point in finished_points(config.sweep_workdir, "configs/video/fusion_table.py"):
    c = workdir_lib.read_config(point)
    r = zoo_table.row(point)
    out = rows.setdefault(c.model.name, {"model": c.model.name, "direction accuracy (%)": "",
                                         "digit accuracy (%)": ""})
    out[f"{c.data.target} accuracy (%)"] = r["eval accuracy (%)"]
    if c.data.target == "direction" or "parameters" not in out:
      shape = (c.data.num_frames, c.data.frame_size, c.data.frame_size, 1)
      out.update({"parameters": r["parameters"], "MACs (M)": round(model_macs(c, shape) / 1e6, 1),
                  "train clips/s": r["train img/s"], "wall time (min)": r["wall time (min)"]})
  table = list(rows.values())
  md = report.markdown_table(table, list(COLUMNS))
  report.write(workdir, "video_table", table, markdown=md)
  print(md)
  return {"rows": table}
