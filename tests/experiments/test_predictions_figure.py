"""``cnnlab.experiments.predictions_figure``: a bad count is reported before the run is loaded."""

import pytest

from cnnlab import experiments
from cnnlab.train.errors import ConfigError
from conftest import REPO, load_config_module


def test_bad_num_examples_is_one_config_error_before_loading_the_run(tmp_path):
  c = load_config_module(REPO / "configs/dense/fcn8s_digit_segmentation.py").get_config("figure")
  c.num_examples, c.run_workdir = 0, str(tmp_path / "no_run")
  with pytest.raises(ConfigError, match=r"config.num_examples=0 is invalid: must be >= 1"):
    experiments.run(c, str(tmp_path))
