"""One conv shape timed with every impl that supports it and with torch, fwd+bwd (a benchmark
as a sweep point; configs/bench/conv_sweep.py sweeps it over kernel size and channels).

Config: ``k``, ``channels``, ``batch``, ``length`` (a 1D conv ``(batch, length, channels)``,
C_in = C_out = channels, 'same' padding), ``impls``, ``warmup``, ``warmup_s``, ``iters``,
``rounds`` (``cnnlab.bench.conv.paired_rounds``), ``seed``. Returns
``<impl>_ms``, ``torch_ms``, the fastest impl, its speed vs torch and ``fft_speedup_vs_lax``
(t_lax / t_fft: > 1 where FFT wins; None unless both are timed).
"""

from __future__ import annotations

from cnnlab.train.validate import check_number


def run(config, workdir: str) -> dict:
  del workdir
  from cnnlab.bench import conv  # noqa: PLC0415 - torch (the reference) only when timing
  for field in ("k", "channels", "batch", "length"):
    check_number(config, field, 1, integer=True)
  conv.check_timing(config)
  shape = dict(name=f"conv1d_k{config.k}_c{config.channels}", cls="conv1d",
               x=(config.batch, config.length, config.channels), window=(config.k,),
               c_out=config.channels, stride=1, padding=config.k // 2, dilation=1, groups=1,
               skip=())
  rows, _ = conv.bench_shape(shape, config, peak=float("nan"))
  ms = {r["impl"]: r["fwd_bwd_ms"] for r in rows}
  fastest = min((i for i in ms if i != "torch"), key=ms.get)
  return {**{f"{i}_ms": t for i, t in ms.items()}, "fastest": fastest,
          "fastest_vs_torch": ms["torch"] / ms[fastest],
          "fft_speedup_vs_lax": ms["lax"] / ms["fft"] if {"lax", "fft"} <= ms.keys() else None}
