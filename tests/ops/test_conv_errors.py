"""Every invalid ``conv`` argument combination raises one clear ``ValueError`` before compiling."""

import jax
import jax.numpy as jnp
import pytest

from cnnlab import ops
from cnnlab.ops.conv_registry import supports

X2, W2 = (2, 8, 8, 4), (3, 3, 4, 6)

# (x_shape, w_shape, kwargs, regex the message must match)
INVALID = {
    "kernel_rank_2": (X2, (3, 4), {}, r"1, 2 or 3 spatial dims"),
    "kernel_4d": ((1, 5, 5, 5, 5, 2), (2, 2, 2, 2, 2, 2), {}, r"1, 2 or 3 spatial dims"),
    "x_rank": (X2, (3, 3, 3, 4, 6), {}, r"x has shape .* needs rank 5"),
    "impl": (X2, W2, dict(impl="nope"), r"impl='nope' is not one of .*'lax'"),
    "stride_0": (X2, W2, dict(stride=0), r"stride must be >= 1"),
    "stride_len": (X2, W2, dict(stride=(1, 1, 1)), r"stride must be an int or 2 ints"),
    "stride_float": (X2, W2, dict(stride=1.5), r"stride must be an int or 2 ints"),
    "stride_none": (X2, W2, dict(stride=None), r"stride must be an int or 2 ints"),
    "dilation_0": (X2, W2, dict(dilation=(1, 0)), r"dilation must be >= 1"),
    "groups_0": (X2, W2, dict(groups=0), r"groups=0 must divide C_in=4 and C_out=6"),
    "groups_c_in": ((2, 8, 8, 3), (3, 3, 1, 6), dict(groups=2), r"groups=2 must divide C_in=3"),
    "groups_c_out": ((2, 8, 8, 4), (3, 3, 2, 5), dict(groups=2), r"groups=2 must divide .*C_out"),
    "groups_float": (X2, W2, dict(groups=1.0), r"groups=1.0 must divide"),
    "c_in": (X2, (3, 3, 3, 6), {}, r"expects C_in/groups=3, input has C_in=4"),
    "padding_str": (X2, W2, dict(padding="HALF"), r"padding='HALF' is not one of .*SAME"),
    "causal_2d": (X2, W2, dict(padding="CAUSAL"), r"'CAUSAL' is for 1D convs only"),
    "padding_negative": (X2, W2, dict(padding=-1), r"padding must be non-negative"),
    "padding_len": (X2, W2, dict(padding=((1, 1),)), r"padding needs one entry per spatial dim"),
    "padding_triple": (X2, W2, dict(padding=((1, 1, 1), (0, 0))), r"\(lo, hi\) pairs"),
    "padding_float": (X2, W2, dict(padding=1.5), r"padding needs one entry per spatial dim"),
    "padding_pair_float": (X2, W2, dict(padding=(1.5, 1)), r"padding must be non-negative"),
    "padding_mode": (X2, W2, dict(padding=1, padding_mode="mirror"),
                     r"padding_mode='mirror' is not one of .*reflect"),
    "reflect_too_wide": ((1, 3, 3, 4), W2, dict(padding=3, padding_mode="reflect"),
                         r"padding_mode='reflect' needs padding < input size"),
    "circular_too_wide": ((1, 3, 3, 4), W2, dict(padding=4, padding_mode="circular"),
                          r"padding_mode='circular' needs .*<= input size"),
    "empty_output": ((1, 4, 4, 4), W2, dict(dilation=2), r"larger than the padded input"),
    "winograd_stride": (X2, W2, dict(stride=2, impl="winograd"),
                        r"impl='winograd' cannot serve .*stride.*impls that can: \['lax'"),
    "winograd_dilation": (X2, W2, dict(dilation=2, padding="SAME", impl="winograd_f4"),
                          r"impl='winograd_f4' cannot serve .*dilation"),
    "winograd_window": (X2, (5, 5, 4, 6), dict(impl="winograd"), r"window: .*3x3"),
    "winograd_1d": ((2, 8, 4), (3, 4, 6), dict(impl="winograd"),
                    r"spatial dims: .*2D \(3D per temporal tap\), got 1D"),
    "matmul_size": ((8, 32, 32, 64), (3, 3, 64, 64), dict(padding="SAME", impl="matmul"),
                    r"impl='matmul' cannot serve .*input size.*impls that can"),
    "matmul_sparse_size": ((64, 64, 64, 64), (3, 3, 64, 64), dict(impl="matmul_sparse"),
                           r"impl='matmul_sparse' cannot serve .*input size"),
}


@pytest.mark.parametrize("name", INVALID)
def test_invalid_arguments_raise_value_error(name):
  x_shape, w_shape, kw, match = INVALID[name]
  # Shapes only: abstract inputs show the check needs no data and no compilation.
  x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
  w = jax.ShapeDtypeStruct(w_shape, jnp.float32)
  with pytest.raises(ValueError, match=match):
    jax.eval_shape(lambda x, w: ops.conv(x, w, **kw), x, w)


@pytest.mark.parametrize("x_dtype,w_dtype", [(jnp.float32, jnp.bfloat16), (jnp.int32, jnp.int32)])
def test_dtypes(x_dtype, w_dtype):
  with pytest.raises(ValueError, match=r"x and w must share one floating dtype"):
    ops.conv(jnp.ones(X2, x_dtype), jnp.ones(W2, w_dtype))


@pytest.mark.parametrize("name", [n for n in INVALID if "cannot serve" in INVALID[n][3]])
def test_supports_agrees_with_conv(name):
  x_shape, w_shape, kw, _ = INVALID[name]
  kw = dict(kw)
  impl = kw.pop("impl")
  assert not supports(impl, x_shape, w_shape, **kw)
  assert supports("lax", x_shape, w_shape, **kw)
