"""PyTorch re-statements of cnnlab models, used as references by benchmarks and tests."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class LeNet5(nn.Module):
  """Same network as ``cnnlab.models.LeNet5`` (full C3, average subsampling, linear output)."""

  def __init__(self, in_channels: int = 1, num_classes: int = 10):
    super().__init__()
    self.C1 = nn.Conv2d(in_channels, 6, 5)
    self.C3 = nn.Conv2d(6, 16, 5)
    self.C5 = nn.Conv2d(16, 120, 5)
    self.F6 = nn.Linear(120, 84)
    self.output = nn.Linear(84, num_classes)

  def forward(self, x):
    x = nn.functional.avg_pool2d(torch.tanh(self.C1(x)), 2)
    x = nn.functional.avg_pool2d(torch.tanh(self.C3(x)), 2)
    x = torch.tanh(self.C5(x)).flatten(1)
    return self.output(torch.tanh(self.F6(x)))


def load_flax_params(module: nn.Module, params: dict) -> nn.Module:
  """Copies a Flax param tree into a torch module whose submodule names match the Flax ones:
  conv kernels ``(*window, I, O)`` -> ``(O, I, *window)``, dense ``(I, O)`` -> ``(O, I)``."""
  with torch.no_grad():
    for name, p in params.items():
      sub = getattr(module, name)
      k = np.asarray(p["kernel"])
      k = k.T if k.ndim == 2 else np.moveaxis(k, (-1, -2), (0, 1))
      sub.weight.copy_(torch.from_numpy(np.ascontiguousarray(k)))
      sub.bias.copy_(torch.from_numpy(np.asarray(p["bias"])))
  return module
