"""Bai et al. 2018's TCN on permuted MNIST: the 784 pixels in one fixed random order
(`permutation_seed` 0, the same for train and eval), which breaks the locality a conv exploits.

As configs/sequence/tcn_seqmnist.py (model `tcn` 8 x 25, kernel 7; mnist8k 6,000 / 2,000; Adam
2e-3, clip 1, batch 64, 20 epochs, cosine) on `permuted_mnist`.
Command:
  python scripts/run.py --config=configs/sequence/tcn_pmnist.py --workdir=runs/tcn_pmnist
Smoke (2 steps, 64 eval digits): :smoke
Result: not yet run to completion (estimated 40-60 min on the 2-core CPU).
Published (Bai et al. 2018, Table 1, 60,000 training images): TCN 97.2 %, LSTM 85.7 %,
GRU 87.3 %.
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  smoke = config_lib.parse_arg(arg, ("smoke",)).get("smoke", False)
  c = config_lib.sequence_mnist_data(config_lib.base(), "permuted_mnist")
  c.model.name = "tcn"
  c.optimizer.update(name="adam", learning_rate=2e-3, schedule="cosine", grad_clip_norm=1.0)
  c.batch_size = 64
  c.eval_batch_size = 250
  c.num_epochs = 20
  c.log_every_steps = 31
  if smoke:
    config_lib.smoke(c)
    c.data.eval_split = "train[6000:6064]"
  return c
