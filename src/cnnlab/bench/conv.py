"""The conv benchmark: every cnnlab conv impl vs torch (oneDNN, CPU) on the same data, same run.

Per shape and impl (every registered impl that supports the shape, ``auto`` excluded): fwd and
fwd+bwd (the forward output and its vjp w.r.t. x and w: three convs, as torch's autograd runs)
wall time of the jitted call, compiled with ``cfg.xla_cpu_options`` if set
(``cnnlab.train.backend``; the JSON's ``compiler_options`` are those in force); GFLOP/s counted
as a direct conv (``2*N*prod(out)*C_out*prod(k)*C_in/groups``, fwd+bwd = 3x that, whatever the
algorithm does); % of the ``jnp.matmul`` peak measured in the same run; speed vs torch =
t_torch / t_impl (> 1: faster than torch). Timed in ``cfg.rounds`` rounds (``paired_rounds``):
each round times torch and every impl (median of ``cfg.iters`` calls each) in a rotated order;
a row's times are the medians over rounds, its speeds the medians of the per-round ratios, and
``spread`` is (max - min) / median of its per-round fwd+bwd speeds. torch uses
``set_num_threads(os.cpu_count())`` and channels_last (2D) / channels_last_3d (3D) tensors.
A shape is a dict: ``name``, ``cls``, ``x``, ``window``, ``c_out``, ``stride``, ``padding``,
``dilation``, ``groups``, ``skip`` (see configs/bench/conv.py).
Used by ``scripts/bench_conv.py`` and by the conv-implementation sweep
(``configs/bench/conv_sweep.py``).
"""

import math
import os
import statistics
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import torch
import torch.nn.functional as F

from cnnlab import ops, plotting
from cnnlab.bench import peak, report
from cnnlab.ops import conv_auto
from cnnlab.ops.conv_case import make_case
from cnnlab.ops.conv_registry import impls_supporting
from cnnlab.train import backend
from cnnlab.train.errors import ConfigError
from cnnlab.train.validate import check_number, check_subset

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_FORMAT = {2: torch.channels_last, 3: torch.channels_last_3d}
COLS = ["shape", "cls", "impl", "fwd_ms", "fwd_bwd_ms", "gflops_fwd_bwd", "pct_peak",
        "vs_torch_fwd", "vs_torch_fwd_bwd", "spread"]


def conv_kwargs(s):
  return dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"], groups=s["groups"])


def direct_flops(s, out_shape):
  return 2 * math.prod(out_shape[:-1]) * s["c_out"] * math.prod(s["window"]) * (
      s["x"][-1] // s["groups"])


def check_timing(cfg):
  """Raises :class:`ConfigError` (one line naming the field and what is allowed) unless
  ``cfg.impls`` names registered impls (not ``auto``; empty: all), ``warmup`` >= 0,
  ``warmup_s`` >= 0 and ``iters``, ``rounds`` >= 1: before anything is timed or written."""
  check_subset(cfg, "impls", [i for i in ops.list_impls() if i != "auto"], "conv impls")
  for field, low in (("warmup", 0), ("iters", 1), ("rounds", 1)):
    check_number(cfg, field, low, integer=True)
  check_number(cfg, "warmup_s", 0.0)


def check_config(cfg):
  """:func:`check_timing`, ``matmul_size`` >= 1, and every shape a valid conv (``make_case``)
  whose ``skip`` names registered impls."""
  check_timing(cfg)
  check_number(cfg, "matmul_size", 1, integer=True)
  if not cfg.shapes:
    raise ConfigError("config.shapes is empty (allowed: a list of shapes, configs/bench/conv.py)")
  for i, s in enumerate(cfg.shapes):
    try:
      if unknown := [k for k in s.get("skip", ()) if k not in ops.list_impls()]:
        raise ValueError(f"skip names {unknown}, not conv impls")
      make_case(s["x"], (*s["window"], s["x"][-1] // s["groups"], s["c_out"]), np.float32,
                np.float32, **conv_kwargs(s))
    except (ValueError, KeyError, TypeError, ZeroDivisionError) as e:
      raise ConfigError(f"config.shapes[{i}] ({s.get('name')!r}) is invalid: {e}") from None


def matmul_peak_gflops(n, cfg):
  return 1e3 * peak.measured_matmul_tflops(n, warmup=cfg.warmup + 1, iters=cfg.iters)


def to_torch(a_nhwc, nd, requires_grad=False):
  t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(a_nhwc, -1, 1)))
  if nd in TORCH_FORMAT:
    t = t.contiguous(memory_format=TORCH_FORMAT[nd])
  return t.requires_grad_(requires_grad)


