"""U-Net (Ronneberger et al. 2015) with a transposed-conv decoder (`:decoder=resize`:
resize-then-conv, Odena et al. 2016), on digit canvases: per-pixel digit class or background.

Data: `cnnlab.train.config.digit_segmentation_data` (64x64 canvases of 1-3 mnist8k digits at
scales 0.75-1.25, overlapping, 11 classes: digits 0-9 and background 10; canvases of digits
0-5,999 train, of the never-seen digits 6,000-7,999 eval). Recipe:
`cnnlab.train.config.digit_segmentation` (Adam 1e-3, cosine, batch 32, 3 epochs). Metrics: pixel
accuracy, per-class IoU and mIoU over the 2,000 eval canvases (`cnnlab.train.steps`).
Command:
  python scripts/run.py --config=configs/dense/unet_digit_segmentation.py \
      --workdir=runs/dense/unet
Evaluate on canvases composed from another IDX folder:
  python scripts/evaluate.py --config=configs/dense/unet_digit_segmentation.py \
      --workdir=runs/dense/unet --config.data.manual_dir=DIR --config.data.eval_split=train
Smoke (2 steps, 64 eval canvases): :smoke
Result: see docs/video_dense.md (the segmentation table).
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  return config_lib.digit_segmentation("unet", arg)
