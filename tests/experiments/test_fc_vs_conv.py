"""Conv vs FC parameter counts: formula against torch modules (meta device, no memory), published
layer/model counts (LeCun 1998, torchvision's VGG-16 and ResNet-18), and a smoke run."""

import math
import subprocess
import sys

import pytest
import torch

from cnnlab.experiments import fc_vs_conv
from cnnlab.train.errors import ConfigError
from conftest import REPO, load_config_module

CONFIG = REPO / "configs" / "analysis" / "fc_vs_conv.py"


@pytest.fixture(scope="module")
def rows():
  return fc_vs_conv.table(("lenet5", "vgg16", "resnet18"))


def test_counts_match_torch_modules_and_closed_ratio(rows):
  for r in rows:
    (h, w), (hi, wi, c1), (ho, wo, c2) = (tuple(map(int, r[k].split("x")))
                                          for k in ("kernel", "input", "output"))
    with torch.device("meta"):
      conv = torch.nn.Conv2d(c1, c2, (h, w), bias=r["bias"])
      fc = torch.nn.Linear(hi * wi * c1, ho * wo * c2, bias=r["bias"])
    assert r["conv_params"] == sum(p.numel() for p in conv.parameters()), r
    assert r["fc_params"] == sum(p.numel() for p in fc.parameters()), r
    assert r["formula_matches_modules"], r  # cnnlab.nn.Conv / flax Dense via eval_shape
    if not r["bias"]:  # the ratio is exactly H*W*H'*W' / (h*w)
      assert r["ratio"] == pytest.approx(hi * wi * ho * wo / (h * w), rel=1e-12)


def test_layer_shapes_and_published_counts(rows):
  lenet = {r["layer"]: r for r in rows if r["model"] == "lenet5"}
  # LeCun et al. 1998: C1 156, C5 48,120 (C3 here is the modern full table: 6*16*25 + 16)
  assert (lenet["C1"]["conv_params"], lenet["C3"]["conv_params"],
          lenet["C5"]["conv_params"]) == (156, 2_416, 48_120)
  assert (lenet["C1"]["input"], lenet["C1"]["output"]) == ("32x32x1", "28x28x6")
  by_model = {s["model"]: s for s in fc_vs_conv.totals(rows)}
  # torchvision vgg16 138,357,544 minus its classifier (25088->4096->4096->1000 with biases)
  classifier = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
  assert by_model["vgg16"]["conv_params"] == 138_357_544 - classifier
  assert by_model["vgg16"]["layers"] == 13
  # torchvision resnet18 11,689,512 minus fc (512*1000 + 1000) and BN (2 per channel)
  bn_channels = 64 + 4 * 64 + 5 * 128 + 5 * 256 + 5 * 512
  assert by_model["resnet18"]["conv_params"] == 11_689_512 - 513_000 - 2 * bn_channels
  assert by_model["resnet18"]["layers"] == 20
  first = next(r for r in rows if r["model"] == "vgg16")
  assert first["fc_params"] == math.prod((224, 224, 3)) * math.prod((224, 224, 64)) + 224 * 224 * 64


def test_smoke_run_writes_outputs(tmp_path):
  result = fc_vs_conv.run(load_config_module(CONFIG).get_config("smoke"), str(tmp_path))
  assert [r["layer"] for r in result["rows"]] == ["C1", "C3", "C5"]
  assert result["rows"][2]["ratio"] == 1.0  # C5: a 5x5 conv on a 5x5 map *is* a dense layer
  for name in ("fc_vs_conv.md", "fc_vs_conv.json", "fc_vs_conv.png"):
    assert (tmp_path / name).stat().st_size > 0
  with pytest.raises(ValueError, match="config arg 'full' is invalid: allowed smoke"):
    load_config_module(CONFIG).get_config("full")


@pytest.mark.parametrize("models, message", [
    (("lenet5", "resnet51"),
     r"config.models=\('lenet5', 'resnet51'\) is invalid: \['resnet51'\] are not registered"),
    (("cnn1d",), r"config.models=\('cnn1d',\) is invalid: cnn1d: only 2D convs are tabulated"),
])
def test_bad_models_are_one_config_error(models, message, tmp_path):
  cfg = load_config_module(CONFIG).get_config("smoke")
  cfg.models = models
  with pytest.raises(ConfigError, match=message):
    fc_vs_conv.run(cfg, str(tmp_path))
  assert not list(tmp_path.iterdir())


# README's command (its :smoke form, but for --workdir): tests/test_readme.py leaves it to this test.
README_RUN = ("scripts/run.py", "--config=configs/analysis/fc_vs_conv.py:smoke")


def test_script_smoke(tmp_path):
  out = subprocess.run([sys.executable, *README_RUN, f"--workdir={tmp_path}"],
                       cwd=REPO, capture_output=True, text=True, timeout=120, check=True).stdout
  assert "| lenet5 | C5 | 5x5x16 | 1x1x120 | 5x5 | 48,120 | 48,120 | 1 |" in out
  assert (tmp_path / "fc_vs_conv.png").exists()
