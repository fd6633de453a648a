"""The checkerboard measure (``cnnlab.experiments.checkerboard.checkerboard_energy``) on images
whose spectra are known: a +-1 checkerboard, stripes of period 2, a smooth ramp, white noise;
and the uneven overlap of a kernel-3 stride-2 transposed conv it is meant to catch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import nn as cnn
from cnnlab.experiments import checkerboard
from cnnlab.experiments.checkerboard import checkerboard_energy
from cnnlab.train.errors import ConfigError
from conftest import REPO, load_config_module


def test_known_spectra():
  i, j = np.mgrid[:28, :28]
  board = np.where((i + j) % 2, 1.0, -1.0)[None, ..., None]
  assert checkerboard_energy(board) == 1.0
  stripes = np.where(j % 2, 3.0, 1.0)[None, ..., None]  # period 2 along x: frequency (0, W/2)
  assert checkerboard_energy(stripes) == 1.0
  ramp = (i + 2 * j)[None, ..., None].astype(float)
  assert checkerboard_energy(ramp) < 0.01
  noise = np.random.default_rng(0).standard_normal((1024, 28, 28, 1))  # 3 of 783 bins (no DC)
  np.testing.assert_allclose(checkerboard_energy(noise), 3 / (28 ** 2 - 1), rtol=0.1)
  assert checkerboard_energy(np.zeros((1, 28, 28, 1))) == 0.0


def test_kernel_3_transposed_conv_shows_it_kernel_4_does_not():
  """On a constant input, a stride-2 transposed conv with all-ones weights sums 1 or 2 taps per
  output pixel with kernel 3 (uneven overlap: a checkerboard) and 2 everywhere with kernel 4."""
  x = jnp.ones((1, 14, 14, 1))
  energies = {}
  for k in (3, 4):
    layer = cnn.ConvTranspose(1, (k, k), strides=(2, 2), padding="SAME", use_bias=False,
                              kernel_init=jax.nn.initializers.ones)
    y = layer.apply(layer.init(jax.random.key(0), x), x)
    assert y.shape == (1, 28, 28, 1)
    energies[k] = checkerboard_energy(np.asarray(y)[:, 2:-2, 2:-2])  # away from the borders
  assert energies[3] > 0.5 and energies[4] < 1e-6


@pytest.mark.parametrize("field, value, message", [
    ("num_images", 0, r"config.num_images=0 is invalid: must be >= 1"),
    ("noise_std", -0.5, r"config.noise_std=-0.5 is invalid: must be >= 0"),
])
def test_bad_analysis_field_is_one_config_error_first(field, value, message, tmp_path):
  cfg = load_config_module(REPO / "configs" / "dense" / "checkerboard.py").get_config("analysis")
  cfg[field], cfg.sweep_workdir = value, str(tmp_path / "no_sweep")
  with pytest.raises(ConfigError, match=message):
    checkerboard.run(cfg, str(tmp_path))
