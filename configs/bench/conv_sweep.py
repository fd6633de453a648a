"""Conv implementations as a sweep over kernel size and channels: experiment ``conv_speed``
(``cnnlab.experiments.conv_speed``) driven by the sweep runner, one 1D conv shape per job (N=8,
L=512, C_in = C_out = channels, 'same' padding).

Each point times every impl in ``impls`` that supports the shape, and torch, fwd+bwd (median);
its result holds ``<impl>_ms``, ``torch_ms``, ``fft_speedup_vs_lax`` (t_lax / t_fft: > 1 where
FFT wins) and the fastest impl. With the local executor each job runs single-threaded (XLA and
torch alike), ``--parallel`` jobs at a time.
Command:
  python scripts/sweep.py --config=configs/bench/conv_sweep.py --workdir=runs/conv_sweep \
      --parallel=2 --metric=fft_speedup_vs_lax
Smoke (2 points, tiny): --config=configs/bench/conv_sweep.py:smoke
Result: docs/experiments/conv_impls.md (regenerated 2026-12-04).
"""

from cnnlab import sweep
from cnnlab.train import config as config_lib


def get_config(arg=None):
  c = config_lib.analysis("conv_speed", k=15, channels=32, batch=8, length=512,
                          impls=("lax", "fft", "im2col", "shift"), warmup=1, warmup_s=0.03, iters=5,
                          rounds=1, seed=0)
  if config_lib.parse_arg(arg, ("smoke",)).get("smoke"):
    c.update(batch=2, length=32, iters=2, impls=("lax", "fft"))
  return c


def get_sweep(arg=None):
  if arg == "smoke":
    return sweep.product(sweep.grid("k", [3, 11]), sweep.grid("channels", [4]))
  return sweep.product(sweep.grid("k", [3, 7, 11, 15, 23, 31, 47, 63]),
                       sweep.grid("channels", [8, 32, 128]))
