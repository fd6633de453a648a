"""Naive (fig. 2a) vs 1x1-reduced (fig. 2b) Inception blocks: parameters and MACs, as a figure.

Numbers per GoogLeNet block (each fed the input the reduced GoogLeNet gives it) come from the
closed form ``inception_cost_table`` (below) and are cross-checked twice:

- module level: each block built alone (``googlenet.Inception`` with GoogLeNet's conv-BN-ReLU)
  on ``(1, hw, hw, C_in)``: trainable parameters from ``jax.eval_shape`` of ``init``, MACs from
  ``cnnlab.models.summary.summarize`` (every conv tap counted, as the closed form does);
- network level (reduced only; a naive network widens every later block's input): the
  ``inception*`` rows of ``summarize`` of the whole GoogLeNet (``inception_block='reduced'``).

Parameters = conv kernels + BN scale/bias (no conv bias); MACs = conv multiply-adds.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

from cnnlab import arith, models
from cnnlab import nn as cnn
from cnnlab import plotting, report
from cnnlab.models import blocks, googlenet, summary
from cnnlab.train.errors import ConfigError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BLOCKS = googlenet.INCEPTION_BLOCKS  # ("naive", "reduced")
COLS = ["block", "c_in", "hw", "naive_params", "reduced_params", "params_ratio", "naive_mmacs",
        "reduced_mmacs", "macs_ratio", "module_check", "network_check"]


class _Block(nn.Module):
  """One ``googlenet.Inception`` in eval mode, callable as ``apply(v, x, train=False)``."""
  channels: Sequence[int]
  block: str
  kernel_5x5: int

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    norm = functools.partial(cnn.BatchNorm, use_running_average=not train, epsilon=1e-3)
    conv = functools.partial(cnn.Conv, use_bias=False)
    conv_block = functools.partial(blocks.ConvNormAct, conv=conv, norm=norm, padding=0, act=nn.relu)
    return googlenet.Inception(self.channels, conv_block, self.block, self.kernel_5x5)(x_BxHxWxC)


def inception_cost(c_in: int, channels: Sequence[int], hw: int, *, block: str = "reduced",
                   kernel_5x5: int = 5) -> dict[str, int]:
  """Closed-form cost of one ``Inception`` block on a ``hw x hw`` map with ``c_in`` channels.

  Returns ``c_out``, ``weights`` (conv kernels), ``params`` (kernels + BN scale and bias) and
  ``macs`` (conv multiply-adds; pooling and BN not counted).
  """
  c1, r3, c3, r5, c5, pool_proj = channels
  kk = kernel_5x5 * kernel_5x5
  if block == "naive":
    convs = [(c_in, c1, 1), (c_in, c3, 9), (c_in, c5, kk)]
    c_out = c1 + c3 + c5 + c_in
  else:
    convs = [(c_in, c1, 1), (c_in, r3, 1), (r3, c3, 9), (c_in, r5, 1), (r5, c5, kk),
             (c_in, pool_proj, 1)]
    c_out = c1 + c3 + c5 + pool_proj
  weights = sum(i * o * k for i, o, k in convs)
  return {"c_out": c_out, "weights": weights, "params": weights + sum(2 * o for _, o, _ in convs),
          "macs": weights * hw * hw}


def inception_cost_table(kernel_5x5: int = 5, image_size: int = 224) -> list[dict[str, Any]]:
  """Naive vs reduced cost of GoogLeNet's 9 blocks, each fed the input the (reduced) GoogLeNet
  gives it: rows ``{name, c_in, hw, naive: {...}, reduced: {...}}``."""
  pool = functools.partial(arith.pool_output_size, ceil_mode=True)
  hw3 = pool(pool(arith.conv_output_size(image_size, 7, 2, 3), 3, 2), 3, 2)  # stem, as built
  sizes = {"3": hw3, "4": pool(hw3, 3, 2), "5": pool(pool(hw3, 3, 2), 2, 2)}
  rows, c_in = [], 192
  for name, channels in googlenet.INCEPTION_CHANNELS.items():
    hw = sizes[name[0]]
    cost = {b: inception_cost(c_in, channels, hw, block=b, kernel_5x5=kernel_5x5)
            for b in BLOCKS}
    rows.append({"name": name, "c_in": c_in, "hw": hw, **cost})
    c_in = cost["reduced"]["c_out"]
  return rows


def module_cost(c_in: int, channels, hw: int, block: str, kernel_5x5: int) -> dict[str, int]:
  """Trainable parameters (``jax.eval_shape``), MACs (``summary``) and ``c_out`` of one block."""
  module = _Block(tuple(channels), block, kernel_5x5)
  x = jax.ShapeDtypeStruct((1, hw, hw, c_in), jnp.float32)
  variables, y = jax.eval_shape(lambda x: module.init_with_output(jax.random.key(0), x)[::-1], x)
  params = sum(math.prod(p.shape) for p in jax.tree.leaves(variables["params"]))
  return dict(params=params, macs=summary.summarize(module, (hw, hw, c_in)).total_macs,
              c_out=y.shape[-1])


def network_costs(kernel_5x5: int, image_size: int) -> dict[str, dict[str, int]]:
  """``{'3a': {params, macs}, ...}``: the reduced GoogLeNet's ``inception*`` summary rows."""
  model = models.create("googlenet", inception_block="reduced", kernel_5x5=kernel_5x5)
  rows = summary.summarize(model, (image_size, image_size, 3)).collapsed(1)
  return {r.path[0].removeprefix("inception"): dict(params=r.params, macs=r.macs)
          for r in rows if r.path and r.path[0].startswith("inception")}


