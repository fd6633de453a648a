"""Upsampling for dense prediction: FCN's bilinear kernel (its published taps), a bilinear-
initialised transposed conv against ``jax.image.resize`` (exactly where they agree: the interior,
or everywhere with an edge-padded input and a crop; not on the border), output sizes for both
modes, kernels 3 and 4, odd and even inputs; the checkerboard of a kernel not divisible by the
stride (Odena et al. 2016) against numpy tap counts; resize-conv against ``np.repeat``."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import nn as cnn
from cnnlab.models import upsample
from cnnlab.models.upsample import MODES, Upsample, bilinear_init


def _x(h, w, c=3, seed=0):
  return jnp.asarray(np.random.default_rng(seed).standard_normal((2, h, w, c)), jnp.float32)


def _bilinear_up(factor, impl="lax"):
  ct = functools.partial(cnn.ConvTranspose, kernel_init=bilinear_init, use_bias=False, impl=impl)
  return Upsample(3, conv_transpose=ct, factor=factor, kernel_size=2 * factor - factor % 2)


def test_bilinear_kernel_taps():
  """FCN's ``upsample_filt`` for sizes 4 (x2), 5 (x3), 3: the taps written out by hand."""
  np.testing.assert_allclose(upsample.bilinear_kernel_1d(4), [0.25, 0.75, 0.75, 0.25])
  np.testing.assert_allclose(upsample.bilinear_kernel_1d(5), [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3])
  np.testing.assert_allclose(upsample.bilinear_kernel_1d(3), [0.5, 1, 0.5])
  k = np.asarray(bilinear_init(None, (4, 4, 3, 3)))
  np.testing.assert_allclose(k[:, :, 1, 1], np.outer([.25, .75, .75, .25], [.25, .75, .75, .25]))
  assert not np.any(k[:, :, 0, 1]) and not np.any(k[:, :, 2, 0])  # zero across channels
  with pytest.raises(ValueError, match="bilinear_init needs"):
    bilinear_init(None, (4, 4, 3, 5))


@pytest.mark.parametrize("factor,impl,jit", [
    (2, "lax", False), (2, "lax", True), (2, "zero_insert", False), (3, "lax", True),
    (4, "zero_insert", True)])
def test_bilinear_transpose_equals_resize(factor, impl, jit):
  """``jax.image.resize(..., 'bilinear')`` (half-pixel centres, weights renormalised at the border)
  equals the bilinear transposed conv (1) everywhere but the ``factor // 2`` outermost rows and
  columns; (2) everywhere for the input edge-padded by 1 with ``factor`` outputs cropped per side;
  and (3) differs on the border of a random input (the statement is tight)."""
  x = _x(5, 7)
  m = _bilinear_up(factor, impl)
  variables = m.init(jax.random.key(0), x)
  apply = jax.jit(m.apply) if jit else m.apply
  y = np.asarray(apply(variables, x))
  ref = np.asarray(jax.image.resize(x, (2, 5 * factor, 7 * factor, 3), "bilinear"))
  e = factor // 2
  np.testing.assert_allclose(y[:, e:-e, e:-e], ref[:, e:-e, e:-e], rtol=1e-5, atol=1e-5)
  assert np.abs(y[:, 0] - ref[:, 0]).max() > 1e-2  # first row
  assert np.abs(y[:, :, -1] - ref[:, :, -1]).max() > 1e-2  # last column
  x_edge = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  y_edge = np.asarray(apply(variables, x_edge))[:, factor:-factor, factor:-factor]
  np.testing.assert_allclose(y_edge, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode,kernel_size,method", [
    ("transpose", 3, "nearest"), ("transpose", 4, "nearest"), ("transpose", 1, "nearest"),
    ("resize", 3, "nearest"), ("resize", 4, "bilinear")])
def test_output_size(mode, kernel_size, method):
  """Exactly ``factor`` x the input for odd, even and mixed sizes (abstractly), then one
  computed eager and jitted."""
  for factor in (2, 3):
    m = Upsample(6, factor=factor, mode=mode, kernel_size=kernel_size, method=method)
    for hw in ((5, 5), (6, 6), (7, 4)):
      x = jax.ShapeDtypeStruct((2, *hw, 3), jnp.float32)
      y = jax.eval_shape(lambda x: m.apply(m.init(jax.random.key(0), x), x), x)
      assert y.shape == (2, factor * hw[0], factor * hw[1], 6)
  x = _x(7, 4)
  variables = m.init(jax.random.key(0), x)
  assert m.apply(variables, x).shape == jax.jit(m.apply)(variables, x).shape == (2, 21, 12, 6)


@pytest.mark.parametrize("kernel_size,checkerboard", [(3, True), (4, False)])
def test_checkerboard(kernel_size, checkerboard):
  """Constant input, all-ones kernel, stride 2: an interior output sums the taps that land on it,
  numpy's count of ``{t in [0, k): (j + lo - t) % 2 == 0}`` per dim (torch's crop ``lo``); k=3
  alternates 1 and 2 taps per dim (checkerboard), k=4 gives 2 everywhere."""
  ct = functools.partial(cnn.ConvTranspose, kernel_init=jax.nn.initializers.ones, use_bias=False)
  m = Upsample(1, conv_transpose=ct, kernel_size=kernel_size)
  x = jnp.ones((1, 6, 6, 1))
  y = np.asarray(m.apply(m.init(jax.random.key(0), x), x))[0, :, :, 0]
  (lo, _), _ = upsample.upsample_padding(kernel_size, 2)
  taps = np.array([sum((j + lo - t) % 2 == 0 for t in range(kernel_size)) for j in range(12)])
  interior = slice(2, -2)
  np.testing.assert_allclose(y[interior, interior], np.outer(taps, taps)[interior, interior])
  assert (np.ptp(y[interior, interior]) > 0) == checkerboard


def test_resize_nearest_then_identity_conv_is_repeat():
  """Resize-conv with a centre-tap identity 3x3 kernel is nearest-neighbour upsampling: each
  pixel repeated ``factor`` times along H and W (``np.repeat``)."""
  def delta(key, shape, dtype=jnp.float32):
    return jnp.zeros(shape, dtype).at[1, 1].set(jnp.eye(shape[-1], dtype=dtype))
  m = Upsample(3, conv=functools.partial(cnn.Conv, kernel_init=delta), factor=3, mode="resize")
  x = _x(4, 5)
  y = np.asarray(m.apply(m.init(jax.random.key(0), x), x))
  np.testing.assert_allclose(y, np.repeat(np.repeat(np.asarray(x), 3, 1), 3, 2), atol=1e-6)


def test_bad_options():
  x = _x(4, 4)
  with pytest.raises(ValueError, match="mode='bilinear' is not one of"):
    Upsample(3, mode="bilinear").init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="method='cubic' is not one of"):
    Upsample(3, mode="resize", method="cubic").init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="transpose_impl='fft' is not one of"):
    upsample.conv_transpose_def("M", "fft")
  assert MODES == ("transpose", "resize")
