"""LeNet-5's C1 filters and one digit's feature maps (docs/experiments/lenet_features.md):

  python scripts/exp_lenet_features.py --config=configs/analysis/lenet_features.py \
      --workdir=runs/lenet_features

Writes lenet_filters.png, lenet_feature_maps.png and lenet_features.{json,md} into --workdir.
"""

from absl import app, flags
from ml_collections import config_flags

from cnnlab.experiments import lenet_features

config_flags.DEFINE_config_file("config", "configs/analysis/lenet_features.py",
                                "Analysis config, path[:arg].")
flags.DEFINE_string("workdir", "runs/lenet_features", "Where the outputs go.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  out = lenet_features.run(FLAGS.config, FLAGS.workdir)
  print(f"eval accuracy {out['eval_accuracy']}; digit {out['digit_index']}: label {out['label']}, "
        f"predicted {out['predicted']}; wrote {FLAGS.workdir}")


if __name__ == "__main__":
  app.run(main)
