"""Training-step throughput, cnnlab vs PyTorch eager (CPU), measured in the same run.

  python scripts/bench_train.py --workdir=runs/bench_train [--impls=lax,shift,im2col]

Writes bench_train.{json,md,png} to --workdir and prints the table with ratios to torch.
"""

import os

import torch
from absl import app, flags

from cnnlab import plotting
from cnnlab.bench import report, torch_models, train_throughput

flags.DEFINE_string("workdir", "runs/bench_train", "Output directory.")
flags.DEFINE_list("impls", ["lax", "shift", "im2col"], "cnnlab conv impls to time.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("steps", 30, "Steps per timed window.")
flags.DEFINE_integer("repeats", 3, "Timed windows (median reported).")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  torch.set_num_threads(os.cpu_count())
  kw = dict(batch_size=FLAGS.batch_size, steps=FLAGS.steps, repeats=FLAGS.repeats)
  ref = train_throughput.torch_throughput(torch_models.LeNet5(), (1, 32, 32), **kw)
  rows = [{"model": "lenet5", "framework": "torch eager", "impl": "-", **ref}]
  for impl in FLAGS.impls:
    r = train_throughput.cnnlab_throughput("lenet5", conv_impl=impl, **kw)
    rows.append({"model": "lenet5", "framework": "cnnlab jit", "impl": impl, **r})
  for r in rows:
    r["ratio_to_torch"] = r["img_per_s"] / ref["img_per_s"]
  cols = ["model", "framework", "impl", "img_per_s", "ratio_to_torch", "compile_s"]
  paths = report.write(FLAGS.workdir, "bench_train", rows, cols,
                       extra={"batch_size": FLAGS.batch_size, "steps": FLAGS.steps})
  png = plotting.bar_chart([f"{r['framework']}\n{r['impl']}" for r in rows],
                           [r["img_per_s"] for r in rows], "images / s (LeNet-5 train step)",
                           os.path.join(FLAGS.workdir, "bench_train.png"))
  print(report.markdown_table(rows, cols))
  print("wrote", paths["json"], paths["md"], png)


if __name__ == "__main__":
  app.run(main)
