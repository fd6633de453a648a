"""Gradient accumulation and rematerialisation, each against its reference in the same run:

  nice -n 5 python scripts/bench_accum.py --workdir=runs/bench_accum

1. Throughput of one optimizer step on a batch of --batch as one large batch (the reference), as
   --k scanned micro-batches (grad_accum_impl='scan') and as --k optax.MultiSteps micro-steps
   ('multisteps'), for each of --cases.
2. ResNet-50 at --remat_image_size: for each remat policy, the residuals kept for the backward
   pass, the compiled train step's temporary memory and FLOPs, and its measured time over
   --remat_time_steps steps (0: compile only), vs no remat.

Writes bench_accum.{json,md,png} and bench_remat.{json,md,png} to --workdir and prints the tables
with their ratios. What is measured: cnnlab.bench.scale; results: docs/scale.md.
"""

import os

from absl import app, flags

from cnnlab import hostmem, plotting
from cnnlab.bench import report, scale

# name -> (model + options, input HWC)
CASES = {"lenet5": (dict(model_name="lenet5"), (32, 32, 1)),
         "resnet20": (dict(model_name="resnet20"), (32, 32, 3))}

flags.DEFINE_string("workdir", "runs/bench_accum", "Output directory.")
flags.DEFINE_list("cases", list(CASES), f"Networks to time, from {list(CASES)}.")
flags.DEFINE_integer("batch", 128, "Batch per optimizer step.", lower_bound=1)
flags.DEFINE_integer("k", 4, "Micro-batches per step (divides --batch).", lower_bound=1)
flags.DEFINE_integer("steps", 10, "Optimizer steps per timed window.", lower_bound=1)
flags.DEFINE_integer("repeats", 3, "Timed windows (median reported).", lower_bound=1)
flags.DEFINE_bool("accum", True, "Measure accumulation.")
flags.DEFINE_bool("remat", True, "Measure remat on ResNet-50.")
flags.DEFINE_integer("remat_batch", 8, "ResNet-50 batch.", lower_bound=1)
flags.DEFINE_integer("remat_image_size", 224, "ResNet-50 input size.", lower_bound=32)
flags.DEFINE_integer("remat_time_steps", 2, "Timed ResNet-50 steps per policy (0: compile only).",
                     lower_bound=0)
FLAGS = flags.FLAGS
flags.register_validator("cases", lambda v: set(v) <= CASES.keys(),
                         message=f"names networks not among {list(CASES)}")
flags.register_multi_flags_validator(["batch", "k"], lambda v: v["batch"] % v["k"] == 0,
                                     message="--k must divide --batch (equal micro-batches)")


def main(argv):
  del argv
  if FLAGS.accum:
    _accum()
  if FLAGS.remat:
    _remat()


def _accum():
  rows = []
  for case in FLAGS.cases:
    kw, hwc = CASES[case]
    rows += scale.accum_throughput(batch_size=FLAGS.batch, k=FLAGS.k, steps=FLAGS.steps,
                                   repeats=FLAGS.repeats, input_shape=hwc, **kw)
  cols = ["model", "impl", "batch", "k", "micro_batch", "img_per_s", "ratio_to_large_batch",
          "compile_s"]
  paths = report.write(FLAGS.workdir, "bench_accum", rows, cols, extra={"steps": FLAGS.steps})
  plotting.bar_chart([f"{r['model']}\n{r['impl']}" for r in rows],
                     [r["ratio_to_large_batch"] for r in rows], "throughput / large batch's",
                     os.path.join(FLAGS.workdir, "bench_accum.png"), fmt="%.2f", hline=1.0)
  print(report.markdown_table(rows, cols))
  print("wrote", paths["json"], paths["md"])


def _remat():
  rows = scale.remat_cost("resnet50", batch_size=FLAGS.remat_batch,
                          image_size=FLAGS.remat_image_size, time_steps=FLAGS.remat_time_steps)
  cols = ["model", "batch", "image_size", "policy", "residual_mib", "residual_ratio", "temp_mib",
          "memory_ratio", "gflops",
          "flops_ratio", "step_s", "time_ratio", "compile_s"]
  paths = report.write(FLAGS.workdir, "bench_remat", rows, cols)
  plotting.bar_chart([r["policy"] for r in rows], [r["residual_ratio"] for r in rows],
                     "saved residuals / no remat's", os.path.join(FLAGS.workdir, "bench_remat.png"),
                     fmt="%.2f", hline=1.0)
  print(report.markdown_table(rows, cols))
  print("wrote", paths["json"], paths["md"])


if __name__ == "__main__":
  hostmem.reexec()
  app.run(main)
