"""``depthwise`` conv: ``groups == C_in`` as a sum of shifted elementwise products, own VJP.

Kernel ``(*window, 1, C*m)`` (channel multiplier ``m = C_out / C_in``; output channel ``c*m + j``
reads input channel ``c``, docs/conventions.md, "Layouts"). With ``K = prod(window)`` offsets
and ``x_k`` the zero-padded input under offset ``k`` (``conv_parts.window_slice``):

- forward: ``y[..., c*m + j] = sum_k x_k[..., c] * w[k, c*m + j]``;
- input grad: the transposed scatter ``dx[o*s + k*d - lo, c] += sum_j g[o, c*m + j] *
  w[k, c*m + j]``, computed per stride phase (``_input_grad``) so that no product is spent on
  the zeros a stride-dilated cotangent would hold (Dumoulin & Visin 2016, transposed convs);
- weight grad: ``dw[k, c*m + j] = sum over batch and output positions of x_k[..., c] *
  g[..., c*m + j]``.

``lax``'s ``feature_group_count = C`` weight gradient is a ``batch_group_count = C`` conv that
XLA's CPU backend expands into a dense, ``C`` times larger one; these elementwise sums are not.
Forward and each input-grad phase are one fused elementwise loop. The weight grad's ``K``
sums are one variadic ``lax.reduce`` per tile (one pass over its inputs), in a ``lax.scan``
over tiles of one example and some rows of the first spatial dim (about ``TILE_ELEMENTS``
output elements; the row count divides the output rows): docs/performance.md, "Depthwise
convs", gives the timings behind the form and the tile size. Tiling the other two passes the same
way made them slower; ``lax.map`` over chunks of 2-4 examples sped them up alone but slowed the
jitted fwd+bwd by 10 %.
Accumulates in ``conv_parts.accum_dtype`` (float32 for bfloat16) and casts back.

On CPU, float32 2D convs without a multiplier run each pass as a C++ kernel instead
(``cnnlab.ops.native``, ``depthwise.cc``; 3-5x faster than these forms on the weight gradient,
docs/performance.md, "A native depthwise kernel"), chosen per platform when lowering
(``lax.platform_dependent``); these forms serve every other case and ``native.disabled()``.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cnnlab.ops import native
from cnnlab.ops import padding as padlib
from cnnlab.ops.conv_case import output_spatial
from cnnlab.ops.conv_parts import accum_dtype, window_slice
from cnnlab.ops.conv_registry import register_impl

TILE_ELEMENTS = 262144  # output elements per scan step (1 MB of float32)
# The C++ handlers of native/depthwise.cc: forward, input grad, weight grad.
NATIVE = ("CnnlabDepthwiseForward", "CnnlabDepthwiseInputGrad", "CnnlabDepthwiseWeightGrad")


def _limits(case):
  c_in = case.x_shape[-1]
  if case.groups != c_in:
    return (f"groups: depthwise needs groups == C_in ({c_in}), got groups={case.groups}; "
            "lax, im2col or shift serve other group counts")
  return None


def _block(out_shape) -> int:
  """Rows per tile: the largest divisor of ``out_shape[1]`` with at most ``TILE_ELEMENTS``
  elements (at least 1 row); ``out_shape`` ``(N, rows, ...)``."""
  limit = max(1, TILE_ELEMENTS // math.prod(out_shape[2:]))
  return max(b for b in range(1, min(out_shape[1], limit) + 1) if out_shape[1] % b == 0)


def _sum_tiles(fn, init, srcs, out_shape):
  """``init + sum_tiles fn(tile_out_spatial, *tiles)`` by ``lax.scan`` over tiles of one example
  and ``b`` rows (``_block``) of the output ``out_shape`` ``(N, rows, ..., C)``.

  ``srcs``: ``(a, step, span)`` triples; tile ``r`` of example ``n`` sees rows
  ``[r*b*step, r*b*step + (b-1)*step + span)`` of ``a[n:n+1]``.
  """
  n, rows = out_shape[:2]
  b = _block(out_shape)
  blocks = rows // b

  def step(total, i):
    e, r = i // blocks, i % blocks
    tiles = [lax.dynamic_slice(a, (e, r * b * s, *(0,) * (a.ndim - 2)),
                               (1, (b - 1) * s + span, *a.shape[2:])) for a, s, span in srcs]
    return total + fn((b, *out_shape[2:-1]), *tiles), None

  return lax.scan(step, init, jnp.arange(n * blocks))[0]


def _shifted_sum(xp, w_KxC, window, stride, dilation, out_spatial):
  """``sum_k window_slice(xp, k) * w[k]`` in ``w``'s dtype: ``xp`` ``(n, *spatial, C)``,
  ``w`` ``(K, C)`` -> ``(n, *out_spatial, C)``."""
  y = 0
  for i, k in enumerate(np.ndindex(*window)):
    y = y + window_slice(xp, k, stride, dilation, out_spatial).astype(w_KxC.dtype) * w_KxC[i]
  return y


def _repeat(a, m):
  """Channel ``c`` -> channels ``c*m .. c*m + m-1`` (the multiplier's layout)."""
  return a if m == 1 else jnp.repeat(a, m, axis=-1)


def _span(window, dilation):
  """Input rows one output row reads: ``d*(k-1) + 1`` along the first spatial dim."""
  return (window[0] - 1) * dilation[0] + 1


def _forward(x, w, stride, pads, dilation):
  """``x`` ``(N, *spatial, C)``, ``w`` ``(*window, 1, C*m)`` -> ``y`` ``(N, *out, C*m)``."""
  window, c_out = w.shape[:-2], w.shape[-1]
  out = output_spatial(x.shape[1:-1], window, stride, pads, dilation)
  xp = _repeat(padlib.pad_input(x, pads, "zeros"), c_out // x.shape[-1])
  w_KxC = w.reshape(-1, c_out).astype(accum_dtype(x.dtype))
  return _shifted_sum(xp, w_KxC, window, stride, dilation, out).astype(x.dtype)


def _input_grad(w, g, x_shape, stride, pads, dilation):
  """Cotangent ``g`` ``(N, *out, C*m)`` -> ``dx`` ``(N, *x_spatial, C)`` in ``g``'s dtype.

  Per stride phase: along a dim, padded input position ``p = q*s + r`` receives tap ``k`` iff
  ``k*d = r (mod s)``, from ``g[q - k*d // s]``; so each of the ``prod(stride)`` phases is a
  sum of shifted slices of the (low-padded) ``g`` over its taps, and the phases interleave
  into ``dx``. ``q`` runs over ``[q0, q0 + n_q)``, which covers the unpadded ``[lo, lo + i)``.
  """
  window, c_out = w.shape[:-2], w.shape[-1]
  n, c, nd = g.shape[0], x_shape[-1], len(window)
  w_KxC = w.reshape(-1, c_out).astype(accum_dtype(g.dtype))
  q0 = [lo // s for (lo, _), s in zip(pads, stride)]
  n_q = [-(-(lo + i) // s) - a for (lo, _), i, s, a in zip(pads, x_shape[1:-1], stride, q0)]
  top = [(k - 1) * d // s for k, d, s in zip(window, dilation, stride)]  # largest shift
  gp = jnp.pad(g, ((0, 0), *((t, max(0, a + b - o)) for t, a, b, o in
                             zip(top, q0, n_q, g.shape[1:-1])), (0, 0)))
  phases = []
  for r in itertools.product(*map(range, stride)):
    dx = jnp.zeros((n, *n_q, c_out), w_KxC.dtype)
    for tap, k in enumerate(np.ndindex(*window)):
      if all(kj * d % s == rj for kj, d, s, rj in zip(k, dilation, stride, r)):
        start = [a - kj * d // s + t for kj, d, s, a, t in zip(k, dilation, stride, q0, top)]
        g_k = lax.slice(gp, (0, *start, 0), (n, *(a + b for a, b in zip(start, n_q)), c_out))
        dx = dx + g_k.astype(w_KxC.dtype) * w_KxC[tap]
    phases.append(dx.reshape(*dx.shape[:-1], c, -1).sum(-1))
  # (*stride, N, *n_q, C) -> (N, n_q[0], stride[0], ..., C): interleave, then crop to x.
  dx = jnp.stack(phases).reshape(*stride, n, *n_q, c)
  dx = dx.transpose(nd, *itertools.chain.from_iterable((nd + 1 + j, j) for j in range(nd)),
                    2 * nd + 1).reshape(n, *(b * s for b, s in zip(n_q, stride)), c)
  start = [lo - a * s for (lo, _), a, s in zip(pads, q0, stride)]
  return lax.slice(dx, (0, *start, 0), (n, *(a + i for a, i in zip(start, x_shape[1:-1])), c)
                   ).astype(g.dtype)


def _weight_grad(x, g, w_shape, stride, pads, dilation):
  """``dw`` ``w_shape`` in accum dtype, from ``x`` ``(N, *spatial, C)`` and cotangent ``g``."""
  window, c_out = w_shape[:-2], w_shape[-1]
  m = c_out // x.shape[-1]
  acc = accum_dtype(x.dtype)

  def tile(out_t, xp_t, g_t):
    xp_t, g_t = _repeat(xp_t, m).astype(acc), g_t.astype(acc)
    products = [window_slice(xp_t, k, stride, dilation, out_t) * g_t
                for k in np.ndindex(*window)]
    # One variadic reduce: all K sums in one pass over the tile (K separate sums: 1.7-1.9x slower).
    sums = lax.reduce(products, [jnp.zeros((), acc)] * len(products),
                      lambda a, b: [u + v for u, v in zip(a, b)], tuple(range(g_t.ndim - 1)))
    return jnp.stack(sums)

  xp = padlib.pad_input(x, pads, "zeros")
  dw = _sum_tiles(tile, jnp.zeros((math.prod(window), c_out), acc),
                  [(xp, stride[0], _span(window, dilation)), (g, 1, 1)], g.shape)
  return dw.reshape(w_shape)


def _native_serves(x, w) -> bool:
  """Whether the C++ kernels take this conv: 2D, multiplier 1, ``native.serves``."""
  return (x.ndim == 4 and w.shape[-1] == x.shape[-1]
          and native.serves("depthwise", NATIVE, x, w))


def _native(target, out_shape, stride, pads, dilation):
  """The native ``target`` (``NATIVE``) as a function of its two operands, kernels as
  ``(KH, KW, C)``, -> float32 ``out_shape``."""
  return native.call(target, out_shape, sh=stride[0], sw=stride[1], dh=dilation[0],
                     dw=dilation[1], ph=pads[0][0], pw=pads[1][0])


def _hwc(w):
  """Kernel ``(KH, KW, 1, C)`` -> ``(KH, KW, C)``."""
  return w.reshape(w.shape[:2] + w.shape[3:])


def _any_forward(x, w, stride, pads, dilation):
  xla = lambda x, w: _forward(x, w, stride, pads, dilation)  # noqa: E731
  if not _native_serves(x, w):
    return xla(x, w)
  out = (x.shape[0], *output_spatial(x.shape[1:-1], w.shape[:-2], stride, pads, dilation),
         w.shape[-1])
  call = _native(NATIVE[0], out, stride, pads, dilation)
  return lax.platform_dependent(x, w, cpu=lambda x, w: call(x, _hwc(w)), default=xla)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _depthwise(x, w, stride, pads, dilation):
  return _any_forward(x, w, stride, pads, dilation)


def _depthwise_fwd(x, w, stride, pads, dilation):
  return _any_forward(x, w, stride, pads, dilation), (x, w)


def _depthwise_bwd(stride, pads, dilation, res, g):
  x, w = res
  dx = lambda g, w: _input_grad(w, g, x.shape, stride, pads, dilation)  # noqa: E731
  dw = lambda x, g: _weight_grad(x, g, w.shape, stride, pads, dilation)  # noqa: E731
  if not _native_serves(x, w):
    return dx(g, w).astype(x.dtype), dw(x, g).astype(w.dtype)
  call_dx = _native(NATIVE[1], x.shape, stride, pads, dilation)
  call_dw = _native(NATIVE[2], _hwc(w).shape, stride, pads, dilation)
  return (lax.platform_dependent(g, w, cpu=lambda g, w: call_dx(g, _hwc(w)), default=dx),
          lax.platform_dependent(x, g, cpu=lambda x, g: call_dw(x, g).reshape(w.shape),
                                 default=dw))


_depthwise.defvjp(_depthwise_fwd, _depthwise_bwd)


@register_impl("depthwise", limits=_limits)
def conv_depthwise(x, w, *, stride, pads, dilation, groups):
  del groups  # == C_in, checked by _limits
  return _depthwise(x, w, tuple(stride), tuple(map(tuple, pads)), tuple(dilation))
