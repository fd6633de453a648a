"""Per-layer model summary: output shape, parameters, multiply-adds and receptive field.

Everything comes from abstract evaluation, nothing is computed or allocated:
``jax.eval_shape(model.init)`` gives the variables; ``jax.make_jaxpr(model.apply)`` under a
``flax.linen.intercept_methods`` interceptor gives the computation, with each module call's
equations tagged by a ``jax.named_scope`` (the mechanism ``flax_profile`` uses to label profiles)
and its output shape recorded. Equations are walked once (recursing into jit, custom-derivative
and remat calls and scan bodies, times their length; ``cond``/``while`` bodies are not counted):

- MACs: ``conv_general_dilated`` = ``out.size * (window * C_in/groups)`` and ``dot_general`` =
  ``out.size * contracted size``; everything else (norms, activations, pooling, adds) counts 0,
  as torchvision's "GFLOPS" column does. Each equation's MACs go to the innermost module call.
- Receptive field (Dumoulin & Visin: ``r += (k-1)*d*j``, ``j *= s``), per spatial dim, through
  convs, ``reduce_window`` pooling and strided slices; element-wise ops take the max over their
  inputs. Tensors that lost their spatial dims (global pooling, flatten) are ``'global'``;
  rearrangements it cannot follow are ``'?'``; a call that computes nothing (eval-mode dropout)
  shows ``-``. Assumes channels-last ``(N, *spatial, C)``.

A row is one module call (pre-order; repeated calls of a module count its parameters once);
``params`` and ``macs`` are the row's own (not its submodules'), so the rows sum to the totals.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jex_core

from cnnlab.models import registry

GLOBAL, UNKNOWN = "global", "?"
_MARK = "cnnlab_summary_call_"


@dataclasses.dataclass
class Row:
  path: tuple[str, ...]             # module path; () is the model itself.
  module: str                       # class name.
  output_shape: tuple[int, ...] | None = None
  params: int = 0
  macs: int = 0
  receptive_field: tuple[float, ...] | str | None = None  # per spatial dim, GLOBAL or UNKNOWN.


@dataclasses.dataclass
class Summary:
  model: str
  input_shape: tuple[int, ...]      # with batch dim.
  rows: list[Row]
  total_params: int
  total_macs: int

  def collapsed(self, depth: int) -> list[Row]:
    """Rows down to ``depth`` (0: the model only); deeper rows' params/MACs fold into their
    shown ancestor."""
    shown = [dataclasses.replace(r) for r in self.rows if len(r.path) <= depth]
    by_path = {r.path: r for r in shown}
    for r in self.rows:
      if len(r.path) > depth:
        anc = by_path[r.path[:depth]]
        anc.params += r.params
        anc.macs += r.macs
    return shown

  def to_markdown(self, depth: int | None = None) -> str:
    rows = self.rows if depth is None else self.collapsed(depth)
    lines = [f"{self.model} on input {_shape(self.input_shape)}", "",
             "| layer | module | output | params | MACs | receptive field |",
             "|---|---|---|---:|---:|---:|"]
    for r in rows:
      lines.append(f"| {'/'.join(r.path) or '(model)'} | {r.module} | {_shape(r.output_shape)} "
                   f"| {r.params:,} | {r.macs:,} | {_rf(r.receptive_field)} |")
    lines += ["", f"Total trainable parameters: {self.total_params:,}",
              f"Total multiply-adds: {self.total_macs:,} ({self.total_macs / 1e9:.3f} G)"]
    return "\n".join(lines)


def summarize(model: nn.Module | str, input_shape: Sequence[int] | None = None, *,
              batch_size: int = 1, dtype=jnp.float32, count_padding: bool = True,
              name: str | None = None) -> Summary:
  """Summarises ``model`` (a Linen module or a registered name) on ``(batch_size, *input_shape)``;
  ``input_shape`` defaults to the registered one. Eval mode (``train=False``).
  ``count_padding=False`` leaves out conv taps that fall on zero padding (as XLA's cost analysis
  does); the default counts every tap, as torchvision/fvcore do."""
  if isinstance(model, str):
    spec = registry.get_spec(model)
    name = name or model
    input_shape = spec.input_shape if input_shape is None else input_shape
    model = registry.create(model)
  if input_shape is None:
    raise ValueError("input_shape is required when model is a module, e.g. (224, 224, 3)")
  if batch_size < 1:
    raise ValueError(f"batch_size={batch_size!r} must be >= 1")
  x = jax.ShapeDtypeStruct((batch_size, *input_shape), dtype)
  rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
  variables = jax.eval_shape(model.init, rngs, x)
  params = variables.get("params", {})
  rows: list[Row] = []

  def interceptor(next_fun, args, kwargs, context):
    if context.method_name != "__call__":
      return next_fun(*args, **kwargs)
    idx = len(rows)
    rows.append(Row(tuple(context.module.path), type(context.module).__name__))
    with jax.named_scope(f"{_MARK}{idx}"):
      out = next_fun(*args, **kwargs)
    leaves = jax.tree.leaves(out)
    rows[idx].output_shape = tuple(leaves[0].shape) if leaves else None
    return out

  with nn.intercept_methods(interceptor):
    closed = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, x)

  seen = set()
  for r in rows:
    if r.path not in seen:
      seen.add(r.path)
      r.params = _own_params(params, r.path)
  n_spatial = len(input_shape) - 1
  env = {v: None for v in closed.jaxpr.invars}
  env[closed.jaxpr.invars[-1]] = ((1.0,) * n_spatial, (1.0,) * n_spatial)
  walker = _Walker(rows, n_spatial, count_padding)
  walker.walk(closed.jaxpr, env, (), 1)
  return Summary(name or type(model).__name__, x.shape, rows,
                 sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params)), walker.total_macs)


def _own_params(params, path) -> int:
  node = params
  for k in path:
    if not isinstance(node, dict) or k not in node:
      return 0
    node = node[k]
  if not isinstance(node, dict):
    return 0
  return sum(int(np.prod(v.shape)) for v in node.values() if hasattr(v, "shape"))


class _Walker:
  """Walks a jaxpr: MACs per module call and (receptive field, jump) per variable."""

  def __init__(self, rows, n_spatial, count_padding):
    self.rows, self.ns, self.count_padding, self.total_macs = rows, n_spatial, count_padding, 0

  def walk(self, jaxpr, env, stack, mult):
    for eqn in jaxpr.eqns:
      full = stack + tuple(str(eqn.source_info.name_stack).split("/"))
      calls = [int(t[len(_MARK):]) for t in full if t.startswith(_MARK)]
      ins = [env.get(v) if _is_var(v) else None for v in eqn.invars]
      sub = _sub_jaxpr(eqn)
      if sub is not None and len(sub.invars) == len(eqn.invars):
        sub_env = dict(zip(sub.invars, ins))
        sub_env.update({v: None for v in sub.constvars})
        self.walk(sub, sub_env, full, mult * eqn.params.get("length", 1))
        outs = [sub_env.get(v) if _is_var(v) else None for v in sub.outvars]
      else:
        macs = mult * _macs(eqn, self.count_padding)
        self.total_macs += macs
        if calls and macs:
          self.rows[calls[-1]].macs += macs
        outs = [self.rf(eqn, ins, o) for o in eqn.outvars]
      for o, rf in zip(eqn.outvars, outs):
        env[o] = rf
        for c in calls:  # the last value of a call's output shape made inside it is its output
          if tuple(o.aval.shape) == self.rows[c].output_shape:
            self.rows[c].receptive_field = rf if rf in (None, GLOBAL, UNKNOWN) else rf[0]

  def rf(self, eqn, ins, out):
    """(per-dim receptive field, per-dim jump) of ``out``, GLOBAL, UNKNOWN or None (no input)."""
    tracked = [(v, r) for v, r in zip(eqn.invars, ins) if r is not None]
    if not tracked:
      return None
    if any(r == GLOBAL for _, r in tracked):
      return GLOBAL
    shape, ns = tuple(out.aval.shape), self.ns
    if len(shape) < ns + 2:
      return GLOBAL
    if any(r == UNKNOWN for _, r in tracked):
      return UNKNOWN
    prim = eqn.primitive.name
    x, (r, j) = tracked[0]
    if prim == "conv_general_dilated" and x is eqn.invars[0]:
      dn, w = eqn.params["dimension_numbers"], eqn.invars[1].aval.shape
      lhs_sp = dn.lhs_spec[2:]
      if tuple(lhs_sp) != tuple(range(1, ns + 1)):
        return UNKNOWN
      ks = [w[d] for d in dn.rhs_spec[2:]]
      jin = [jj / ld for jj, ld in zip(j, eqn.params["lhs_dilation"])]
      return (tuple(rr + (k - 1) * d * jj for rr, k, d, jj in
                    zip(r, ks, eqn.params["rhs_dilation"], jin)),
              tuple(jj * s for jj, s in zip(jin, eqn.params["window_strides"])))
    if prim.startswith("reduce_window"):
      win, st = eqn.params["window_dimensions"], eqn.params["window_strides"]
      dil = eqn.params.get("window_dilation", (1,) * len(win))
      sp = range(1, ns + 1)
      return (tuple(rr + (win[a] - 1) * dil[a] * jj for rr, a, jj in zip(r, sp, j)),
              tuple(jj * st[a] for a, jj in zip(sp, j)))
    if prim == "slice" and eqn.params.get("strides"):
      st = eqn.params["strides"]
      return r, tuple(jj * st[a] for a, jj in zip(range(1, ns + 1), j))
    if prim == "pad":
      return r, j
    same = [rj for v, rj in tracked if tuple(v.aval.shape[1:ns + 1]) == shape[1:ns + 1]]
    if len(same) < len(tracked):
      return UNKNOWN
    return (tuple(max(t) for t in zip(*(a for a, _ in same))),
            tuple(max(t) for t in zip(*(b for _, b in same))))


def _is_var(v) -> bool:
  return not isinstance(v, jex_core.Literal)


_CALLS = ("pjit", "jit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
          "custom_vjp_call_jaxpr", "remat", "checkpoint", "scan")


def _sub_jaxpr(eqn):
  """The jaxpr of a call-like equation (jit, custom_jvp/vjp, remat, scan), else None."""
  if eqn.primitive.name not in _CALLS:
    return None
  for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
    j = eqn.params.get(key)
    if j is not None:
      return getattr(j, "jaxpr", j)
  return None


def _macs(eqn, count_padding: bool = True) -> int:
  prim = eqn.primitive.name
  if prim == "conv_general_dilated":
    return _conv_macs(eqn, count_padding)
  if prim == "dot_general":
    (lhs_contract, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval.shape
    return math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lhs_contract)
  return 0


def _conv_macs(eqn, count_padding: bool) -> int:
  """``out.size * window * C_in/groups``; without ``count_padding`` only the (output, tap)
  pairs that land on a real input pixel count (what XLA's cost analysis counts)."""
  p, dn = eqn.params, eqn.params["dimension_numbers"]
  lhs, w, out = (eqn.invars[0].aval.shape, eqn.invars[1].aval.shape, eqn.outvars[0].aval.shape)
  if count_padding:
    return math.prod(out) * math.prod(w[d] for d in dn.rhs_spec[1:])
  taps = 1
  for a, (i_ax, k_ax, o_ax) in enumerate(zip(dn.lhs_spec[2:], dn.rhs_spec[2:], dn.out_spec[2:])):
    i, k, o, ld = lhs[i_ax], w[k_ax], out[o_ax], p["lhs_dilation"][a]
    pos = (np.arange(o)[:, None] * p["window_strides"][a]
           + np.arange(k)[None, :] * p["rhs_dilation"][a] - p["padding"][a][0])
    taps *= int(np.sum((pos >= 0) & (pos <= (i - 1) * ld) & (pos % ld == 0)))
  spatial_out = math.prod(out[d] for d in dn.out_spec[2:])
  return math.prod(out) // spatial_out * w[dn.rhs_spec[1]] * taps


def _shape(s) -> str:
  return "-" if s is None else "x".join(map(str, s))


def _rf(rf) -> str:
  if rf is None:
    return "-"
  if isinstance(rf, str):
    return rf
  vals = [str(int(math.ceil(v))) for v in rf]
  return vals[0] if len(set(vals)) == 1 else "x".join(vals)
