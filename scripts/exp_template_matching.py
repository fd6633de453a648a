"""Template matching by NCC with every conv impl (``cnnlab.experiments.template_matching``).

  python scripts/exp_template_matching.py --config=configs/analysis/template_matching.py \
      --workdir=runs/template_matching

Writes ``template_matching.{md,json,png}`` into ``--workdir`` and prints the table.
"""

from absl import app, flags
from ml_collections import config_flags

from cnnlab.experiments import template_matching

_CONFIG = config_flags.DEFINE_config_file("config", "configs/analysis/template_matching.py",
                                          "Analysis config.")
flags.DEFINE_string("workdir", "runs/template_matching", "Output directory.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  result = template_matching.run(_CONFIG.value, FLAGS.workdir)
  print(result["markdown"])
  print("wrote", FLAGS.workdir, result["png"])


if __name__ == "__main__":
  app.run(main)