def torch_fns(s, x, w, g):
  """torch's output ``y`` (channels last) and its timed calls: forward (no grad) and fwd+bwd
  (``autograd.grad`` w.r.t. x and w)."""
  nd = len(s["window"])
  xt, gt = to_torch(x, nd, True), to_torch(g, nd)
  wt = to_torch(np.moveaxis(w, -1, 0), nd, True)  # (*k, I/g, O) -> torch (O, I/g, *k)
  conv = lambda: TORCH_CONV[nd](xt, wt, **conv_kwargs(s))  # noqa: E731

  def fwd():
    with torch.no_grad():
      conv()

  def fwd_bwd():
    torch.autograd.grad(conv(), (xt, wt), gt)

  with torch.no_grad():
    y = np.moveaxis(conv().numpy(), 1, -1)
  return y, fwd, fwd_bwd


def jitted(s, impl, cfg):
  """The jitted fwd ``(x, w) -> y`` and fwd+bwd ``(x, w, g) -> (y, dx, dw)`` of ``impl`` on shape
  ``s``, with ``cfg``'s compiler options. fwd+bwd returns ``y`` too: XLA deletes a forward conv
  whose output is unused, torch's autograd runs it."""
  fn = lambda x, w: ops.conv(x, w, impl=impl, **conv_kwargs(s))  # noqa: E731

  def fwd_bwd(x, w, g):
    y, vjp = jax.vjp(fn, x, w)
    return (y, *vjp(g))

  options = backend.compiler_options(cfg)
  return jax.jit(fn, compiler_options=options), jax.jit(fwd_bwd, compiler_options=options)


def jax_fns(s, impl, x, w, g, cfg):
  """``impl``'s output ``y``, its timed calls (jitted forward and fwd+bwd on device arrays) and
  the seconds compiling both took."""
  fwd, fwd_bwd = jitted(s, impl, cfg)
  x, w, g = map(jnp.asarray, (x, w, g))
  t0 = time.perf_counter()
  y = np.asarray(fwd(x, w))
  jax.block_until_ready(fwd_bwd(x, w, g))
  return y, (lambda: fwd(x, w)), (lambda: fwd_bwd(x, w, g)), time.perf_counter() - t0


def paired_rounds(calls, cfg):
  """``{name: (fwd seconds per round, fwd+bwd seconds per round)}`` for ``calls`` ``{name: (fwd,
  fwd_bwd)}``: ``report.paired_rounds`` over ``cfg.rounds`` rounds, each entry timed as the
  median of ``cfg.iters`` calls after ``cfg.warmup`` calls and ``cfg.warmup_s`` seconds."""
  def timed(fns):
    return lambda: [report.median_seconds(f, warmup=cfg.warmup, iters=cfg.iters,
                                          warmup_s=cfg.warmup_s) for f in fns]
  rounds = report.paired_rounds({n: timed(fns) for n, fns in calls.items()}, cfg.rounds)
  return {n: tuple(zip(*per_round)) for n, per_round in rounds.items()}


