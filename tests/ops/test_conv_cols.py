"""``cols``: it computes what it says (the folded kernel equals a brute-force construction; one
``rows`` conv with stride and dilation 1 on the last axis over ``S x C_in`` channels); its numbers
against ``lax`` are in tests/ops/test_conv_impls.py and tests/ops/test_conv_torch.py."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import ops
from cnnlab.ops import conv_cols


def brute_force_fold(w, s, t, d, groups):
  """``w`` ``(K0, K, C_in/g, C_out)`` folded by loops: entry ``[., j, (i, c), (g, r, o)]`` is
  ``w[., k, c, (g, o)]`` where ``j*S + i == r*t + k*d``."""
  k0, k, cg, c_out = w.shape
  og, S = c_out // groups, s * t
  nb = ((s - 1) * t + (k - 1) * d) // S + 1
  out = np.zeros((k0, nb, S, cg, groups, s, og), w.dtype)
  for j, i, r, kk in itertools.product(range(nb), range(S), range(s), range(k)):
    if j * S + i == r * t + kk * d:
      for g in range(groups):
        out[:, j, i, :, g, r, :] = w[:, kk, :, g * og:(g + 1) * og]
  return out.reshape(k0, nb, S * cg, groups * s * og)


@pytest.mark.parametrize("k,s,t,d,groups", [(5, 4, 1, 1, 1), (7, 2, 2, 1, 1), (3, 3, 2, 2, 2),
                                             (2, 4, 3, 3, 1)])
def test_folded_kernel_is_the_block_toeplitz_one(k, s, t, d, groups):
  w = np.random.default_rng(0).standard_normal((3, k, 2, 4 * groups)).astype(np.float32)
  nb = ((s - 1) * t + (k - 1) * d) // (s * t) + 1
  got = conv_cols._fold_kernel(jnp.asarray(w), s, t, d, nb, groups)
  np.testing.assert_array_equal(np.asarray(got), brute_force_fold(w, s, t, d, groups))


def test_one_conv_over_folded_columns_with_unit_stride_on_the_last_axis():
  x, w = jnp.zeros((2, 12, 30, 1)), jnp.zeros((5, 7, 1, 6))
  jaxpr = jax.make_jaxpr(lambda x, w: ops.conv(x, w, stride=2, padding=3, impl="cols"))(x, w)
  (conv,) = [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
  s = conv_cols.fold_factor(1)
  assert s == 4
  nb = ((s - 1) * 2 + 6) // (s * 2) + 1
  # rows stacks the 5 kernel rows: (1, nb, 5 * S * C_in, s * C_out), HWIO.
  assert conv.invars[1].aval.shape == (1, nb, 5 * s * 2, s * 6)
  assert conv.params["window_strides"] == (1, 1)
  assert conv.params["rhs_dilation"] == (1, 1)


def test_many_channels_is_rows():
  x, w = jnp.zeros((1, 8, 8, 4)), jnp.zeros((3, 3, 4, 8))
  assert conv_cols.fold_factor(4) == 1
  got = jax.make_jaxpr(lambda x, w: ops.conv(x, w, padding=1, impl="cols"))(x, w)
  want = jax.make_jaxpr(lambda x, w: ops.conv(x, w, padding=1, impl="rows"))(x, w)
  assert str(got) == str(want)
