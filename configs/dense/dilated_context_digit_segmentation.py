"""Yu & Koltun 2015: a front-end without the last downsamplings + the dilated context module
(1,1,2,4,8,16,1; identity init), on digit canvases: per-pixel digit class or background.

Data, recipe (10 epochs) and metrics: `cnnlab.train.config.digit_segmentation` and
docs/video_dense.md, "Segmentation".
Command:
  python scripts/run.py --config=configs/dense/dilated_context_digit_segmentation.py \
      --workdir=runs/dense/dilated_context
Evaluate on canvases composed from another IDX folder:
  python scripts/evaluate.py --config=configs/dense/dilated_context_digit_segmentation.py \
      --workdir=runs/dense/dilated_context --config.data.manual_dir=DIR \
      --config.data.eval_split=train
Smoke (2 steps, 64 eval canvases): :smoke
Result (2026-12-05, 10 epochs, 53 min on the shared 2-core CPU): mIoU 13.2 %, pixel
  accuracy 93.9 % (only digit 0 named; still rising); the table: docs/video_dense.md,
  "Segmentation".
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  return config_lib.digit_segmentation("dilated_context", arg)
