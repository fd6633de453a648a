"""MLP vs 1D CNN on MNIST-1D, permuted or not (``cnnlab.experiments.permutation``). Reads the
finished training sweep (it does not train):

  python scripts/sweep.py --config=configs/experiments/permutation_mnist1d.py \
      --workdir=runs/permutation_mnist1d --parallel=2
  python scripts/exp_permutation.py --sweep_workdir=runs/permutation_mnist1d \
      --workdir=runs/permutation_mnist1d

Writes ``permutation.{md,json,png}`` into ``--workdir`` and prints the table.
"""

from absl import app, flags

from cnnlab.experiments import permutation

flags.DEFINE_string("sweep_workdir", "runs/permutation_mnist1d", "Workdir of the training sweep.")
flags.DEFINE_string("workdir", "runs/permutation_mnist1d", "Where the outputs go.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  permutation.run(FLAGS.sweep_workdir, FLAGS.workdir)
  print(f"wrote {FLAGS.workdir}/permutation.{{md,json,png}}")


if __name__ == "__main__":
  app.run(main)
