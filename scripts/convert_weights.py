"""torchvision weights -> an Orbax checkpoint of cnnlab variables (docs/transfer.md).

  python scripts/convert_weights.py --model=resnet18 --torch_weights=resnet18-f37072fd.pth \
      --workdir=runs/weights/resnet18
  networked machine: --download (fetches torchvision's official file into --workdir first)

Writes ``<workdir>/variables`` (``orbax.checkpoint.StandardCheckpointer``: ``{'params',
'batch_stats'}``) and ``<workdir>/weights.json`` (model, source file, sha256, num_classes and the
weight set's preprocessing). ``.pth`` files are read with ``torch.load(weights_only=True)``,
``.safetensors`` with the optional ``safetensors`` package; never pickle.
"""

import json
import os
import pathlib

import jax
import orbax.checkpoint as ocp
from absl import app, flags

from cnnlab import transfer

flags.DEFINE_string("model", None, "Registered model name (a torchvision one).", required=True)
flags.DEFINE_string("torch_weights", None, "A .pth state_dict or .safetensors file.")
flags.DEFINE_string("workdir", None, "Output directory (must not hold a checkpoint).",
                    required=True)
flags.DEFINE_bool("download", False, "Fetch the official torchvision file into --workdir.")
flags.DEFINE_string("url", None, "With --download: this URL instead of the official one.")
flags.DEFINE_integer("num_classes", None, "Classes of the new head (default: the file's).")
flags.DEFINE_bool("skip_head", False, "Initialise the head fresh instead of converting it.")
FLAGS = flags.FLAGS
flags.register_validator("model", lambda m: m in transfer.TORCHVISION_MODELS,
                         message=f"is not a model with torchvision weights; allowed: "
                         f"{list(transfer.TORCHVISION_MODELS)}")


def load_state_dict(path: pathlib.Path) -> dict:
  if path.suffix == ".safetensors":
    try:
      from safetensors.numpy import load_file
    except ImportError:
      raise SystemExit(f"--torch_weights={path}: reading .safetensors needs the 'safetensors' "
                       "package, which is not installed (pip install safetensors)") from None
    return load_file(str(path))
  import torch  # a script may import torch; the library does not
  try:
    sd = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # torch raises several kinds for a file that is not a checkpoint
    raise SystemExit(f"--torch_weights={path}: not a torch file that loads with "
                     f"weights_only=True ({type(e).__name__}: {e})") from None
  if not isinstance(sd, dict):
    raise SystemExit(f"--torch_weights={path}: expected a state_dict (a dict), got {type(sd)}")
  return sd


def main(argv):
  del argv
  workdir = pathlib.Path(FLAGS.workdir).resolve()
  target = workdir / "variables"
  if target.exists():
    raise SystemExit(f"--workdir={workdir} already holds {target}; choose another workdir")
  if FLAGS.download:
    try:
      url = FLAGS.url or transfer.weight_set(FLAGS.model).url
    except ValueError as e:
      raise SystemExit(f"--model={FLAGS.model}: {e}; give --url or --torch_weights") from None
    src = transfer.download(url, workdir)
  elif FLAGS.torch_weights:
    src = pathlib.Path(FLAGS.torch_weights)
    if not src.is_file():
      raise SystemExit(f"--torch_weights={src}: no such file")
  else:
    raise SystemExit("pass --torch_weights=FILE or --download")

  try:
    variables = transfer.from_torchvision(FLAGS.model, load_state_dict(src), FLAGS.num_classes,
                                          skip_head=FLAGS.skip_head)
  except ValueError as e:  # keys or shapes that do not fit --model, or --num_classes
    raise SystemExit(f"{src} does not convert to --model={FLAGS.model}: {e}") from None
  os.makedirs(workdir, exist_ok=True)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(target, variables)
  params = variables["params"]
  record = dict(model=FLAGS.model, source=str(src.resolve()), sha256=transfer.sha256_of(src),
                num_classes=FLAGS.num_classes, skip_head=FLAGS.skip_head,
                num_params=sum(int(x.size) for x in jax.tree.leaves(params)),
                preprocessing=transfer.preprocessing(FLAGS.model))
  (workdir / "weights.json").write_text(json.dumps(record, indent=2) + "\n")
  print(f"wrote {target} and {workdir / 'weights.json'}")


if __name__ == "__main__":
  app.run(main)
