"""Plots a run's train/eval curves: python scripts/plot_metrics.py WORKDIR [--out=PNG]
(default WORKDIR/metrics.png)."""

import os

from absl import app, flags

from cnnlab import plotting
from cnnlab.train import workdir as workdir_lib

flags.DEFINE_string("out", None, "PNG path (default: WORKDIR/metrics.png).")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("usage: plot_metrics.py WORKDIR [--out=PNG]")
  workdir = argv[1]
  metrics = workdir_lib.read_metrics(workdir)
  if not metrics:
    raise SystemExit(f"error: {workdir} holds no metrics to plot (a run's --workdir)")
  out = FLAGS.out or os.path.join(workdir, "metrics.png")
  print(plotting.plot_metrics(metrics, out, title=os.path.basename(workdir)))


if __name__ == "__main__":
  app.run(main)
