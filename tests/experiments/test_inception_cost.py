"""Inception cost experiment: the figure's numbers against torch modules on the meta device
(parameters; MACs from forward hooks, no memory), built from the paper's Table 1 widths restated
here, and a smoke run whose module- and network-level cross-checks must all hold."""

import math

import pytest
import torch
from torch import nn as tnn

from cnnlab.experiments import inception_cost as ic
from conftest import REPO, load_config_module

CONFIG = REPO / "configs" / "analysis" / "inception_cost.py"
# Szegedy et al. 2015, Table 1: C_in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
TABLE1 = {"3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
          "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
          "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
          "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
          "5b": (832, 384, 192, 384, 48, 128, 128)}
HW = {"3": 28, "4": 14, "5": 7}  # map sizes at 224x224


def torch_block(name, block, k):
  """Conv (no bias) + BN per branch conv, as torchvision's BasicConv2d; naive: fig. 2a."""
  c_in, c1, r3, c3, r5, c5, pp = TABLE1[name]
  if block == "naive":
    convs = [(c_in, c1, 1), (c_in, c3, 3), (c_in, c5, k)]
  else:
    convs = [(c_in, c1, 1), (c_in, r3, 1), (r3, c3, 3), (c_in, r5, 1), (r5, c5, k), (c_in, pp, 1)]
  return [tnn.Sequential(tnn.Conv2d(i, o, kk, padding=kk // 2, bias=False), tnn.BatchNorm2d(o))
          for i, o, kk in convs]


def torch_cost(name, block, k, hw):
  macs = 0
  params = 0
  with torch.device("meta"):
    for seq in torch_block(name, block, k):
      conv = seq[0]
      y = conv(torch.empty(1, conv.in_channels, hw, hw))  # shape only
      macs += y.numel() * conv.in_channels * math.prod(conv.kernel_size)
      params += sum(p.numel() for p in seq.parameters())
  return params, macs


@pytest.mark.parametrize("k", [5, 3])
def test_closed_form_figure_numbers_match_torch_modules(k):
  rows = {r["name"]: r for r in ic.inception_cost_table(k, 224)}
  for name in TABLE1:
    assert rows[name]["c_in"] == TABLE1[name][0] and rows[name]["hw"] == HW[name[0]]
    for block in ("naive", "reduced"):
      params, macs = torch_cost(name, block, k, HW[name[0]])
      assert (rows[name][block]["params"], rows[name][block]["macs"]) == (params, macs), name


def test_module_cost_matches_torch_at_224():
  for name, block in (("3a", "naive"), ("5b", "reduced")):
    c_in, *channels = TABLE1[name]
    got = ic.module_cost(c_in, channels, HW[name[0]], block, 5)
    assert (got["params"], got["macs"]) == torch_cost(name, block, 5, HW[name[0]])
    assert got["c_out"] == (sum(channels[i] for i in (0, 2, 4))
                            + (c_in if block == "naive" else channels[5]))


def test_smoke_run_cross_checks_hold(tmp_path):
  cfg = load_config_module(CONFIG).get_config("smoke")
  result = ic.run(cfg, str(tmp_path))
  assert [r["block"] for r in result["rows"]] == list(TABLE1)
  for r in result["rows"]:
    assert r["module_check"] and r["network_check"], r
    hw = -(-cfg.image_size // {"3": 8, "4": 16, "5": 32}[r["block"][0]])
    assert r["reduced_macs"] == torch_cost(r["block"], "reduced", 5, hw)[1]
    assert r["params_ratio"] > 1 and r["macs_ratio"] > 1
  for name in ("inception_cost.md", "inception_cost.json", "inception_cost.png"):
    assert (tmp_path / name).stat().st_size > 0
  cfg.kernel_5x5 = 7
  with pytest.raises(ValueError, match="kernel_5x5"):
    ic.run(cfg, str(tmp_path))
