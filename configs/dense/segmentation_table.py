"""The segmentation table: FCN-8s vs U-Net (transposed-conv vs resize-conv decoder) vs the dilated
context network on digit canvases (configs/dense/*_digit_segmentation.py's recipe).
Command (the sweep, then the table: mIoU, pixel accuracy, parameters, MACs, wall time):
  python scripts/sweep.py --config=configs/dense/segmentation_table.py \
      --workdir=runs/dense/table --parallel=2
  python scripts/run.py --config=configs/dense/segmentation_table.py:analysis \
      --workdir=runs/dense/table/analysis
Result: the table in docs/video_dense.md.
"""

from cnnlab import sweep
from cnnlab.train import config as config_lib

SWEEP_WORKDIR = "runs/dense/table"
POINTS = ("model=unet", "model=unet,decoder=resize", "model=fcn8s", "model=dilated_context")


def get_config(arg=None):
  """One model (``:model=NAME[,decoder=resize]``); ``:analysis``: the table of the sweep."""
  args = config_lib.parse_arg(arg, ("smoke", "analysis"),
                              {"model": tuple(config_lib.DENSE_MODELS),
                               "decoder": ("transpose", "resize")})
  if args.get("analysis"):
    return config_lib.analysis("segmentation_table", sweep_workdir=SWEEP_WORKDIR)
  rest = [f"decoder={args['decoder']}"] if "decoder" in args else []
  return config_lib.digit_segmentation(args.get("model", "unet"),
                                       ",".join(rest + (["smoke"] if args.get("smoke") else [])))


def get_sweep(arg=None):
  del arg
  return sweep.args(list(POINTS))
