"""N-d convolution (cross-correlation, as every DL framework computes it) with swappable impls.

``x``: ``(N, *spatial, C_in)`` channels-last; ``w``: ``(*window, C_in/groups, C_out)`` (Flax
layout). Output ``(N, *out_spatial, C_out)``, ``out = floor((i + lo + hi - d*(k-1) - 1)/s) + 1``.
Groups split ``C_in`` and ``C_out`` into contiguous blocks (as ``lax``/torch do). Layouts and
padding conventions: docs/conventions.md.

``impl`` picks how it is computed; every impl gives the same numbers as ``lax``:

- ``lax``: ``lax.conv_general_dilated`` (``conv_lax.py``).
- ``fenced``: ``lax`` on its input behind a fusion fence, for XLA's CPU backend, whose
  weight-gradient conv would otherwise recompute the input's producers (``conv_fenced.py``).
- ``im2col``: patch matrix by strided slicing, then one matmul (``conv_im2col.py``).
- ``shift``: sum over kernel offsets of strided-slice x kernel-slice matmuls (``conv_shift.py``).
- ``fft``: ``rfftn`` product, ``irfftn``, crop and subsample (``conv_fft.py``).
- ``matmul`` / ``matmul_sparse``: the conv as an explicit dense / BCOO matrix (``conv_matmul.py``,
  which also exports ``conv_matrix``); small inputs only.
- ``winograd`` F(2x2,3x3) and ``winograd_f4`` F(4x4,3x3): 2D, 3x3, stride 1, no dilation
  (``conv_winograd.py``).
- ``depthwise``: ``groups == C_in`` as shifted elementwise products with its own VJP, on the CPU
  a C++ kernel per pass for float32 2D convs (``conv_depthwise.py``, ``native/``).
- ``direct``: 2D, ``groups == 1``, channels multiples of 8: on the CPU C++ loops over register
  tiles per pass for float32 (``conv_direct.py``, ``native/``), ``lax`` elsewhere.
- ``rows``: the kernel's rows stacked as input channels, then ``lax``'s conv one row tall
  (``conv_rows.py``): for convs fed by few channels.
- ``cols``: output columns folded into channels (space-to-depth on the last axis), then ``rows``
  (``conv_cols.py``): for convs fed by 1-3 channels.
- ``few``: 2D, ``groups == 1``: on the CPU a C++ forward and weight gradient for float32
  (``conv_few.py``, ``native/``), ``cols``/``rows`` for the input gradient and elsewhere.
- ``perpass``: forward, input grad and weight grad each by its own impl (``conv_perpass.py``).
- ``auto``: one of the above per shape, from a benchmark cache (``conv_auto.py``).

Argument parsing lives in ``conv_case.py``, the registry and capability checks (``supports``,
``impls_supporting``, ``unsupported_reason``) in ``conv_registry.py``; the impl modules import
those two and register themselves; this module imports the impls, nothing imports it back.
``conv`` raises a ``ValueError`` naming the impl, the option and the impls that can, on shapes
alone, before any compilation.
Dtypes: ``x`` and ``w`` share one floating dtype; the output has it too. Matmul impls accumulate
low-precision inputs (bfloat16/float16) in float32; ``fft`` and ``winograd`` compute in float32.
"""

from __future__ import annotations

import jax.numpy as jnp

# The impl modules register themselves when imported, in this order (``list_impls()``).
from cnnlab.ops import conv_lax, conv_fenced  # noqa: F401  (isort: keep the registration order)
from cnnlab.ops import conv_fft, conv_im2col, conv_matmul, conv_shift  # noqa: F401
from cnnlab.ops import conv_winograd, conv_depthwise, conv_rows, conv_cols  # noqa: F401
from cnnlab.ops import conv_direct, conv_few  # noqa: F401
from cnnlab.ops import conv_auto  # noqa: F401
from cnnlab.ops import conv_perpass  # noqa: F401  (after the impls its passes use)
from cnnlab.ops import padding as padlib
from cnnlab.ops import conv_registry
from cnnlab.ops.conv_case import make_case


def conv(x, w, *, stride=1, padding="VALID", dilation=1, groups=1, padding_mode="zeros",
         impl="lax"):
  """Convolves ``x`` ``(N, *spatial, C_in)`` with ``w`` ``(*window, C_in/groups, C_out)``."""
  conv_registry.get_impl(impl)
  x, w = jnp.asarray(x), jnp.asarray(w)
  case = make_case(x.shape, w.shape, x.dtype, w.dtype, stride=stride, padding=padding,
                   dilation=dilation, groups=groups, padding_mode=padding_mode)
  fn = conv_registry.check(impl, case)
  if padding_mode != "zeros":
    x = padlib.pad_input(x, padlib.explicit_padding(padding, x.shape[1:-1], case.window,
                                                    case.stride, case.dilation), padding_mode)
  return fn(x, w, stride=case.stride, pads=case.pads, dilation=case.dilation, groups=case.groups)
