"""LeNet-5 features: the plotted C1 maps against an independent numpy convolution of the plotted
digit with the plotted filters + bias and tanh; S2 against a numpy 2x2 mean; smoke runs."""

import jax
import numpy as np
import pytest

from cnnlab import models
from cnnlab.experiments import _eval_data as eval_data
from cnnlab.experiments import lenet_features as lf
from cnnlab.train import workdir as workdir_lib
from cnnlab.train.errors import ConfigError
from conftest import REPO, load_config_module, needs_mnist8k

CONFIG = REPO / "configs" / "analysis" / "lenet_features.py"


def _numpy_c1(digit_HxW, kernel_5x5x6, bias_6):
  """Valid cross-correlation by sliding windows (float64), + bias, tanh."""
  win = np.lib.stride_tricks.sliding_window_view(digit_HxW.astype(np.float64), (5, 5))
  return np.tanh(np.einsum("ijkl,klc->ijc", win, kernel_5x5x6.astype(np.float64)) + bias_6)


def _check_panels(p):
  np.testing.assert_allclose(p["C1"], _numpy_c1(p["digit"], p["kernel"], p["bias"]), atol=1e-5)
  s2 = p["C1"].reshape(14, 2, 14, 2, 6).mean((1, 3))
  np.testing.assert_allclose(p["S2"], s2, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_plotted_c1_maps_equal_numpy_conv(seed):
  model = models.create("lenet5")
  digit = np.random.default_rng(seed).standard_normal((32, 32, 1)).astype(np.float32)
  variables = model.init(jax.random.key(seed), digit[None])
  p = lf.panels(model, variables, digit)
  _check_panels(p)
  shapes = {k: p[k].shape for k in lf.LAYERS}
  assert shapes == {"C1": (28, 28, 6), "S2": (14, 14, 6), "C3": (10, 10, 16), "S4": (5, 5, 16),
                    "C5": (120,), "pre_logits": (84,)}
  np.testing.assert_allclose(p["logits"], model.apply(variables, digit[None])[0], atol=1e-6)


def test_sowing_leaves_lenet_outputs_unchanged_without_mutable():
  model = models.create("lenet5_original")
  x = np.random.default_rng(3).standard_normal((2, 32, 32, 1)).astype(np.float32)
  variables = model.init(jax.random.key(0), x)
  assert set(variables) == {"params"}  # no intermediates stored by init
  logits, feats = models.extract_features(model, variables, x)
  assert sorted(feats) == sorted(lf.SOWN.values())
  np.testing.assert_array_equal(logits, model.apply(variables, x))


def test_config_rejects_unknown_arg():
  with pytest.raises(ValueError, match="smoke"):
    load_config_module(CONFIG).get_config("fast")


def test_smoke_run_trains_two_steps_and_plots(tmp_path):
  needs_mnist8k()
  config = load_config_module(CONFIG).get_config("smoke")
  out = lf.run(config, str(tmp_path))
  assert out["step"] == 2 and out["eval_accuracy"] is not None
  run_config, model, variables = workdir_lib.load(out["run_workdir"])
  x, _ = eval_data.eval_arrays(run_config, limit=1)
  _check_panels(lf.panels(model, variables, x[0]))
  for name in ("lenet_filters.png", "lenet_feature_maps.png", "lenet_features.json",
               "lenet_features.md"):
    assert (tmp_path / name).stat().st_size > 0


@pytest.mark.parametrize("field, value, message", [
    ("digit_index", -1, r"config.digit_index=-1 is invalid: must be >= 0"),
])
def test_bad_analysis_field_is_one_config_error_first(field, value, message, tmp_path):
  cfg = load_config_module(CONFIG).get_config("smoke")
  cfg[field] = value
  with pytest.raises(ConfigError, match=message):
    lf.run(cfg, str(tmp_path))
  assert not list(tmp_path.iterdir())
