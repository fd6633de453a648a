"""Bai et al. 2018's TCN on permuted MNIST: the 784 pixels in one fixed random order
(`permutation_seed` 0, the same for train and eval), which breaks the locality a conv exploits.

The recipe of configs/sequence/tcn_seqmnist.py, which this config loads (model `tcn` 8 x 25,
kernel 7; mnist8k 6,000 / 2,000; Adam 2e-3, clip 1, batch 64, 20 epochs, cosine) on
`permuted_mnist`.
Command:
  python scripts/run.py --config=configs/sequence/tcn_pmnist.py --workdir=runs/tcn_pmnist
Smoke (2 steps, 64 eval digits): :smoke
Result (2026-12-05, full recipe): docs/sequence.md, "The Bai et al. table (full recipes)"; a run
  of 3 epochs: "Short runs of the Bai et al. tasks".
Published (Bai et al. 2018, Table 1, 60,000 training images): TCN 97.2 %, LSTM 85.7 %,
GRU 87.3 %.
"""

import pathlib

from cnnlab.sweep import job

seqmnist = job.load_module(str(pathlib.Path(__file__).with_name("tcn_seqmnist.py")))


def get_config(arg=None):
  c = seqmnist.get_config(arg)
  c.data.name = "permuted_mnist"
  c.data.permutation_seed = 0
  return c