def bench_shape(s, cfg, peak):
  """Rows (torch first) for one shape, and its ``auto`` cache entry."""
  rng = np.random.default_rng(cfg.seed)
  w_shape = (*s["window"], s["x"][-1] // s["groups"], s["c_out"])
  x = rng.standard_normal(s["x"], np.float32)
  w = rng.standard_normal(w_shape, np.float32) / math.sqrt(math.prod(w_shape[:-1]))
  case = make_case(s["x"], w_shape, np.float32, np.float32, **conv_kwargs(s))
  out_shape = (s["x"][0], *case.out_spatial, s["c_out"])
  g = rng.standard_normal(out_shape, np.float32)
  flops = direct_flops(s, out_shape)
  y_ref, fwd, fwd_bwd = torch_fns(s, x, w, g)
  calls, compile_s, err = {"torch": (fwd, fwd_bwd)}, {"torch": 0.0}, {"torch": 0.0}
  for impl in impls_supporting(s["x"], w_shape, **conv_kwargs(s)):
    if impl != "auto" and (not cfg.impls or impl in cfg.impls) and impl not in s.get("skip", ()):
      y, fwd, fwd_bwd, compile_s[impl] = jax_fns(s, impl, x, w, g, cfg)
      calls[impl], err[impl] = (fwd, fwd_bwd), float(np.abs(y - y_ref).max())
  times = paired_rounds(calls, cfg)
  rows = []
  for impl, (fwd_s, bwd_s) in times.items():
    t_fwd, t_bwd = statistics.median(fwd_s), statistics.median(bwd_s)
    vs_fwd, _ = report.ratio_per_round(times["torch"][0], fwd_s)
    vs_bwd, spread = report.ratio_per_round(times["torch"][1], bwd_s)
    rows.append(dict(shape=s["name"], cls=s["cls"], impl=impl, fwd_ms=1e3 * t_fwd,
                     fwd_bwd_ms=1e3 * t_bwd, gflops_fwd_bwd=3 * flops / t_bwd / 1e9,
                     pct_peak=100 * 3 * flops / t_bwd / 1e9 / peak, vs_torch_fwd=vs_fwd,
                     vs_torch_fwd_bwd=vs_bwd, spread=spread, compile_s=compile_s[impl],
                     max_abs_diff_vs_torch=err[impl], window=list(s["window"]),
                     c_in=s["x"][-1], groups=s["groups"]))
    print(report.markdown_table(rows[-1:], COLS).splitlines()[-1], flush=True)
  options = backend.compiler_options(cfg)
  entry = {"shape": s["name"], "torch_fwd_bwd_s": rows[0]["fwd_bwd_ms"] / 1e3,
           "compiler_options": options or {},
           "fwd_s": {r["impl"]: r["fwd_ms"] / 1e3 for r in rows[1:]},
           "fwd_bwd_s": {r["impl"]: r["fwd_bwd_ms"] / 1e3 for r in rows[1:]}}
  with conv_auto.compiled_with(options):
    return rows, {conv_auto.case_key(case): entry}


def plot(rows, out_path):
  """The run's figure: fwd+bwd time vs kernel size where it has the 1D large-k shapes (where FFT
  overtakes the direct impls), else each shape's fwd+bwd speed vs torch per impl."""
  pts = [r for r in rows if len(r["window"]) == 1 and r["cls"] == "conv1d_large_k"]
  fig, ax = plt.subplots(figsize=(6.5, 4))
  (_kernel_sizes if pts else _speed_per_shape)(ax, pts or rows)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return plotting.save(fig, out_path, dpi=110)


def _kernel_sizes(ax, rows):
  for impl in dict.fromkeys(r["impl"] for r in rows):
    mine = sorted((r["window"][0], r["fwd_bwd_ms"]) for r in rows if r["impl"] == impl)
    ax.plot(*zip(*mine), "o-" if impl != "torch" else "ko--", label=impl, ms=3)
  ax.set(xlabel="kernel size k (1D)", ylabel="fwd+bwd median (ms)", yscale="log",
         title="1D conv, time vs kernel size")


def _speed_per_shape(ax, rows):
  shapes = list(dict.fromkeys(r["shape"] for r in rows))
  for impl in dict.fromkeys(r["impl"] for r in rows if r["impl"] != "torch"):
    mine = [(shapes.index(r["shape"]), r["vs_torch_fwd_bwd"]) for r in rows if r["impl"] == impl]
    ax.plot(*zip(*mine), "o", label=impl, ms=5)
  ax.axhline(1.0, color="k", ls="--", lw=1, label="torch")
  ax.set_xticks(range(len(shapes)), shapes, rotation=30, ha="right", fontsize=7)
  ax.set(ylabel="fwd+bwd speed vs torch", yscale="log", title="speed vs torch per shape")


def geomean(values):
  return math.exp(sum(map(math.log, values)) / len(values))


def summary_markdown(rows, peak, note, options=None):
  """The "which conv is fastest" Markdown: per class, goals, full table."""
  lines = ["# Which conv is fastest (CPU)", "",
           "Generated by `scripts/bench_conv.py` "
           "(`--config=configs/bench/conv.py`); see that config for the shapes and the reductions "
           "from full size. Speed vs torch = t_torch / t_impl (> 1: faster than torch), "
           "fwd+bwd unless stated: the median over rounds that each time torch and every impl "
           "in a rotated order; `spread` = (max - min) / median of a row's per-round fwd+bwd "
           "speeds.", "",
           f"Machine: {report.machine()}. jnp.matmul peak in this run: {peak:.1f} GFLOP/s.",
           f"XLA compiler options: {options or 'the defaults'}.", ""]
  if note:
    lines += [note, ""]
  lines += ["## Per shape class", "",
            "| class | fastest impl (geomean over the class) | its speed vs torch | "
            "per-shape winner (speed vs torch) |", "|---|---|---|---|"]
  by_shape = {}
  for r in rows:
    by_shape.setdefault(r["shape"], {})[r["impl"]] = r
  for cls in dict.fromkeys(r["cls"] for r in rows):
    shapes = [s for s, rs in by_shape.items() if next(iter(rs.values()))["cls"] == cls]
    common = set.intersection(*(set(by_shape[s]) - {"torch"} for s in shapes))
    speed = {i: geomean([by_shape[s][i]["vs_torch_fwd_bwd"] for s in shapes]) for i in common}
    best = max(speed, key=speed.get)
    winners = []
    for s in shapes:
      w = max((r for i, r in by_shape[s].items() if i != "torch"),
              key=lambda r: r["vs_torch_fwd_bwd"])
      winners.append(f"{s}: {w['impl']} ({w['vs_torch_fwd_bwd']:.2f}x)")
    lines.append(f"| {cls} | {best} | {speed[best]:.2f}x | {'; '.join(winners)} |")
  lines += ["", "## Goals", ""] + goal_lines(by_shape) + [
      "", "## All timings", "", report.markdown_table(rows, COLS), "",
      "Figure: `conv_bench.png` in the run's `--workdir` (fwd+bwd time vs 1D kernel size).", ""]
  return "\n".join(lines)


def goal_lines(by_shape):
  def t(s, i):
    return by_shape[s][i]["fwd_bwd_ms"] if i in by_shape[s] else float("nan")
  out = []
  for s, rs in by_shape.items():
    r0 = next(iter(rs.values()))
    if r0["cls"] == "resnet":
      best = min((i for i in rs if i != "torch"), key=lambda i: t(s, i))
      slow = t(s, best) / t(s, "torch")
      out.append(f"- ResNet {s}: best {best} at {slow:.2f}x torch's fwd+bwd time "
                 f"({'within' if slow <= 1.25 else 'NOT within'} 1.25x)")
    if len(r0["window"]) == 1 and r0["window"][0] >= 11 and "fft" in rs:
      out.append(f"- {s}: fft/lax fwd+bwd time {t(s, 'fft') / t(s, 'lax'):.2f} "
                 f"({'fft faster' if t(s, 'fft') < t(s, 'lax') else 'fft NOT faster'})")
    if r0["c_in"] // r0["groups"] <= 3 and r0["groups"] == 1 and "im2col" in rs:
      out.append(f"- {s} (C_in={r0['c_in']}): im2col/lax fwd+bwd time "
                 f"{t(s, 'im2col') / t(s, 'lax'):.2f} "
                 f"({'im2col faster' if t(s, 'im2col') < t(s, 'lax') else 'im2col NOT faster'})")
  return out


def write_outputs(workdir, rows, cache, peak, cfg, *, doc_path=None, cache_path=None,
                  update_cache=True):
  """Writes conv_bench.{json,md,png} + conv_benchmark.md (and ``doc_path``); merges ``cache``
  into the ``impl='auto'`` cache at ``cache_path`` (default location if None)."""
  options = backend.compiler_options(cfg)
  paths = report.write(workdir, "conv_bench", rows, COLS,
                       extra={"matmul_peak_gflops": peak, "matmul_size": cfg.matmul_size,
                              "compiler_options": options or {}, "config": cfg.to_dict(),
                              "cache_entries": cache})
  paths["png"] = plot(rows, os.path.join(workdir, "conv_bench.png"))
  doc = summary_markdown(rows, peak, cfg.note, options)
  for key, path in (("summary", os.path.join(workdir, "conv_benchmark.md")),
                    ("doc", doc_path)):
    if path:
      with open(path, "w") as f:
        f.write(doc)
      paths[key] = path
  if update_cache:
    paths["cache"] = str(conv_auto.merge_cache(cache, cache_path))
  return {**paths, "doc": doc}
