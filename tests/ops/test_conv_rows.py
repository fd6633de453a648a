"""``rows``: it computes what it says (one ``lax`` conv one row tall over ``K_0 x C_in`` stacked
channels, no conv of the original window); its numbers against ``lax`` are in
tests/ops/test_conv_impls.py and tests/ops/test_conv_torch.py."""

import jax
import jax.numpy as jnp

from cnnlab import ops


def _convs(fn, *args):
  return [e for e in jax.make_jaxpr(fn)(*args).eqns if e.primitive.name == "conv_general_dilated"]


def test_one_conv_one_row_tall_over_stacked_rows():
  x, w = jnp.zeros((2, 12, 12, 3)), jnp.zeros((5, 3, 3, 8))
  (conv,) = _convs(lambda x, w: ops.conv(x, w, stride=2, padding="SAME", impl="rows"), x, w)
  kernel = conv.invars[1].aval.shape
  assert kernel == (1, 3, 5 * 3, 8)  # (1, K_1, K_0 * C_in, C_out), HWIO
  assert conv.params["window_strides"][0] == 1  # the first axis' stride went into the slices


def test_grouped_channels_stay_within_their_group():
  x, w = jnp.zeros((1, 8, 8, 4)), jnp.zeros((3, 3, 2, 6))
  (conv,) = _convs(lambda x, w: ops.conv(x, w, groups=2, impl="rows"), x, w)
  assert conv.params["feature_group_count"] == 2
  assert conv.invars[0].aval.shape[-1] == 3 * 4 and conv.invars[1].aval.shape[-2] == 3 * 2
