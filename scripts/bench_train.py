"""Training-step throughput, cnnlab (jit) vs the same network in PyTorch, eager and (where it
compiles) ``torch.compile``, same run; plus the compile time of every registered model's forward
at its default input size.

  python scripts/bench_train.py --workdir=runs/bench_train
  python scripts/bench_train.py --cases=lenet5 --impls=lax,shift,im2col --compile_times=false
  python scripts/bench_train.py --cases=resnet18_cifar --impls=lax --xla_cpu_options=''
  python scripts/bench_train.py --cases=mobilenet_v2,shufflenet_v2 --impls=lax,auto,depthwise
  python scripts/bench_train.py --cases=resnet18_cifar,mobilenet_v2 --impls=lax --profile_steps=3 \
      --compile_times=false --torch_compile=false
GPU mode (bfloat16, batches that fill an H100, the device's peak as the reference; torch here is
a CPU build, docs/performance.md, "GPU bench mode"):
  python scripts/bench_train.py --workdir=runs/bench_train_gpu --cases=resnet50 --batch_size=256 \
      --dtype=bfloat16 --impls=lax --torch=false

Writes bench_train.{json,md,png} (and compile_times.{json,md}) to --workdir and prints the
tables: one row per framework / impl, all of a case timed in --repeats rounds of one
--steps window each, in an order rotated every round; its img/s (median window) and ``spread``
((fastest - slowest window) / median), its ratio to torch eager (> 1: faster than torch eager;
the median of the per-round ratios) and ``ratio_spread`` (theirs), and a summary per case:
cnnlab's default impl (the training configs' ``model.conv_impl``, always timed), cnnlab's best
of the timed impls, torch eager, torch.compile (or 'not compiled: REASON') and the ratios
between them. Compile times are columns of their own, never in the throughput. The
JSON's ``compiler_options`` are the XLA options the cnnlab steps were compiled with
(``--xla_cpu_options``, ``cnnlab.train.backend``; {} = XLA's defaults). ``--profile_steps``
adds, per case and cnnlab impl, where its step spends its time (``profiles`` in the JSON, keyed
``case/impl``, tables in the Markdown). Every row has ``mfu``: model FLOPs utilisation, img/s x
the analytic train FLOPs per image (``train_throughput.train_flops_per_example``) / the
device's peak (``cnnlab.bench.peak``: a GPU's table value for ``--dtype``, else a measured
float32 matmul).
"""

import os

import torch
from absl import app, flags

from cnnlab import hostmem, ops, plotting
from cnnlab.bench import compile_times, peak, report, step_profile, torch_models
from cnnlab.bench import train_throughput
from cnnlab.train import backend, config as config_lib
from cnnlab.train.config import VIDEO_MODELS

# name -> (cnnlab model + options, one example's shape (channels last), batch, torch factory,
# torch channels_last). The depthwise-heavy nets (and C3D) run at small inputs with small
# batches: a CPU train step of these at 224x224 takes seconds, and 64x64 (spatial 2x2 after their
# stride 32) still runs every layer; batch 32 keeps the depthwise convs' batch dimension real.
# C3D: the widths and 16x64x64 grey clips of the video configs (cnnlab.train.config), batch 8.
CASES = {
    "lenet5": (dict(model_name="lenet5"), (32, 32, 1), 128, torch_models.LeNet5, False),
    "resnet18_cifar": (dict(model_name="resnet18", small_stem=True), (32, 32, 3), 64,
                       lambda: torch_models.TorchResNet("basic", (2, 2, 2, 2), num_classes=10,
                                                        small_stem=True), True),
    "mobilenet_v2": (dict(model_name="mobilenet_v2"), (64, 64, 3), 32,
                     lambda: torch_models.MobileNetV2(num_classes=10), True),
    "efficientnet_b0": (dict(model_name="efficientnet_b0"), (64, 64, 3), 32,
                        lambda: torch_models.EfficientNetB0(num_classes=10), True),
    "shufflenet_v2": (dict(model_name="shufflenet_v2_x1_0"), (64, 64, 3), 32,
                      lambda: torch_models.ShuffleNetV2(num_classes=10), True),
    "c3d": (dict(model_name="c3d", **VIDEO_MODELS["c3d"]), (16, 64, 64, 1), 8,
            lambda: torch_models.C3D(VIDEO_MODELS["c3d"]["widths"]), True),
    # The GPU mode's network (not in the default --cases: ~10 s per step on this CPU).
    "resnet50": (dict(model_name="resnet50"), (224, 224, 3), 32,
                 lambda: torch_models.TorchResNet("bottleneck", (3, 4, 6, 3), num_classes=10),
                 True),
}

