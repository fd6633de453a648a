"""Shift invariance of trained small CNNs with and without pooling (docs/experiments/
shift_invariance.md). Reads the finished runs of the training sweep (it does not train):

  python scripts/sweep.py --config=configs/experiments/shift_invariance.py \
      --workdir=runs/shift_invariance --parallel=2
  python scripts/exp_shift_invariance.py --sweep_workdir=runs/shift_invariance \
      --workdir=runs/shift_invariance/analysis

Writes shift_invariance.{json,md,png} into --workdir.
"""

from absl import app, flags

from cnnlab.experiments import shift_invariance

flags.DEFINE_string("sweep_workdir", "runs/shift_invariance", "Workdir of the training sweep.")
flags.DEFINE_string("workdir", "runs/shift_invariance/analysis", "Where the outputs go.")
flags.DEFINE_integer("max_shift", 4, "Largest shift in pixels (each of right and down).")
flags.DEFINE_integer("limit", 0, "Use only the first N eval digits (0 = all 2,000).")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  shift_invariance.run(FLAGS.sweep_workdir, FLAGS.workdir, max_shift=FLAGS.max_shift,
                       limit=FLAGS.limit or None)
  print(f"wrote {FLAGS.workdir}/shift_invariance.{{json,md,png}}")


if __name__ == "__main__":
  app.run(main)