def table(kernel_5x5: int, image_size: int) -> list[dict]:
  """Closed-form rows plus the module- and network-level checks (``*_check``: all equal)."""
  net = network_costs(kernel_5x5, image_size)
  rows = []
  for r in inception_cost_table(kernel_5x5, image_size):
    channels = googlenet.INCEPTION_CHANNELS[r["name"]]
    mod = {b: module_cost(r["c_in"], channels, r["hw"], b, kernel_5x5) for b in BLOCKS}
    keys = ("params", "macs", "c_out")
    rows.append(dict(
        block=r["name"], c_in=r["c_in"], hw=r["hw"],
        **{f"{b}_{k}": r[b][k] for b in BLOCKS for k in keys},
        params_ratio=r["naive"]["params"] / r["reduced"]["params"],
        macs_ratio=r["naive"]["macs"] / r["reduced"]["macs"],
        module=mod, network=net[r["name"]],
        module_check=all(mod[b][k] == r[b][k] for b in BLOCKS for k in keys),
        network_check=all(net[r["name"]][k] == r["reduced"][k] for k in ("params", "macs"))))
  return rows


def totals(rows) -> dict:
  out = {f"{b}_{k}": sum(r[f"{b}_{k}"] for r in rows) for b in BLOCKS for k in ("params", "macs")}
  out["params_ratio"] = out["naive_params"] / out["reduced_params"]
  out["macs_ratio"] = out["naive_macs"] / out["reduced_macs"]
  return out


def markdown(rows, tot) -> str:
  def fmt(r):
    return {**r, **{f"{b}_params": f"{r[f'{b}_params']:,}" for b in BLOCKS},
            **{f"{b}_mmacs": f"{r[f'{b}_macs'] / 1e6:,.1f}" for b in BLOCKS},
            "params_ratio": f"{r['params_ratio']:.2f}", "macs_ratio": f"{r['macs_ratio']:.2f}"}
  lines = [fmt(r) for r in rows] + [{**fmt(tot), "block": "**total**", "c_in": "", "hw": ""}]
  return report.markdown_table(lines, COLS)


def plot(rows, tot, kernel_5x5: int, image_size: int, out_path) -> str:
  """Two panels (params, MACs): naive vs reduced bars per block and the total, log scale."""
  names = [r["block"] for r in rows] + ["total"]
  fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
  x = np.arange(len(names))
  for ax, key, label in ((axes[0], "params", "parameters"), (axes[1], "macs", "multiply-adds")):
    vals = {b: [r[f"{b}_{key}"] for r in rows] + [tot[f"{b}_{key}"]] for b in BLOCKS}
    for off, b, color in ((-0.2, "naive", "#c44e52"), (0.2, "reduced", "#4878a8")):
      fig_no = "2a" if b == "naive" else "2b"
      ax.bar(x + off, vals[b], 0.4, color=color, label=f"{b} (fig. {fig_no})")
    for i, (n, d) in enumerate(zip(vals["naive"], vals["reduced"])):
      ax.text(i, n * 1.25, f"{n / d:.1f}x", ha="center", fontsize=7.5)
    ax.axvline(len(rows) - 0.5, color="gray", lw=0.8, ls=":")
    ax.set_xticks(x, names)
    ax.set_yscale("log")
    ax.set_ylim(top=max(vals["naive"]) * 3)
    ax.set_xlabel("GoogLeNet Inception block")
    ax.set_ylabel(f"{label} (log scale)")
    ax.set_title(f"{label}: naive / reduced ratio above the bars", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
  axes[0].legend(fontsize=8, loc="upper left")
  fig.suptitle(f"Inception block cost, naive vs 1x1-reduced (k={kernel_5x5} branch, "
               f"{image_size}x{image_size} input)", fontsize=10)
  return plotting.save(fig, out_path, dpi=100)


def run(cfg, workdir: str) -> dict:
  """Writes ``inception_cost.{md,json,png}`` into ``workdir``; returns rows, totals, Markdown."""
  if cfg.kernel_5x5 not in (3, 5) or cfg.image_size < 32:
    raise ConfigError(f"config.kernel_5x5={cfg.kernel_5x5!r}, config.image_size="
                      f"{cfg.image_size!r} is invalid: kernel_5x5 must be 3 or 5 and "
                      "image_size >= 32")
  rows = table(cfg.kernel_5x5, cfg.image_size)
  tot = totals(rows)
  md = markdown(rows, tot)
  report.write(workdir, "inception_cost", rows, markdown=md, extra={
      "kernel_5x5": cfg.kernel_5x5, "image_size": cfg.image_size, "totals": tot})
  png = plot(rows, tot, cfg.kernel_5x5, cfg.image_size, os.path.join(workdir, "inception_cost.png"))
  return dict(rows=rows, totals=tot, markdown=md, png=png)
