"""``matmul`` / ``matmul_sparse`` conv: the conv as one explicit (doubly-block Toeplitz) matrix.

``conv_matrix(w, in_spatial, ...)`` returns ``T`` ``(prod(out)*C_out, prod(in)*C_in)`` with
``conv(x, w)[n].ravel() == T @ x[n].ravel()`` (channels-last ravel; zero padding is folded in:
taps that fall on padding have no entry). In 1D with one channel, ``T[o, i] = w[i - o*s + lo]``
(constant along diagonals for stride 1: Toeplitz); in 2D it is block Toeplitz with Toeplitz
blocks. Entries are ``w`` values scattered to static (numpy) positions, so ``T`` is
differentiable in ``w``. For teaching and small inputs: the dense matrix has
``prod(out)*prod(in)*C_out*C_in`` entries (capped at ``MAX_DENSE_ENTRIES``); the BCOO one stores
only the ``prod(out)*K*C_in*C_out/groups`` non-zeros (capped at ``MAX_SPARSE_NNZ``).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse

from cnnlab.ops.conv_case import ConvCase, make_case, output_spatial
from cnnlab.ops.conv_parts import accum_dtype
from cnnlab.ops.conv_registry import register_impl

MAX_DENSE_ENTRIES = 2**22  # 16 MiB in float32
MAX_SPARSE_NNZ = 2**18  # beyond this, compile and run times reach seconds on CPU


def matrix_indices(w_shape, in_spatial, stride, pads, dilation, groups):
  """Static (numpy) ``rows, cols, w_idx`` with ``T[rows, cols] = w.ravel()[w_idx]``; ``T.shape``."""
  window, (cg, c_out) = w_shape[:-2], w_shape[-2:]
  og = c_out // groups
  out = output_spatial(in_spatial, window, stride, pads, dilation)
  o = np.stack(np.meshgrid(*map(np.arange, out), indexing="ij"), -1).reshape(-1, 1, len(out))
  k = np.stack(np.meshgrid(*map(np.arange, window), indexing="ij"), -1).reshape(1, -1, len(out))
  lo = np.array([p[0] for p in pads])
  i = o * np.array(stride) + k * np.array(dilation) - lo               # (O, K, nd) input positions
  valid = np.all((i >= 0) & (i < np.array(in_spatial)), axis=-1)
  o_flat = np.broadcast_to(np.ravel_multi_index(np.moveaxis(o, -1, 0), out), valid.shape)[valid]
  k_flat = np.broadcast_to(np.ravel_multi_index(np.moveaxis(k, -1, 0), window), valid.shape)[valid]
  i_flat = np.ravel_multi_index(np.moveaxis(i[valid], -1, 0), in_spatial)
  g, ci, co = np.meshgrid(np.arange(groups), np.arange(cg), np.arange(og), indexing="ij")
  chan_out, chan_in = (g * og + co).ravel(), (g * cg + ci).ravel()
  rows = (o_flat[:, None] * c_out + chan_out).ravel()
  cols = (i_flat[:, None] * (cg * groups) + chan_in).ravel()
  w_idx = ((k_flat[:, None] * cg + ci.ravel()) * c_out + chan_out).ravel()
  shape = (math.prod(out) * c_out, math.prod(in_spatial) * cg * groups)
  return rows, cols, w_idx, shape


def conv_matrix(w, in_spatial, *, stride=1, padding="VALID", dilation=1, groups=1,
                sparse_format=False):
  """``T`` with ``conv(x, w, ...)[n].ravel() == T @ x[n].ravel()`` for ``x`` of ``in_spatial``.

  Dense ``jnp`` array, or a ``jax.experimental.sparse.BCOO`` if ``sparse_format``.
  Zero padding only (pad ``x`` yourself for other padding modes).
  """
  in_spatial = tuple(in_spatial)
  case = make_case((1, *in_spatial, w.shape[-2] * groups), w.shape, w.dtype, w.dtype,
                   stride=stride, padding=padding, dilation=dilation, groups=groups)
  return _matrix(w, case, sparse_format)


def _matrix(w, case, sparse_format):
  rows, cols, w_idx, shape = matrix_indices(case.w_shape, case.x_shape[1:-1], case.stride,
                                            case.pads, case.dilation, case.groups)
  data = w.ravel()[w_idx]
  if sparse_format:
    return sparse.BCOO((data, jnp.asarray(np.stack([rows, cols], -1))), shape=shape,
                       unique_indices=True)
  return jnp.zeros(shape, w.dtype).at[rows, cols].set(data, unique_indices=True)


def _case(x, w, stride, pads, dilation, groups):
  return ConvCase(x.shape, w.shape, stride, pads, dilation, groups, x.dtype)


def _dense_limits(case):
  out = case.out_spatial
  n = math.prod(out) * math.prod(case.x_shape[1:-1]) * case.x_shape[-1] * case.w_shape[-1]
  if n > MAX_DENSE_ENTRIES:
    return (f"input size: the dense conv matrix would have {n:,} entries "
            f"(> MAX_DENSE_ENTRIES={MAX_DENSE_ENTRIES:,}); matmul is for small inputs")
  return None


def _sparse_limits(case):
  nnz = math.prod(case.out_spatial) * math.prod(case.w_shape)
  if nnz > MAX_SPARSE_NNZ:
    return (f"input size: the sparse conv matrix would store up to {nnz:,} entries "
            f"(> MAX_SPARSE_NNZ={MAX_SPARSE_NNZ:,}); matmul_sparse is for small inputs")
  return None


def _apply(t, x, out_spatial):
  acc = accum_dtype(x.dtype)
  x_NxF = x.reshape(x.shape[0], -1)
  dims = (((1,), (1,)), ((), ()))
  if isinstance(t, sparse.BCOO):
    y = sparse.bcoo_dot_general(x_NxF, t, dimension_numbers=dims, preferred_element_type=acc)
  else:
    y = jnp.einsum("nf,of->no", x_NxF, t, preferred_element_type=acc)
  return y.reshape(x.shape[0], *out_spatial, -1).astype(x.dtype)


@register_impl("matmul", limits=_dense_limits)
def conv_matmul(x, w, *, stride, pads, dilation, groups):
  case = _case(x, w, stride, pads, dilation, groups)
  return _apply(_matrix(w, case, False), x, case.out_spatial)


@register_impl("matmul_sparse", limits=_sparse_limits)
def conv_matmul_sparse(x, w, *, stride, pads, dilation, groups):
  case = _case(x, w, stride, pads, dilation, groups)
  return _apply(_matrix(w, case, True), x, case.out_spatial)
