"""Per-layer summary of a registered model: output shapes, parameters, MACs, receptive fields.

  python scripts/summarize_model.py --model=resnet50 [--input-size=224] [--depth=1]

Prints a Markdown table (abstract evaluation only: no weights are allocated, nothing runs).
"""

from absl import app, flags

from cnnlab.models import get_spec
from cnnlab.models.summary import summarize

flags.DEFINE_string("model", None, "Registered model name.", required=True)
flags.DEFINE_integer("input_size", None, "Square input side H (= W); default: the registered "
                     "input shape.")
flags.DEFINE_alias("input-size", "input_size")
flags.DEFINE_integer("depth", None, "Show modules down to this depth (deeper ones folded in).",
                     lower_bound=0)
flags.DEFINE_integer("batch_size", 1, "Batch size of the summarised input.", lower_bound=1)
flags.DEFINE_bool("count_padding", True, "Count conv taps on zero padding (torchvision's way).")
FLAGS = flags.FLAGS


@flags.multi_flags_validator(["model", "input_size"])
def _check(values):
  """A registered model (the error names them); ``--input_size`` >= 1, for a 2D model."""
  try:
    shape = get_spec(values["model"]).input_shape
  except ValueError as e:
    raise flags.ValidationError(str(e)) from None
  size = values["input_size"]
  if size is not None and (size < 1 or len(shape) != 3):
    raise flags.ValidationError(f"--input_size={size} must be >= 1 and needs a 2D (H, W, C) "
                                f"model; {values['model']} takes {shape}")
  return True


def main(argv):
  del argv
  spec = get_spec(FLAGS.model)
  shape = spec.input_shape
  if FLAGS.input_size is not None:
    shape = (FLAGS.input_size, FLAGS.input_size, shape[-1])
  s = summarize(FLAGS.model, shape, batch_size=FLAGS.batch_size,
                count_padding=FLAGS.count_padding)
  print(s.to_markdown(depth=FLAGS.depth))
  if spec.num_params is not None:
    print(f"Reference parameter count: {spec.num_params:,} ({spec.paper})")


if __name__ == "__main__":
  app.run(main)