flags.DEFINE_string("workdir", "runs/bench_train", "Output directory.")
flags.DEFINE_list("cases", [c for c in CASES if c != "resnet50"],
                  f"Networks to time, from {list(CASES)}.")
flags.DEFINE_list("impls", ["lax", "im2col"], "cnnlab conv impls to time (the training configs' "
                  "model.conv_impl, auto, is always timed too).")
flags.DEFINE_integer("steps", 20, "Steps per timed window.", lower_bound=1)
flags.DEFINE_integer("repeats", 3, "Timed rounds of one window per row (median reported).",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", 0, "Batch of every case (0: each case's own).",
                     lower_bound=0)
flags.DEFINE_integer("input_size", 0, "Height = width of every case's input (0: each case's own).",
                     lower_bound=0)
flags.DEFINE_bool("torch_compile", True, "Also time torch.compile(model).")
flags.DEFINE_bool("torch", True, "Time PyTorch at all (its CPU build here). --torch=false on a "
                  "GPU, where the reference is the device's peak (the mfu column).")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype of both "
                  "frameworks (parameters and Adam stay float32).")
flags.DEFINE_bool("compile_times", True, "Also time compiling every registered model.")
flags.DEFINE_integer("profile_steps", 0, "Also trace this many steps of every timed cnnlab impl "
                     "and split their time by kind and pass (cnnlab.bench.step_profile).",
                     lower_bound=0)
flags.DEFINE_string("xla_cpu_options", config_lib.DEFAULT_XLA_CPU_OPTIONS,
                    "XLA CPU compiler options for the cnnlab steps, as config.xla_cpu_options "
                    "('': XLA's defaults, a preset, 'name=value ...').")
FLAGS = flags.FLAGS
flags.register_validator("xla_cpu_options", backend.validate_flag)
flags.register_validator("cases", lambda v: set(v) <= CASES.keys(),
                         message=f"names networks not among {list(CASES)}")
flags.register_validator("impls", lambda v: set(v) <= set(ops.list_impls()),
                         message=f"names conv impls not among {list(ops.list_impls())}")


def time_case(case: str, options, peak_tflops: float) -> list[dict]:
  """Rows for one case: torch eager, torch.compile (or why not), cnnlab's default impl and every
  ``--impls`` one (an impl that cannot serve one of the network's convs is skipped), all timed
  in the same rotated rounds (``train_throughput.paired_windows``); ``ratio_to_torch`` /
  ``ratio_to_compiled``: the median per-round ratio of img/s, ``ratio_spread`` the spread of the
  first; ``mfu``: img/s x the analytic train FLOPs per image / ``peak_tflops``."""
  kw, shape, batch, torch_factory, channels_last = CASES[case]
  batch = FLAGS.batch_size or batch
  if FLAGS.input_size:
    shape = (*shape[:-3], FLAGS.input_size, FLAGS.input_size, shape[-1])
  torch_shape = (shape[-1], *shape[:-1])
  torch_kw = dict(batch_size=batch, channels_last=channels_last, dtype=FLAGS.dtype)
  steps = {}  # (framework, impl) -> train_throughput.Steps
  if FLAGS.torch:
    steps["torch eager", "-"] = train_throughput.torch_steps(torch_factory(), torch_shape,
                                                             **torch_kw)
    if FLAGS.torch_compile:
      steps["torch.compile", "-"] = train_throughput.torch_compiled_steps(
          torch_factory(), torch_shape, **torch_kw)
  default = config_lib.base().model.conv_impl  # what the training configs use
  for impl in dict.fromkeys([default, *FLAGS.impls]):
    try:
      steps["cnnlab jit", impl] = train_throughput.cnnlab_steps(
          conv_impl=impl, batch_size=batch, input_shape=shape, compiler_options=options,
          dtype=FLAGS.dtype, **kw)
    except ValueError as e:  # an impl that cannot serve one of the network's convs
      print(f"{case}/{impl}: skipped: {e}")
  timed = train_throughput.paired_windows({k: s.run for k, s in steps.items() if s.run},
                                          steps=FLAGS.steps, repeats=FLAGS.repeats,
                                          batch_size=batch)
  flops = train_throughput.train_flops_per_example(input_shape=shape, **kw)

  def ratio(key, ref):
    return (report.ratio_per_round(timed[key]["rates"], timed[ref]["rates"])
            if key in timed and ref in timed else (None, None))

  base = {"case": case, "batch": batch, "input": "x".join(map(str, shape))}
  rows = [] if FLAGS.torch else [{**base, "framework": "torch eager", "impl": "not run",
                                  "img_per_s": None}]
  for (framework, impl), s in steps.items():
    t = timed.get((framework, impl), {"img_per_s": None, "spread": None})
    vs_eager, spread = ratio((framework, impl), ("torch eager", "-"))
    rows.append({**base, "framework": framework, "impl": impl if s.run else s.status,
                 "img_per_s": t["img_per_s"], "spread": t["spread"],
                 "ratio_to_torch": vs_eager, "ratio_spread": spread,
                 "ratio_to_compiled": ratio((framework, impl), ("torch.compile", "-"))[0],
                 "compile_s": s.compile_s})
    if framework == "cnnlab jit":
      rows[-1]["default"] = impl == default
      if FLAGS.profile_steps:
        rows[-1]["profile"] = s.profile(FLAGS.profile_steps)
  for r in rows:
    r["mfu"] = r["img_per_s"] and r["img_per_s"] * flops / (peak_tflops * 1e12)
  return rows


