"""Training-step throughput, cnnlab (jit) vs the same network in PyTorch eager (CPU), same run;
plus the compile time of every registered model's forward at its default input size.

  python scripts/bench_train.py --workdir=runs/bench_train
  python scripts/bench_train.py --cases=lenet5 --impls=lax,shift,im2col --compile_times=false
  python scripts/bench_train.py --cases=resnet18_cifar --impls=lax --xla_cpu_options=no_ynn_conv

Writes bench_train.{json,md,png} (and compile_times.{json,md}) to --workdir and prints the
tables with each cnnlab row's ratio to torch (> 1: cnnlab is faster); the JSON's
``compiler_options`` are the XLA options the cnnlab steps were compiled with (``--xla_cpu_options``,
``cnnlab.train.backend``; {} = XLA's defaults).
"""

import os

import torch
from absl import app, flags

from cnnlab import plotting
from cnnlab.bench import compile_times, report, torch_models, train_throughput
from cnnlab.train import backend

# name -> (cnnlab model + options, input HWC, batch, torch factory, torch channels_last)
CASES = {
    "lenet5": (dict(model_name="lenet5"), (32, 32, 1), 128, torch_models.LeNet5, False),
    "resnet18_cifar": (dict(model_name="resnet18", small_stem=True), (32, 32, 3), 64,
                       lambda: torch_models.TorchResNet("basic", (2, 2, 2, 2), num_classes=10,
                                                        small_stem=True), True),
}

flags.DEFINE_string("workdir", "runs/bench_train", "Output directory.")
flags.DEFINE_list("cases", list(CASES), f"Networks to time, from {list(CASES)}.")
flags.DEFINE_list("impls", ["lax", "shift", "im2col"], "cnnlab conv impls to time.")
flags.DEFINE_integer("steps", 20, "Steps per timed window.")
flags.DEFINE_integer("repeats", 3, "Timed windows (median reported).")
flags.DEFINE_bool("compile_times", True, "Also time compiling every registered model.")
flags.DEFINE_string("xla_cpu_options", "", "XLA CPU compiler options for the cnnlab steps, as "
                    "config.xla_cpu_options ('', a preset such as no_ynn_conv, 'name=value ...').")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  torch.set_num_threads(os.cpu_count())
  cfg = {"xla_cpu_options": FLAGS.xla_cpu_options}
  backend.check(cfg)
  options = backend.compiler_options(cfg)
  rows = []
  for case in FLAGS.cases:
    kw, hwc, batch, torch_factory, channels_last = CASES[case]
    common = dict(batch_size=batch, steps=FLAGS.steps, repeats=FLAGS.repeats)
    ref = train_throughput.torch_throughput(torch_factory(), (hwc[2], hwc[0], hwc[1]),
                                            channels_last=channels_last, **common)
    rows.append({"case": case, "framework": "torch eager", "impl": "-", "batch": batch, **ref,
                 "ratio_to_torch": 1.0})
    for impl in FLAGS.impls:
      try:
        r = train_throughput.cnnlab_throughput(conv_impl=impl, input_shape=hwc,
                                               compiler_options=options, **kw, **common)
      except ValueError as e:  # an impl that cannot serve one of the network's convs
        print(f"{case}/{impl}: skipped: {e}")
        continue
      rows.append({"case": case, "framework": "cnnlab jit", "impl": impl, "batch": batch, **r,
                   "ratio_to_torch": r["img_per_s"] / ref["img_per_s"]})
      print(rows[-1])
  cols = ["case", "framework", "impl", "batch", "img_per_s", "ratio_to_torch", "compile_s"]
  paths = report.write(FLAGS.workdir, "bench_train", rows, cols,
                       extra={"steps": FLAGS.steps, "compiler_options": options or {}})
  plotting.bar_chart([f"{r['case']}\n{r['framework']}\n{r['impl']}" for r in rows],
                     [r["ratio_to_torch"] for r in rows], "train throughput / torch eager's",
                     os.path.join(FLAGS.workdir, "bench_train.png"), fmt="%.2f", hline=1.0)
  print(report.markdown_table(rows, cols))
  print("wrote", paths["json"], paths["md"])
  if FLAGS.compile_times:
    ct = compile_times.all_models()
    report.write(FLAGS.workdir, "compile_times", ct, list(ct[0]))
    print(report.markdown_table(ct, list(ct[0])))


if __name__ == "__main__":
  app.run(main)
