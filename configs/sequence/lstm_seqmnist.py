"""The recurrent baselines of Bai et al. 2018 on sequential MNIST: an LSTM (`:gru`: a GRU) with
the TCN's parameter budget (LSTM hidden 127: 66,812 parameters; GRU 146: 66,440; TCN 66,910),
`:permuted` on permuted MNIST.

As configs/sequence/tcn_seqmnist.py (mnist8k 6,000 / 2,000, batch 64, 20 epochs, gradient norm
clipped at 1, cosine) with Adam 1e-3.
Command:
  python scripts/run.py --config=configs/sequence/lstm_seqmnist.py --workdir=runs/lstm_seqmnist
  python scripts/run.py --config=configs/sequence/lstm_seqmnist.py:gru --workdir=runs/gru_seqmnist
  python scripts/run.py --config=configs/sequence/lstm_seqmnist.py:gru,permuted \
      --workdir=runs/gru_pmnist
Smoke (2 steps, 64 eval digits): :smoke
Result (2026-12-05, full recipe, both nets, both tasks): docs/sequence.md, "The Bai et al.
  table (full recipes)"; runs of 3 epochs: "Short runs of the Bai et al. tasks".
Published (Bai et al. 2018, Table 1, 60,000 training images): seq. MNIST LSTM 87.2 %,
GRU 96.2 % (TCN 99.0 %); permuted MNIST LSTM 85.7 %, GRU 87.3 % (TCN 97.2 %).
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  args = config_lib.parse_arg(arg, ("smoke", "gru", "permuted"))
  dataset = "permuted_mnist" if args.get("permuted") else "sequential_mnist"
  c = config_lib.sequence_mnist_data(config_lib.base(), dataset)
  c.model.name = "gru" if args.get("gru") else "lstm"
  c.optimizer.update(name="adam", learning_rate=1e-3, schedule="cosine", grad_clip_norm=1.0)
  c.batch_size = 64
  c.eval_batch_size = 250
  c.num_epochs = 20
  c.log_every_steps = 31
  if args.get("smoke"):
    config_lib.smoke(c)
    c.data.eval_split = "train[6000:6064]"
  return c
