"""``perpass`` conv: forward, input grad and weight grad each by its own method (``custom_vjp``).

A method is a registered impl name; a pass by method ``m`` is impl ``m``'s forward, or the VJP of
impl ``m`` w.r.t. ``x`` (input grad) or ``w`` (weight grad) alone, so each pass reuses that
impl's code: the weight grad by ``im2col`` is ``patches(x)^T g``, one matmul on the dot path
(``conv_im2col``); by ``shift`` it is ``sum_k x_k^T g``, one matmul per kernel offset without a
patch matrix (``conv_shift``); by ``lax`` it is XLA's weight-gradient conv.

``make_perpass(fwd=, dx=, dw=)`` -> ``(fn, limits)`` for any methods (per-pass benchmarks);
``perpass`` is registered with ``DEFAULT_METHODS``: the mix with the best geometric-mean fwd+bwd
time over the ResNet 3x3 stages on one CPU core with XLA's default options, still about
``lax``'s (docs/performance.md, "Per-pass choice"). The impl serves a case iff each method's
impl does; the reason names the pass.
"""

from __future__ import annotations

import functools

import jax

from cnnlab.ops.conv_registry import get_impl, register_impl, unsupported_reason

PASSES = ("fwd", "dx", "dw")
DEFAULT_METHODS = {"fwd": "lax", "dx": "lax", "dw": "shift"}


def make_perpass(**methods: str):
  """``(fn, limits)``: ``fn(x, w, *, stride, pads, dilation, groups)`` computing each pass
  (``fwd=``, ``dx=``, ``dw=``; the others by :data:`DEFAULT_METHODS`) by the registered impl named
  for it; ``limits(case)`` the first pass whose impl cannot serve it."""
  if set(methods) - set(PASSES):
    raise ValueError(f"passes {sorted(set(methods) - set(PASSES))} are not among {PASSES}")
  methods = {**DEFAULT_METHODS, **methods}
  impls = {p: get_impl(m) for p, m in methods.items()}  # ValueError for an unknown method

  def limits(case):
    for p, m in methods.items():
      reason = unsupported_reason(m, case)
      if reason is not None:
        return f"{p} by {m!r} (perpass methods {methods}): {reason}"
    return None

  @functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
  def conv(x, w, kw):
    return impls["fwd"](x, w, **dict(kw))

  def conv_fwd(x, w, kw):
    return conv(x, w, kw), (x, w)

  def conv_bwd(kw, res, g):
    x, w = res
    kw = dict(kw)
    _, dx_vjp = jax.vjp(lambda x_: impls["dx"](x_, w, **kw), x)
    _, dw_vjp = jax.vjp(lambda w_: impls["dw"](x, w_, **kw), w)
    return dx_vjp(g)[0], dw_vjp(g)[0]

  conv.defvjp(conv_fwd, conv_bwd)

  def fn(x, w, *, stride, pads, dilation, groups):
    kw = (("stride", tuple(stride)), ("pads", tuple(map(tuple, pads))),
          ("dilation", tuple(dilation)), ("groups", groups))
    return conv(x, w, kw)

  return fn, limits


_fn, _limits = make_perpass()
register_impl("perpass", limits=_limits)(_fn)
