"""Kim 2014's CNN-rand on MR sentence polarity, 10-fold cross-validation.

Model `kim_cnn` variant 'rand': random 300-d word embeddings (trained), filter widths 3/4/5 x 100
maps, ReLU, max over time, dropout 0.5, dense 2-way with each output unit's weights held to l2
norm <= 3 (`optimizer.max_norm`); Adadelta (lr 1.0, rho 0.95, eps 1e-6), batch 50: Kim's
settings, but 10 epochs (Kim: 25) to fit ten folds in the CPU budget. The convs run as im2col:
a train step's gradient took 0.16 s against 0.8 s with `lax` (C=300 channels, k=3-5, ~56 words;
A/B in one process on one core of this CPU, 2026-12-05). Data: shared/data/mr (4,798 sentences
per polarity; Kim's set has 5,331), fold `data.fold` of 10 (seeded, balanced) held out; the
vocabulary (16,917 words + padding/unknown for fold 0; `model.vocab_size` 20,000 covers every
fold) is built from the training folds only and stored as WORKDIR/vocab.json.
Command (one fold, then all ten and their mean +- std):
  python scripts/run.py --config=configs/sequence/kim_cnn_mr.py --workdir=runs/kim_cnn_mr/fold0
  python scripts/sweep.py --config=configs/sequence/kim_cnn_mr.py --workdir=runs/kim_cnn_mr \
      --parallel=2
  python scripts/run.py --config=configs/sequence/kim_cnn_mr.py:analysis \
      --workdir=runs/kim_cnn_mr/analysis
Evaluate on another folder of sentences (rt-polarity.neg/.pos) with the run's vocabulary:
  python scripts/evaluate.py --config=configs/sequence/kim_cnn_mr.py \
      --workdir=runs/kim_cnn_mr/fold0 --config.data.manual_dir=DIR --config.data.eval_split=all
Smoke (2 steps, 32-d embeddings, 16 maps per width): :smoke
Result (2026-12-05, the sweep + :analysis above): accuracy 75.2 +- 1.5 % over the 10 folds
  (73.9, 74.6, 74.6, 75.4, 74.9, 76.4, 78.2, 75.7, 75.7, 72.5; population std); 102 min of
  fold wall time in all, 3.2 min for a fold with a core to itself, up to 19.5 min sharing.
Published (Kim 2014, Table 2, MR, 10-fold CV): CNN-rand 76.1 %, CNN-static 81.0 %,
CNN-non-static 81.5 %, CNN-multichannel 81.1 % (the last three need word2vec vectors).
"""

from cnnlab import sweep
from cnnlab.train import config as config_lib

SWEEP_WORKDIR = "runs/kim_cnn_mr"
NUM_FOLDS = 10


def get_config(arg=None):
  """One fold's training config; ``:analysis``: mean +- std of the folds' accuracy."""
  args = config_lib.parse_arg(arg, ("smoke", "analysis"))
  if args.get("analysis"):
    return config_lib.analysis("cross_validation", sweep_workdir=SWEEP_WORKDIR,
                               sweep_config="configs/sequence/kim_cnn_mr.py", metric="accuracy",
                               fold_field="data.fold")
  c = config_lib.base()
  c.data.update(name="mr", manual_dir=config_lib.shared_data("mr"), train_split="train",
                eval_split="test", fold=0, num_folds=NUM_FOLDS, fold_seed=0, min_count=1,
                max_len=0)
  c.model.update(name="kim_cnn", variant="rand", vocab_size=20_000, embed_dim=300,
                 num_filters=100, dropout_rate=0.5, conv_impl="im2col")
  c.optimizer.update(name="adadelta", learning_rate=1.0, rho=0.95, eps=1e-6, schedule="constant",
                     max_norm=3.0)
  c.batch_size = 50
  c.eval_batch_size = 480
  c.num_epochs = 10
  c.log_every_steps = 86
  if args.get("smoke"):
    config_lib.smoke(c)
    c.model.update(embed_dim=32, num_filters=16)
  return c


def get_sweep(arg=None):
  """The ten folds."""
  del arg
  return sweep.grid("data.fold", list(range(NUM_FOLDS)))
