"""U-Net (Ronneberger et al. 2015) with a transposed-conv decoder (`:decoder=resize`:
resize-then-conv, Odena et al. 2016), on digit canvases: per-pixel digit class or background.

Data, recipe (10 epochs) and metrics: `cnnlab.train.config.digit_segmentation` and
docs/video_dense.md, "Segmentation".
Command:
  python scripts/run.py --config=configs/dense/unet_digit_segmentation.py \
      --workdir=runs/dense/unet
Evaluate on canvases composed from another IDX folder:
  python scripts/evaluate.py --config=configs/dense/unet_digit_segmentation.py \
      --workdir=runs/dense/unet --config.data.manual_dir=DIR --config.data.eval_split=train
Smoke (2 steps, 64 eval canvases): :smoke
Result (2026-12-05, 10 epochs, 20 min on the shared 2-core CPU): mIoU 19.1 %, pixel accuracy
  94.9 % (`:decoder=resize`: 22.3 %, 95.2 %, 26 min): digits outlined, two to five of ten named;
  the table: docs/video_dense.md, "Segmentation".
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  return config_lib.digit_segmentation("unet", arg)
