"""Checkerboard artefacts (Odena, Dumoulin & Olah 2016): the denoising autoencoder of
configs/dense/denoise_mnist8k.py with three decoders — transposed conv with kernel 3 (not
divisible by the stride 2: uneven overlap), transposed conv with kernel 4, nearest resize then
conv — measured by the fraction of each output's power at the period-2 frequencies (the
checkerboard's), at initialisation and after training (`cnnlab.experiments.checkerboard`).
Command (the three runs, then the figure and numbers):
  python scripts/sweep.py --config=configs/dense/checkerboard.py --workdir=runs/dense/checkerboard \
      --parallel=2 --metric=mse
  python scripts/run.py --config=configs/dense/checkerboard.py:analysis \
      --workdir=runs/dense/checkerboard/analysis
Result (2026-12-05): at init the transposed convs' outputs hold 2.3 % (kernel 3) and 20.4 %
(kernel 4) of their power at the period-2 frequencies, resize-conv 0.15 %; after 3 epochs all
are at 0.002 %: docs/video_dense.md ("Denoising and checkerboard artefacts").
"""

import pathlib

from cnnlab import sweep
from cnnlab.sweep import job
from cnnlab.train import config as config_lib

denoise = job.load_module(str(pathlib.Path(__file__).with_name("denoise_mnist8k.py")))

SWEEP_WORKDIR = "runs/dense/checkerboard"
POINTS = ("up_kernel=3", "up_kernel=4", "decoder=resize")


def get_config(arg=None):
  """``:analysis``: the measurement over the sweep's runs; otherwise the denoising config with
  the given ``:arg`` (``up_kernel=3``, ``decoder=resize``, ``smoke``)."""
  if arg == "analysis":
    c = config_lib.analysis("checkerboard", sweep_workdir=SWEEP_WORKDIR, num_images=256)
    c.noise_std = 0.5
    return c
  return denoise.get_config(arg)


def get_sweep(arg=None):
  del arg
  return sweep.args(list(POINTS))
