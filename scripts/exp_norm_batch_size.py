"""BN vs GN vs LN vs IN against batch size (``cnnlab.experiments.norm_batch_size``). Reads the
finished training sweep (it does not train):

  python scripts/sweep.py --config=configs/experiments/norm_batch_size.py \
      --workdir=runs/norm_batch_size --parallel=2
  python scripts/exp_norm_batch_size.py --sweep_workdir=runs/norm_batch_size \
      --workdir=runs/norm_batch_size

Writes ``norm_batch_size.{md,json,png}`` into ``--workdir`` and prints the table.
"""

from absl import app, flags

from cnnlab.experiments import norm_batch_size

flags.DEFINE_string("sweep_workdir", "runs/norm_batch_size", "Workdir of the training sweep.")
flags.DEFINE_string("workdir", "runs/norm_batch_size", "Where the outputs go.")
flags.DEFINE_string("title", "small_cnn on mnist8k, 2 epochs: eval error vs batch size",
                    "Figure title.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  norm_batch_size.run(FLAGS.sweep_workdir, FLAGS.workdir, title=FLAGS.title)
  print(f"wrote {FLAGS.workdir}/norm_batch_size.{{md,json,png}}")


if __name__ == "__main__":
  app.run(main)
