"""Conv implementations as a sweep over kernel size and channels: ``bench_conv`` driven by the
sweep runner, one 1D conv shape per job (N=8, L=512, C_in = C_out = channels, 'same' padding).

Each point times every impl in ``impls`` that supports the shape, and torch, fwd+bwd (median);
its result holds ``<impl>_ms``, ``torch_ms``, ``fft_speedup_vs_lax`` (t_lax / t_fft: > 1 where
FFT wins) and the fastest impl. With the local executor each job runs single-threaded (XLA and
torch alike), ``--parallel`` jobs at a time.
Command:
  python scripts/sweep.py --config=configs/bench/conv_sweep.py --workdir=runs/conv_sweep \
      --parallel=2 --metric=fft_speedup_vs_lax
Smoke (2 points, tiny): --config=configs/bench/conv_sweep.py:smoke
Result (quiet 2-core CPU, ~4 min): t_lax/t_fft crosses 1 at k ~ 11-23 for 8 channels (2.8x at
  k=63), at k ~ 47 for 32 channels (1.45x at k=63), never up to k=63 for 128 (0.58x at k=63);
  see docs/experiments/conv_impls.md.
"""

import ml_collections

from cnnlab import sweep


def get_config(arg=None):
  c = ml_collections.ConfigDict(dict(
      k=15, channels=32, batch=8, length=512, impls=("lax", "fft", "im2col", "shift"),
      warmup=1, iters=5, seed=0))
  if arg == "smoke":
    c.update(batch=2, length=32, iters=2, impls=("lax", "fft"))
  elif arg:
    raise ValueError(f"config arg {arg!r} is not one of ('smoke',)")
  return c


def get_sweep(arg=None):
  if arg == "smoke":
    return sweep.product(sweep.grid("k", [3, 11]), sweep.grid("channels", [4]))
  return sweep.product(sweep.grid("k", [3, 7, 11, 15, 23, 31, 47, 63]),
                       sweep.grid("channels", [8, 32, 128]))


def run(config, workdir):
  """Benchmarks one conv1d shape; returns per-impl fwd+bwd milliseconds and ratios."""
  del workdir
  from cnnlab.bench import conv  # noqa: PLC0415 - torch only in the job process
  shape = dict(name=f"conv1d_k{config.k}_c{config.channels}", cls="conv1d",
               x=(config.batch, config.length, config.channels), window=(config.k,),
               c_out=config.channels, stride=1, padding=config.k // 2, dilation=1, groups=1,
               skip=())
  rows, _ = conv.bench_shape(shape, config, peak=float("nan"))
  ms = {r["impl"]: r["fwd_bwd_ms"] for r in rows}
  fastest = min((i for i in ms if i != "torch"), key=ms.get)
  return {**{f"{i}_ms": t for i, t in ms.items()}, "fastest": fastest,
          "fastest_vs_torch": ms["torch"] / ms[fastest],
          "fft_speedup_vs_lax": ms["lax"] / ms["fft"]}
