"""Conv benchmark: every cnnlab conv impl vs torch (oneDNN, CPU) on the same data, same run.

  python scripts/bench_conv.py --config=configs/bench/conv.py --workdir=runs/bench_conv \
      --doc=docs/conv_benchmark.md
  smoke: --config=configs/bench/conv.py:smoke
  with XLA's default CPU options instead of the configs' default (cnnlab.train.backend):
      --xla_cpu_options=''

Writes ``conv_bench.{json,md,png}`` and ``conv_benchmark.md`` (the "which conv is fastest"
summary) into ``--workdir`` after every shape, and merges the fwd+bwd times into the
``impl='auto'`` cache. What is measured: ``cnnlab.bench.conv``.
"""

import os

import torch
from absl import app, flags
from ml_collections import config_flags

from cnnlab import hostmem
from cnnlab.bench import conv, report
from cnnlab.train import backend, config as config_lib
from cnnlab.train.errors import ConfigError

_CONFIG = config_flags.DEFINE_config_file("config", "configs/bench/conv.py", "Shape list.")
flags.DEFINE_string("workdir", "runs/bench_conv", "Output directory.")
flags.DEFINE_string("doc", None, "Also write the summary Markdown here (docs/conv_benchmark.md).")
flags.DEFINE_string("cache", None, "impl='auto' cache to merge into (default: "
                    "$CNNLAB_CONV_CACHE or ~/.cache/cnnlab/conv_cache.json).")
flags.DEFINE_bool("update_cache", True, "Merge this run's fwd+bwd times into the auto cache.")
flags.DEFINE_string("xla_cpu_options", config_lib.DEFAULT_XLA_CPU_OPTIONS,
                    "XLA CPU compiler options for the cnnlab impls, as config.xla_cpu_options "
                    "('': XLA's defaults, a preset, 'name=value ...').")
FLAGS = flags.FLAGS
flags.register_validator("xla_cpu_options", backend.validate_flag)


def main(argv):
  del argv
  cfg = _CONFIG.value
  with cfg.unlocked():  # recorded in the JSON's config beside the options in force
    cfg.xla_cpu_options = FLAGS.xla_cpu_options
  try:
    conv.check_config(cfg)
  except ConfigError as e:
    raise SystemExit(f"error: {e}") from None
  torch.set_num_threads(os.cpu_count())
  os.makedirs(FLAGS.workdir, exist_ok=True)
  peak = conv.matmul_peak_gflops(cfg.matmul_size, cfg)
  print(f"jnp.matmul {cfg.matmul_size}^2 peak: {peak:.1f} GFLOP/s", flush=True)
  print(report.markdown_table([], conv.COLS), flush=True)
  rows, cache = [], {}
  for s in cfg.shapes:
    r, c = conv.bench_shape(dict(s), cfg, peak)
    rows += r
    cache.update(c)
    outs = conv.write_outputs(FLAGS.workdir, rows, cache, peak, cfg, doc_path=FLAGS.doc,
                              cache_path=FLAGS.cache, update_cache=FLAGS.update_cache)
  print(outs.pop("doc"))
  print("wrote", *outs.values())


if __name__ == "__main__":
  hostmem.reexec()
  app.run(main)
