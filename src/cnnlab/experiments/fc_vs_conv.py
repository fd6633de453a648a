"""Parameters of a conv layer vs a fully connected layer between the same feature maps.

A conv layer mapping ``C1 x H x W`` to ``C2 x H' x W'`` with an ``h x w`` kernel has
``C1*C2*h*w/groups`` weights (+ ``C2`` biases); a dense layer between the same (flattened) maps
has ``C1*H*W * C2*H'*W'`` weights (+ ``C2*H'*W'`` biases). The layers are the conv layers of
registry models at their registered input sizes, found by intercepting every ``cnnlab.nn.Conv``
call under ``jax.eval_shape`` (nothing is computed). ``check_layer`` re-counts both numbers from
real modules: a ``cnnlab.nn.Conv`` and a ``flax.linen.Dense`` on the flattened map, initialised
with ``jax.eval_shape`` (abstract, so the ~10^11-parameter dense layers cost nothing). The dense
layer gets a bias iff the conv has one (ResNet's convs have none: BatchNorm follows).
"""

from __future__ import annotations

import dataclasses
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib

from cnnlab import models, plotting
from cnnlab import nn as cnn
from cnnlab import report
from cnnlab.train.errors import ConfigError
from cnnlab.train.validate import check_subset

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLS = ["model", "layer", "input", "output", "kernel", "conv_params", "fc_params", "ratio"]


@dataclasses.dataclass(frozen=True)
class Layer:
  model: str
  path: str
  in_shape: tuple[int, int, int]    # (H, W, C1)
  out_shape: tuple[int, int, int]   # (H', W', C2)
  kernel: tuple[int, int]           # (h, w)
  strides: object
  padding: object
  groups: int
  use_bias: bool

  def conv_params(self) -> int:
    c1, (c2, (h, w)) = self.in_shape[-1], (self.out_shape[-1], self.kernel)
    return c1 * c2 * h * w // self.groups + (c2 if self.use_bias else 0)

  def fc_params(self) -> int:
    n_in, n_out = math.prod(self.in_shape), math.prod(self.out_shape)
    return n_in * n_out + (n_out if self.use_bias else 0)


def conv_layers(model_name: str) -> list[Layer]:
  """Every ``cnnlab.nn.Conv`` call of registry model ``model_name`` on one example of its
  registered input shape (eval mode), in call order."""
  spec = models.get_spec(model_name)
  model = models.create(model_name)
  x = jax.ShapeDtypeStruct((1, *spec.input_shape), jnp.float32)
  layers = []

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    m = context.module
    if isinstance(m, cnn.Conv) and context.method_name == "__call__":
      if len(m.kernel_size) != 2:
        raise ValueError(f"{model_name}: only 2D convs are tabulated, {m.path} is not")
      layers.append(Layer(model_name, "/".join(m.path), tuple(args[0].shape[1:]),
                          tuple(out.shape[1:]), tuple(m.kernel_size), m.strides, m.padding,
                          m.feature_group_count, m.use_bias))
    return out

  def forward(x):
    variables = model.init(jax.random.key(0), x)
    with nn.intercept_methods(interceptor):
      return model.apply(variables, x, train=False)

  jax.eval_shape(forward, x)
  return layers


def _count(variables) -> int:
  return sum(math.prod(p.shape) for p in jax.tree.leaves(variables["params"]))


def check_layer(layer: Layer) -> dict:
  """Parameter counts of a real ``cnnlab.nn.Conv`` and ``flax.linen.Dense`` for ``layer`` (by
  ``jax.eval_shape``), and the conv's output shape."""
  key = jax.random.key(0)
  conv = cnn.Conv(layer.out_shape[-1], layer.kernel, strides=layer.strides,
                  padding=layer.padding, feature_group_count=layer.groups,
                  use_bias=layer.use_bias)
  x = jax.ShapeDtypeStruct((1, *layer.in_shape), jnp.float32)
  conv_vars, y = jax.eval_shape(lambda x: conv.init_with_output(key, x)[::-1], x)
  dense = nn.Dense(math.prod(layer.out_shape), use_bias=layer.use_bias)
  flat = jax.ShapeDtypeStruct((1, math.prod(layer.in_shape)), jnp.float32)
  dense_vars = jax.eval_shape(dense.init, key, flat)
  return dict(conv_params=_count(conv_vars), fc_params=_count(dense_vars),
              conv_out_shape=tuple(y.shape[1:]))


