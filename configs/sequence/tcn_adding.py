"""Bai et al. 2018's adding problem (T = 600) with a TCN: each step holds a value in [0, 1) and a
0/1 marker; the target is the sum of the two marked values (regression, MSE).

Model `tcn_adding`: 8 levels x 30 channels, kernel 7 (96,001 parameters; receptive field 3,061),
one output from the last step. Data `adding`: 50,000 train / 1,000 test sequences generated from
seeded generators. Task `regression` (loss = MSE; `mse` and `mae` logged; the best checkpoint is
the lowest eval loss). Adam 4e-3, constant, no clipping, batch 32, 10 epochs (1,562 steps each):
the defaults of Bai et al.'s code for this task (a first run with Adam 2e-3 and cosine decay
was still at the mean's loss, 0.17, after 3,800 steps; stopped).
`:lstm` / `:gru`: Bai et al.'s recurrent baselines at the TCN's budget (LSTM hidden 153: 95,626
parameters; GRU 177: 95,935), last step -> 1 output, Adam 2e-3 with cosine decay, gradient
norm clipped at 1.
Command:
  python scripts/run.py --config=configs/sequence/tcn_adding.py --workdir=runs/tcn_adding
  python scripts/run.py --config=configs/sequence/tcn_adding.py:lstm --workdir=runs/lstm_adding
Smoke (2 steps, 64 train / 64 test sequences): :smoke
Result (2026-12-06, all three nets, full recipe): docs/sequence.md, "The Bai et al. table
  (full recipes)". Runs of 800 steps, all three nets: "Short runs of the Bai et al. tasks".
Published (Bai et al. 2018, Table 1, test MSE, T = 600): TCN 5.8e-5, LSTM 0.164, GRU 5.3e-5
(predicting the mean 1.0 scores about 0.167).
"""

from cnnlab.train import config as config_lib

# cnnlab.models.rnn.matched_hidden_size(cell, 96_001, 2, 1): the tcn_adding model's budget.
RNN_HIDDEN = {"lstm": 153, "gru": 177}


def get_config(arg=None):
  args = config_lib.parse_arg(arg, ("smoke", "lstm", "gru"))
  c = config_lib.base()
  c.task = "regression"
  c.data.update(name="adding", train_split="train", eval_split="test", seq_len=600,
                num_train=50_000, num_test=1_000, seed=0)
  c.model.name = "tcn_adding"
  c.optimizer.update(name="adam", learning_rate=4e-3, schedule="constant")
  for cell, hidden in RNN_HIDDEN.items():
    if args.get(cell):
      c.model.update(name=cell, hidden_size=hidden, num_classes=1, head="last")
      c.optimizer.update(learning_rate=2e-3, schedule="cosine", grad_clip_norm=1.0)
  c.batch_size = 32
  c.eval_batch_size = 250
  c.num_epochs = 10
  c.log_every_steps = 100
  c.eval_every_steps = 500
  if args.get("smoke"):
    config_lib.smoke(c)
    c.data.update(num_train=64, num_test=64)
  return c
