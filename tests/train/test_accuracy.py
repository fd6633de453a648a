"""Full training runs reach the accuracies their configs record (slow: minutes each;
``python -m pytest -m slow tests/train/test_accuracy.py``)."""

import pytest

from cnnlab import train
from conftest import REPO, load_config_module, needs_mnist8k


@pytest.mark.slow
@pytest.mark.parametrize("config,threshold", [("lenet5_digits", 0.97), ("lenet5_mnist8k", 0.975)])
def test_config_reaches_its_accuracy(config, threshold, tmp_path):
  c = load_config_module(REPO / "configs" / f"{config}.py").get_config()
  if c.data.manual_dir:
    needs_mnist8k()
  c.progress_bar = False
  result = train.train_and_evaluate(c, str(tmp_path))
  assert result["accuracy"] >= threshold, result
