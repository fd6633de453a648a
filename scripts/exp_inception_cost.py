"""Naive vs reduced Inception block cost figure (``cnnlab.experiments.inception_cost``).

  python scripts/exp_inception_cost.py --config=configs/analysis/inception_cost.py \
      --workdir=runs/inception_cost

Writes ``inception_cost.{md,json,png}`` into ``--workdir`` and prints the table. The Markdown
tables for both branch sizes are ``docs/inception_cost.md`` (``scripts/inception_cost.py``).
"""

from absl import app, flags
from ml_collections import config_flags

from cnnlab.experiments import inception_cost

_CONFIG = config_flags.DEFINE_config_file("config", "configs/analysis/inception_cost.py",
                                          "Analysis config.")
flags.DEFINE_string("workdir", "runs/inception_cost", "Output directory.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  result = inception_cost.run(_CONFIG.value, FLAGS.workdir)
  print(result["markdown"])
  print("wrote", FLAGS.workdir, result["png"])


if __name__ == "__main__":
  app.run(main)
