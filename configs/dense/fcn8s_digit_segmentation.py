"""FCN-8s (Long et al. 2015): skip fusion of pool3/pool4/top scores, transposed-conv upsampling
initialised to bilinear, on digit canvases: per-pixel digit class or background.

Data, recipe (10 epochs) and metrics: `cnnlab.train.config.digit_segmentation` and
docs/video_dense.md, "Segmentation".
Command:
  python scripts/run.py --config=configs/dense/fcn8s_digit_segmentation.py \
      --workdir=runs/dense/fcn8s
Evaluate on canvases composed from another IDX folder:
  python scripts/evaluate.py --config=configs/dense/fcn8s_digit_segmentation.py \
      --workdir=runs/dense/fcn8s --config.data.manual_dir=DIR --config.data.eval_split=train
Smoke (2 steps, 64 eval canvases): :smoke
Result (2026-12-05, 10 epochs, 39 min on the shared 2-core CPU): mIoU 38.1 %, pixel accuracy
  94.9 %, every digit named (IoU 0.24-0.41); with --config.num_epochs=15: mIoU 43.6 %, pixel
  accuracy 95.5 %; the table: docs/video_dense.md, "Segmentation".
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  return config_lib.digit_segmentation("fcn8s", arg)
