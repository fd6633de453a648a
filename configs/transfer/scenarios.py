"""The lecture's transfer-learning table on real data: source LeNet-5 pretrained on mnist8k
(configs/transfer/pretrain_mnist8k.py); targets sklearn digits ("similar": 8x8 digits upscaled
to 32x32, the source's normalisation) and FSDD spoken digits ("very different": 40 log-mel bins x
101 frames of 1 s, resized to 32x32; speaker-independent: train george, jackson, lucas, nicolas,
evaluate every recording of yweweler), each with 1, 5, 10, 50 or all labels per class (a seeded
per-class subset of the train split, ``data.labels_per_class``, drawn with the run's seed).

Approaches (``:approach=``), all from the source's weights except ``scratch``, new 10-way head:
- ``scratch``: every layer trained from a random init;
- ``probe``: linear probe = feature extractor: only the head on the frozen 84-d F6 features;
- ``early``: a linear classifier on earlier activations: cut after C5 (``transfer.cut_after``,
  120-d), new head ``cut_head``, trunk frozen;
- ``finetune``: fine-tune all, the pretrained layers at 0.1x the head's learning rate.
The lecture's choice per scenario: small + similar -> probe (digits_small_similar.py), large +
similar -> finetune (digits_large_similar.py), small + different -> early
(fsdd_small_different.py), large + different -> finetune (fsdd_large_different.py).
Every point: Adam 3e-3, cosine, 200 steps of batch min(32, 10 x labels per class), eval once at
the end on the full eval split (digits: 360, FSDD: yweweler's 500).
Commands (from the repository root; the sweep reads the pretrained run from
``runs/transfer/pretrain_mnist8k``, ``--config.init_from.workdir`` for one run):
  python scripts/run.py --config=configs/transfer/pretrain_mnist8k.py \\
      --workdir=runs/transfer/pretrain_mnist8k
  python scripts/sweep.py --config=configs/transfer/scenarios.py \\
      --workdir=runs/transfer/scenarios --parallel=1
  python scripts/run.py --config=configs/transfer/scenarios.py:analysis \\
      --workdir=runs/transfer/scenarios/analysis
One point: --config=configs/transfer/scenarios.py:target=fsdd,approach=early
  --config.data.labels_per_class=5 --config.batch_size=32
Smoke (2 steps, no init_from): :smoke
Result: docs/experiments/transfer_scenarios.md (run 2026-12-04).
"""

from cnnlab import sweep
from cnnlab.train import config as config_lib

PRETRAIN_WORKDIR = "runs/transfer/pretrain_mnist8k"
SWEEP_WORKDIR = "runs/transfer/scenarios"
TARGETS = ("digits", "fsdd")
APPROACHES = ("scratch", "probe", "early", "finetune")
SWEPT = {"digits": ("scratch", "probe", "finetune"),
         "fsdd": ("scratch", "probe", "early", "finetune")}
LABELS_PER_CLASS = (1, 5, 10, 50, 0)  # 0 = all
SEEDS = (0, 1, 2)
EARLY = "C5_out"
STEPS = 200
LOG_MEL_MEAN, LOG_MEL_STD = -13.0, 1.6  # over FSDD's 2,000 training spectrograms (-13.08, 1.58)


def batch_size(labels_per_class: int) -> int:
  return min(32, 10 * labels_per_class) if labels_per_class else 32


def scenario(target: str, approach: str, labels_per_class: int, smoke: bool = False):
  """The training config of ``approach`` on ``target`` with ``labels_per_class`` (0 = all)."""
  c = config_lib.base()
  c.model.name = "lenet5"
  if target == "digits":
    c.data.update(image_size=32, mean=(0.1307,), std=(0.3081,))  # the source's normalisation
  else:
    config_lib.fsdd_data(c)
    c.data.update(log_mel=True, image_size=32, mean=(LOG_MEL_MEAN,), std=(LOG_MEL_STD,))
  c.data.labels_per_class = labels_per_class
  c.data.subset_seed = c.get_ref("seed")
  c.optimizer.update(name="adam", learning_rate=3e-3, schedule="cosine")
  c.batch_size = batch_size(labels_per_class)
  c.eval_batch_size = 500
  c.num_train_steps = c.eval_every_steps = c.checkpoint_every_steps = STEPS
  c.log_every_steps = 100
  c.keep_checkpoints = 1
  if approach != "scratch":
    c.init_from.workdir = PRETRAIN_WORKDIR
    c.init_from.skip = "output"  # a new head (the cut model has none to skip)
  if approach == "probe":
    c.transfer.trainable = "output"
  elif approach == "early":
    c.init_from.skip = ""
    c.transfer.update(cut_after=EARLY, trainable="cut_head")
  elif approach == "finetune":
    c.transfer.lr_multipliers = "output=1,*=0.1"
  if smoke:  # 2 steps, nothing read from the pretrained run (tests have none)
    config_lib.smoke(c)
    c.init_from.update(workdir="", skip="")
    if target == "fsdd":
      c.data.update(audio_length=2000, eval_split="test")
  return c


def parse(arg, default_target="digits", default_approach="probe"):
  """``(target, approach, smoke, analysis)`` of a ``:arg``."""
  args = config_lib.parse_arg(arg, ("smoke", "analysis"),
                              {"target": TARGETS, "approach": APPROACHES})
  return (args.get("target", default_target), args.get("approach", default_approach),
          bool(args.get("smoke")), bool(args.get("analysis")))


def get_config(arg=None):
  """One point (``:target=``, ``:approach=``; labels per class all unless overridden);
  ``:analysis``: the table + figure from the sweep."""
  target, approach, smoke, analysis = parse(arg)
  if analysis:
    return config_lib.analysis("transfer_scenarios", sweep_workdir=SWEEP_WORKDIR,
                               pretrain_workdir=PRETRAIN_WORKDIR)
  return scenario(target, approach, 0, smoke)


def get_sweep(arg=None):
  """(target, approach) x labels per class (with its batch size), seed 0 for all, then 1, 2."""
  del arg
  variants = sweep.args([f"target={t},approach={a}" for t in TARGETS for a in SWEPT[t]])
  labels = sweep.zip_(sweep.grid("data.labels_per_class", LABELS_PER_CLASS),
                      sweep.grid("batch_size", [batch_size(n) for n in LABELS_PER_CLASS]))
  return sweep.chain(*(sweep.product(variants, labels, sweep.grid("seed", [s])) for s in SEEDS))
