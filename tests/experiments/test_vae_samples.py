"""``cnnlab.experiments.vae_samples``: a bad count is reported before the run is loaded."""

import pytest

from cnnlab import experiments
from cnnlab.train.errors import ConfigError
from conftest import REPO, load_config_module


def test_bad_num_samples_is_one_config_error_before_loading_the_run(tmp_path):
  c = load_config_module(REPO / "configs/dense/vae_mnist8k.py").get_config("samples")
  c.num_samples, c.run_workdir = 0, str(tmp_path / "no_run")
  with pytest.raises(ConfigError, match=r"config.num_samples=0 is invalid: must be >= 1"):
    experiments.run(c, str(tmp_path))
