"""Bai et al. 2018's TCN on sequential MNIST: the 784 pixels of each digit one per step.

Model `tcn`: 8 levels x 25 channels, kernel 7, dropout 0.05, weight norm (66,910 parameters;
receptive field 1 + 2*6*255 = 3,061 >= 784), classified from the last step. Data: mnist8k
(shared/data/mnist8k: images 0-5,999 train, 6,000-7,999 eval) as `sequential_mnist`, MNIST
mean/std. Adam 2e-3 (Bai et al.'s), gradient norm clipped at 1, batch 64, 20 epochs (93 steps
each), cosine decay.
Command:
  python scripts/run.py --config=configs/sequence/tcn_seqmnist.py --workdir=runs/tcn_seqmnist
Evaluate on another IDX folder (images-idx3-ubyte.gz, labels-idx1-ubyte.gz):
  python scripts/evaluate.py --config=configs/sequence/tcn_seqmnist.py \
      --workdir=runs/tcn_seqmnist --config.data.manual_dir=DIR --config.data.eval_split=train
Smoke (2 steps, 64 eval digits): :smoke
Result (2026-12-04 to 06, full recipe): docs/sequence.md, "The Bai et al. table (full
  recipes)"; a run of 3 epochs: "Short runs of the Bai et al. tasks".
Published (Bai et al. 2018, Table 1, 60,000 training images): TCN 99.0 %, LSTM 87.2 %,
GRU 96.2 %.
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  smoke = config_lib.parse_arg(arg, ("smoke",)).get("smoke", False)
  c = config_lib.sequence_mnist_data(config_lib.base(), "sequential_mnist")
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
