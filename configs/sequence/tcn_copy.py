"""Bai et al. 2018's copy memory task (T = 1000) with a TCN: 10 symbols from 1-8, then 999 blanks
and 11 markers (9); after the first marker the net must repeat the 10 symbols. Labels are per
step (0 = blank), 1,020 steps.

Model `tcn_copy`: 8 levels x 10 channels, kernel 8 (12,530 parameters; receptive field 3,571 >=
1,020), a 10-way output at every step. Task `sequence_classification` (loss = cross entropy
averaged over the 1,020 steps, as Bai et al.'s; accuracy per step, mostly blanks). Data
`copy_memory`: 10,000 train / 1,000 test, seeded. Adam 5e-4, gradient norm clipped at 1,
batch 32, 30 epochs (312 steps each). `:lstm` / `:gru`: Bai et al.'s recurrent baselines at the
TCN's budget (LSTM hidden 53: 12,200 parameters; GRU 61: 12,210), 10-way output at every step.
Command:
  python scripts/run.py --config=configs/sequence/tcn_copy.py --workdir=runs/tcn_copy
  python scripts/run.py --config=configs/sequence/tcn_copy.py:gru --workdir=runs/gru_copy
Smoke (2 steps, 64 train / 32 test sequences): :smoke
Result (2026-12-05, full recipe, TCN, LSTM and GRU): docs/sequence.md, "The Bai et al. table
  (full recipes)"; runs of 3 epochs: "Short runs of the Bai et al. tasks".
Published (Bai et al. 2018, Table 1, test loss, T = 1000): TCN 3.5e-5, LSTM 0.0204, GRU 0.0197
(always predicting a blank and random symbols scores about 0.0204).
"""

from cnnlab.train import config as config_lib

# cnnlab.models.rnn.matched_hidden_size(cell, 12_530, 1, 10): the tcn_copy model's budget.
RNN_HIDDEN = {"lstm": 53, "gru": 61}


def get_config(arg=None):
  args = config_lib.parse_arg(arg, ("smoke", "lstm", "gru"))
  c = config_lib.base()
  c.task = "sequence_classification"
  c.data.update(name="copy_memory", train_split="train", eval_split="test", seq_len=1000,
                memory_length=10, num_train=10_000, num_test=1_000, seed=0)
  c.model.name = "tcn_copy"
  c.optimizer.update(name="adam", learning_rate=5e-4, schedule="cosine", grad_clip_norm=1.0)
  for cell, hidden in RNN_HIDDEN.items():
    if args.get(cell):
      c.model.update(name=cell, hidden_size=hidden, num_classes=10, head="per_timestep")
  c.batch_size = 32
  c.eval_batch_size = 250
  c.num_epochs = 30
  c.log_every_steps = 104
  if args.get("smoke"):
    config_lib.smoke(c)
    c.data.update(num_train=64, num_test=32)
  return c
