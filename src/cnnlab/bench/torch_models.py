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


def randomize_bn(net: nn.Module, seed: int = 0) -> nn.Module:
  """Gives every ``BatchNorm2d`` of ``net`` random affine parameters and running statistics (in
  place; seeded), so a parity test also checks how the statistics are used; returns ``net``."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in net.modules():
      if isinstance(m, nn.BatchNorm2d):
        c = m.num_features
        m.weight.copy_(0.5 + torch.rand(c, generator=g))
        m.bias.copy_(0.1 * torch.randn(c, generator=g))
        m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
        m.running_var.copy_(0.5 + torch.rand(c, generator=g))
  return net


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


def torch_to_flax(net: nn.Module) -> dict:
  """A torch module tree whose submodule names are the Flax paths -> ``{'params',
  'batch_stats'}`` (Conv2d OIHW -> HWIO, depthwise (C,1,k,k) -> (k,k,1,C); Linear (O,I) ->
  (I,O); BatchNorm2d weight/bias -> scale/bias, running stats -> mean/var)."""
  params, stats = {}, {}

  def put(tree, path, t):
    node = tree
    for p in path[:-1]:
      node = node.setdefault(p, {})
    node[path[-1]] = np.array(t.detach().numpy())  # a copy: torch updates BN stats in place

  for name, m in net.named_modules():
    path = tuple(name.split(".")) if name else ()
    if isinstance(m, nn.Conv2d):
      put(params, path + ("kernel",), m.weight.permute(2, 3, 1, 0))
    elif isinstance(m, nn.Linear):
      put(params, path + ("kernel",), m.weight.T)
    elif isinstance(m, nn.BatchNorm2d):
      put(params, path + ("scale",), m.weight)
      put(stats, path + ("mean",), m.running_mean)
      put(stats, path + ("var",), m.running_var)
    if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)) and m.bias is not None:
      put(params, path + ("bias",), m.bias)
  return {"params": params, "batch_stats": stats}


class TorchBasic(nn.Module):
  expansion = 1

  def __init__(self, cin, planes, stride, groups, base_width):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.downsample = None
    if stride != 1 or cin != planes:
      self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes))

  def forward(self, x):
    y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchBottleneck(nn.Module):
  expansion = 4

  def __init__(self, cin, planes, stride, groups, base_width):
    super().__init__()
    width = int(planes * (base_width / 64.0)) * groups
    self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
    self.bn2 = nn.BatchNorm2d(width)
    self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.downsample = None
    if stride != 1 or cin != planes * 4:
      self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = self.bn3(self.conv3(torch.relu(self.bn2(self.conv2(y)))))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchResNet(nn.Module):
  """torchvision.models.resnet re-stated (torchvision has no CPU build here). ``small_stem``:
  3x3 stride-1 stem conv and no max-pool, as ``cnnlab`` ResNets' ``small_stem=True``."""

  def __init__(self, block, layers, groups=1, width_per_group=64, num_classes=1000,
               small_stem=False):
    super().__init__()
    block = TorchBasic if block == "basic" else TorchBottleneck
    self.conv1 = (nn.Conv2d(3, 64, 3, 1, 1, bias=False) if small_stem
                  else nn.Conv2d(3, 64, 7, 2, 3, bias=False))
    self.bn1 = nn.BatchNorm2d(64)
    self.maxpool = nn.Identity() if small_stem else nn.MaxPool2d(3, 2, 1)
    cin, stages = 64, []
    for i, n in enumerate(layers):
      blocks = []
      for j in range(n):
        blocks.append(block(cin, 64 * 2 ** i, 2 if i > 0 and j == 0 else 1, groups,
                            width_per_group))
        cin = 64 * 2 ** i * block.expansion
      stages.append(nn.Sequential(*blocks))
    self.layers = nn.ModuleList(stages)
    self.fc = nn.Linear(cin, num_classes)

  def forward(self, x):
    x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
    for stage in self.layers:
      x = stage(x)
    return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class TorchFire(nn.Module):
  """SqueezeNet's Fire module with torchvision's names: squeeze 1x1, then expand 1x1 | 3x3."""

  def __init__(self, cin: int, s: int, e: int):
    super().__init__()
    self.squeeze = nn.Conv2d(cin, s, 1)
    self.expand1x1 = nn.Conv2d(s, e, 1)
    self.expand3x3 = nn.Conv2d(s, e, 3, padding=1)

  def forward(self, x):
    x = torch.relu(self.squeeze(x))
    return torch.cat([torch.relu(self.expand1x1(x)), torch.relu(self.expand3x3(x))], 1)
