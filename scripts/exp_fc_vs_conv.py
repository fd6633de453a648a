"""Conv vs fully connected parameter counts on real layer shapes (``experiments.fc_vs_conv``).

  python scripts/exp_fc_vs_conv.py --config=configs/analysis/fc_vs_conv.py --workdir=runs/fc_vs_conv

Writes ``fc_vs_conv.{md,json,png}`` into ``--workdir`` and prints the tables.
"""

from absl import app, flags
from ml_collections import config_flags

from cnnlab.experiments import fc_vs_conv

_CONFIG = config_flags.DEFINE_config_file("config", "configs/analysis/fc_vs_conv.py",
                                          "Analysis config.")
flags.DEFINE_string("workdir", "runs/fc_vs_conv", "Output directory.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  result = fc_vs_conv.run(_CONFIG.value, FLAGS.workdir)
  print(result["markdown"])
  print("wrote", FLAGS.workdir, result["png"])


if __name__ == "__main__":
  app.run(main)