def table(model_names) -> list[dict]:
  """One row per conv layer of each model: shapes, formula counts, module counts, ratio."""
  rows = []
  for name in model_names:
    for layer in conv_layers(name):
      checked = check_layer(layer)
      conv_p, fc_p = layer.conv_params(), layer.fc_params()
      rows.append(dict(
          model=name, layer=layer.path, input="x".join(map(str, layer.in_shape)),
          output="x".join(map(str, layer.out_shape)), kernel="x".join(map(str, layer.kernel)),
          bias=layer.use_bias, conv_params=conv_p, fc_params=fc_p, ratio=fc_p / conv_p,
          conv_module_params=checked["conv_params"], fc_module_params=checked["fc_params"],
          formula_matches_modules=(checked["conv_params"] == conv_p
                                   and checked["fc_params"] == fc_p
                                   and checked["conv_out_shape"] == layer.out_shape)))
  return rows


def totals(rows) -> list[dict]:
  """Per model: all its conv layers together (conv vs FC replacements)."""
  out = []
  for name in dict.fromkeys(r["model"] for r in rows):
    mine = [r for r in rows if r["model"] == name]
    conv_p, fc_p = sum(r["conv_params"] for r in mine), sum(r["fc_params"] for r in mine)
    out.append(dict(model=name, layers=len(mine), conv_params=conv_p, fc_params=fc_p,
                    ratio=fc_p / conv_p))
  return out


def markdown(rows, sums) -> str:
  def fmt(r):
    return {**r, "conv_params": f"{r['conv_params']:,}", "fc_params": f"{r['fc_params']:,}",
            "ratio": f"{r['ratio']:.3g}"}
  ok = all(r["formula_matches_modules"] for r in rows)
  return "\n".join([
      report.markdown_table([fmt(r) for r in rows], COLS), "",
      report.markdown_table([fmt(s) for s in sums],
                            ["model", "layers", "conv_params", "fc_params", "ratio"]), "",
      f"Formula == jax.eval_shape count of cnnlab.nn.Conv / flax.linen.Dense (incl. biases) "
      f"for all {len(rows)} layers: {ok}."])


def plot(rows, out_path) -> str:
  """Horizontal log-scale bars per layer: conv vs FC parameters, ratio annotated."""
  n = len(rows)
  fig, ax = plt.subplots(figsize=(9, 0.24 * n + 1.2))
  pos = list(range(n))[::-1]
  ax.barh([p + 0.2 for p in pos], [r["fc_params"] for r in rows], 0.4, color="#c44e52",
          label="fully connected (same maps)")
  ax.barh([p - 0.2 for p in pos], [r["conv_params"] for r in rows], 0.4, color="#4878a8",
          label="conv")
  for p, r in zip(pos, rows):
    ax.text(r["fc_params"] * 1.4, p, f"x{r['ratio']:.1e}", va="center", fontsize=6.5)
  ax.set_yticks(pos, [f"{r['model']} {r['layer']}  {r['input']}->{r['output']}" for r in rows],
                fontsize=6.5)
  ax.set_xscale("log")
  ax.set_xlim(10, max(r["fc_params"] for r in rows) * 60)
  ax.set_xlabel("parameters (log scale, incl. biases)")
  ax.set_title("Conv layer vs a dense layer between the same feature maps", fontsize=10)
  ax.grid(axis="x", alpha=0.3)
  ax.legend(fontsize=8, loc="lower right")
  return plotting.save(fig, out_path, dpi=100)


def run(cfg, workdir: str) -> dict:
  """Writes ``fc_vs_conv.{md,json,png}`` into ``workdir``; returns rows, totals, Markdown."""
  check_subset(cfg, "models", models.list_models(), "registered models")
  try:
    rows = table(cfg.models)
  except ValueError as e:  # a model with 1D/3D convs
    raise ConfigError(f"config.models={tuple(cfg.models)!r} is invalid: {e}") from None
  sums = totals(rows)
  md = markdown(rows, sums)
  report.write(workdir, "fc_vs_conv", rows, markdown=md, extra={"totals": sums})
  png = plot(rows, os.path.join(workdir, "fc_vs_conv.png"))
  return dict(rows=rows, totals=sums, markdown=md, png=png)