def summary(case_rows: list[dict]) -> dict:
  """One case's row: cnnlab's default and best impl (by ratio to torch eager where torch ran,
  else by img/s), torch eager and compiled, their ratios (per-round medians, as the rows')."""
  by = {r["framework"]: r for r in case_rows if r["framework"] != "cnnlab jit"}
  ours = [r for r in case_rows if r["framework"] == "cnnlab jit"]
  default = next(r for r in ours if r["default"])
  best = max(ours, key=lambda r: (r["ratio_to_torch"] or 0, r["img_per_s"]))
  tc = by.get("torch.compile", {"impl": "not run", "img_per_s": None, "compile_s": None})
  return {"case": default["case"], "batch": default["batch"], "input": default["input"],
          "default_impl": default["impl"], "default_img_per_s": default["img_per_s"],
          "best_impl": best["impl"], "best_img_per_s": best["img_per_s"],
          "torch_eager_img_per_s": by["torch eager"]["img_per_s"],
          "torch_compile": "compiled" if tc["img_per_s"] else tc["impl"],
          "torch_compile_img_per_s": tc["img_per_s"],
          "default_to_eager": default["ratio_to_torch"], "best_to_eager": best["ratio_to_torch"],
          "best_to_compiled": best["ratio_to_compiled"],
          "best_compile_s": best["compile_s"], "torch_compile_s": tc["compile_s"],
          "default_mfu": default["mfu"], "best_mfu": best["mfu"]}


def main(argv):
  del argv
  torch.set_num_threads(os.cpu_count())
  options = backend.compiler_options({"xla_cpu_options": FLAGS.xla_cpu_options})
  peak_tflops, peak_source = peak.peak_tflops(FLAGS.dtype)
  print(f"peak: {peak_tflops:.3g} TFLOP/s ({peak_source})")
  rows, summaries, profiles = [], [], {}
  for case in FLAGS.cases:
    case_rows = time_case(case, options, peak_tflops)
    for r in case_rows:
      if "profile" in r:
        profiles[f"{case}/{r['impl']}"] = r.pop("profile")
      print(r)
    rows += case_rows
    summaries.append(summary(case_rows))
  cols = ["case", "framework", "impl", "default", "batch", "input", "img_per_s", "spread",
          "ratio_to_torch", "ratio_spread", "ratio_to_compiled", "mfu", "compile_s"]
  tables = (report.markdown_table(summaries, list(summaries[0])) + "\n\n"
            + report.markdown_table(rows, cols)
            + "".join(f"\n\nProfile of {key}, " + step_profile.table(p)
                      for key, p in profiles.items()))
  paths = report.write(FLAGS.workdir, "bench_train", rows, cols, markdown=tables,
                       extra={"steps": FLAGS.steps, "compiler_options": options or {},
                              "dtype": FLAGS.dtype, "peak_tflops": peak_tflops,
                              "peak_source": peak_source, "summary": summaries,
                              "profiles": profiles})
  timed = [r for r in rows if r["img_per_s"]]
  key, label = (("ratio_to_torch", "train throughput / torch eager's") if FLAGS.torch
                else ("mfu", "model FLOPs utilisation"))
  plotting.bar_chart([f"{r['case']}\n{r['framework']}\n{r['impl']}" for r in timed],
                     [r[key] for r in timed], label,
                     os.path.join(FLAGS.workdir, "bench_train.png"), fmt="%.2f",
                     hline=1.0 if FLAGS.torch else None)
  print(tables)
  print("wrote", paths["json"], paths["md"])
  if FLAGS.compile_times:
    ct = compile_times.all_models()
    report.write(FLAGS.workdir, "compile_times", ct, list(ct[0]))
    print(report.markdown_table(ct, list(ct[0])))


if __name__ == "__main__":
  hostmem.reexec()
  app.run(main)
