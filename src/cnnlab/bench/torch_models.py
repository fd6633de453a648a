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


def calibrate_bn(net: nn.Module, x: torch.Tensor, seed: int = 0) -> nn.Module:
  """``net`` in eval mode with random BN affines (:func:`randomize_bn`) and running statistics
  from one train-mode pass over ``x`` (``(N, C, ...)``): every layer's output keeps about unit
  scale, so a parity test's logits depend on its input (with arbitrary statistics the signal of
  a deep net dies out and only the biases reach the logits)."""
  net = randomize_bn(net, seed)
  for m in net.modules():
    if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
      m.reset_running_stats()
      m.momentum = None  # cumulative average: after one pass, that batch's statistics
  with torch.no_grad():
    net.train()(x)
  return net.eval()


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
  'batch_stats'}`` (Conv2d OIHW -> HWIO, Conv3d OIDHW -> DHWIO, depthwise (C,1,k,k) -> (k,k,1,C);
  Linear (O,I) -> (I,O); BatchNorm2d/3d weight/bias -> scale/bias, running stats -> mean/var)."""
  params, stats = {}, {}

  def put(tree, path, t):
    node = tree
    for p in path[:-1]:
      node = node.setdefault(p, {})
    node[path[-1]] = np.array(t.detach().numpy())  # a copy: torch updates BN stats in place

  for name, m in net.named_modules():
    path = tuple(name.split(".")) if name else ()
    if isinstance(m, (nn.Conv2d, nn.Conv3d)):
      put(params, path + ("kernel",), m.weight.permute(*range(2, m.weight.ndim), 1, 0))
    elif isinstance(m, nn.Linear):
      put(params, path + ("kernel",), m.weight.T)
    elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
      put(params, path + ("scale",), m.weight)
      put(stats, path + ("mean",), m.running_mean)
      put(stats, path + ("var",), m.running_var)
    if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm3d)) and \
        m.bias is not None:
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


# ---- depthwise-heavy nets and C3D, as cnnlab builds them (module names = the Flax paths, so
# ``torch_to_flax`` maps one onto the other; BatchNorm at torch's defaults, as cnnlab's) ----

def make_divisible(v: float, divisor: int = 8) -> int:
  """torchvision's ``_make_divisible`` (= ``cnnlab.models.blocks.make_divisible``)."""
  new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
  return new_v + divisor if new_v < 0.9 * v else new_v


def drop_path(x, rate: float, training: bool):
  """Stochastic depth (torchvision ``StochasticDepth(rate, 'row')``): whole examples zeroed with
  probability ``rate``, survivors scaled by ``1 / (1 - rate)``."""
  if not training or rate == 0.0:
    return x
  keep = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype).bernoulli_(1 - rate)
  return x * keep / (1 - rate)


class ConvNormAct(nn.Module):
  """``cnnlab.models.blocks.ConvNormAct``: bias-free conv (padding ``(k-1)//2``) -> BN -> act;
  ``bn``: BatchNorm's ``(momentum, eps)`` (torch's defaults; MobileNet-v3: ``(0.01, 1e-3)``)."""

  def __init__(self, cin, cout, k, stride=1, groups=1, act=None, dims=2, bn=(0.1, 1e-5)):
    super().__init__()
    conv, norm = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d)
    self.conv = conv(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False)
    self.bn = norm(cout, eps=bn[1], momentum=bn[0])
    self.act = act() if act else nn.Identity()

  def forward(self, x):
    return self.act(self.bn(self.conv(x)))


class SqueezeExcitation(nn.Module):
  """``cnnlab.models.blocks.SqueezeExcitation``: ``x * gate(fc2(act(fc1(mean_HW(x)))))``."""

  def __init__(self, c, squeeze, act, gate):
    super().__init__()
    self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)
    self.act, self.gate = act(), gate()

  def forward(self, x):
    return x * self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))


class InvertedResidual(nn.Module):
  """``cnnlab.models.blocks.InvertedResidual``: [1x1 expand iff ``exp != cin``] -> kxk depthwise
  -> [SE] -> 1x1 project; residual (through drop path) iff stride 1 and ``cin == cout``."""

  def __init__(self, cin, exp, cout, k, stride, act, se=None, drop_path_rate=0.0,
               bn=(0.1, 1e-5)):
    super().__init__()
    self.expand = ConvNormAct(cin, exp, 1, act=act, bn=bn) if exp != cin else None
    self.depthwise = ConvNormAct(exp, exp, k, stride, groups=exp, act=act, bn=bn)
    self.se = se
    self.project = ConvNormAct(exp, cout, 1, bn=bn)
    self.res, self.drop_path_rate = stride == 1 and cin == cout, drop_path_rate

  def forward(self, x):
    y = self.depthwise(x if self.expand is None else self.expand(x))
    y = self.project(y if self.se is None else self.se(y))
    return drop_path(y, self.drop_path_rate, self.training) + x if self.res else y


class _StemBlocksHead(nn.Module):
  """Stem conv -> inverted-residual ``blocks`` -> 1x1 head conv to 1280 -> mean pool -> dropout
  -> linear: the frame of :class:`MobileNetV2` and :class:`EfficientNetB0`."""

  def _head(self, cin, act, dropout, num_classes):
    self.head_conv = ConvNormAct(cin, 1280, 1, act=act)
    self.drop = nn.Dropout(dropout)
    self.classifier = nn.Linear(1280, num_classes)

  def forward(self, x):
    x = self.stem_conv(x)
    for b in self.blocks:
      x = b(x)
    return self.classifier(self.drop(self.head_conv(x).mean((2, 3))))


class MobileNetV2(_StemBlocksHead):
  """``cnnlab`` ``mobilenet_v2`` (torchvision's layout, width 1.0): ReLU6 inverted residuals,
  rows ``(t, c, n, s)`` of Sandler et al. 2018, Table 2."""

  def __init__(self, num_classes=1000, dropout=0.2):
    super().__init__()
    self.stem_conv = ConvNormAct(3, 32, 3, 2, act=nn.ReLU6)
    blocks, cin = [], 32
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
      for j in range(n):
        blocks.append(InvertedResidual(cin, int(round(cin * t)), c, 3, s if j == 0 else 1,
                                       nn.ReLU6))
        cin = c
    for i, b in enumerate(blocks):
      self.add_module(f"block{i}", b)
    self.blocks = blocks  # plain list: the modules are registered under their Flax names
    self._head(cin, nn.ReLU6, dropout, num_classes)


class EfficientNetB0(_StemBlocksHead):
  """``cnnlab`` ``efficientnet_b0`` (torchvision's layout; Tan & Le 2019): SiLU MBConv blocks
  with SE (squeeze ``max(1, C_in // 4)``, SiLU, sigmoid), stochastic depth ``0.2 * i / 16``."""

  ROWS = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))

  def __init__(self, num_classes=1000, dropout=0.2, drop_path_rate=0.2):
    super().__init__()
    self.stem_conv = ConvNormAct(3, 32, 3, 2, act=nn.SiLU)
    specs = [(e, k, s if j == 0 else 1, ci if j == 0 else co, co)
             for e, k, s, ci, co, n in self.ROWS for j in range(n)]
    self.blocks = []
    for i, (e, k, s, ci, co) in enumerate(specs):
      se = SqueezeExcitation(make_divisible(ci * e), max(1, ci // 4), nn.SiLU, nn.Sigmoid)
      b = InvertedResidual(ci, make_divisible(ci * e), co, k, s, nn.SiLU, se,
                           drop_path_rate * i / len(specs))
      self.add_module(f"block{i}", b)
      self.blocks.append(b)
    self._head(320, nn.SiLU, dropout, num_classes)


class MobileNetV3(nn.Module):
  """``cnnlab`` ``mobilenet_v3_{large,small}`` (torchvision's layout, width 1.0; Howard et al.
  2019): Hardswish / ReLU inverted residuals, SE squeezing to ``make_divisible(C / 4)`` with a
  Hardsigmoid gate, BN momentum 0.01 and eps 1e-3, a hidden Hardswish classifier layer."""

  ROWS = {  # (in, kernel, expanded, out, SE, activation, stride): torchvision's bneck_conf
      "large": ((16, 3, 16, 16, 0, "RE", 1), (16, 3, 64, 24, 0, "RE", 2),
                (24, 3, 72, 24, 0, "RE", 1), (24, 5, 72, 40, 1, "RE", 2),
                (40, 5, 120, 40, 1, "RE", 1), (40, 5, 120, 40, 1, "RE", 1),
                (40, 3, 240, 80, 0, "HS", 2), (80, 3, 200, 80, 0, "HS", 1),
                (80, 3, 184, 80, 0, "HS", 1), (80, 3, 184, 80, 0, "HS", 1),
                (80, 3, 480, 112, 1, "HS", 1), (112, 3, 672, 112, 1, "HS", 1),
                (112, 5, 672, 160, 1, "HS", 2), (160, 5, 960, 160, 1, "HS", 1),
                (160, 5, 960, 160, 1, "HS", 1)),
      "small": ((16, 3, 16, 16, 1, "RE", 2), (16, 3, 72, 24, 0, "RE", 2),
                (24, 3, 88, 24, 0, "RE", 1), (24, 5, 96, 40, 1, "HS", 2),
                (40, 5, 240, 40, 1, "HS", 1), (40, 5, 240, 40, 1, "HS", 1),
                (40, 5, 120, 48, 1, "HS", 1), (48, 5, 144, 48, 1, "HS", 1),
                (48, 5, 288, 96, 1, "HS", 2), (96, 5, 576, 96, 1, "HS", 1),
                (96, 5, 576, 96, 1, "HS", 1))}

  def __init__(self, arch="large", num_classes=1000, dropout=0.2):
    super().__init__()
    bn, rows = (0.01, 1e-3), self.ROWS[arch]
    last = {"large": 1280, "small": 1024}[arch]
    self.stem_conv = ConvNormAct(3, 16, 3, 2, act=nn.Hardswish, bn=bn)
    self.blocks = []
    for i, (cin, k, e, c, se, a, s) in enumerate(rows):
      act = nn.Hardswish if a == "HS" else nn.ReLU
      sq = SqueezeExcitation(e, make_divisible(e // 4), nn.ReLU, nn.Hardsigmoid) if se else None
      b = InvertedResidual(cin, e, c, k, s, act, sq, bn=bn)
      self.add_module(f"block{i}", b)
      self.blocks.append(b)
    self.head_conv = ConvNormAct(rows[-1][3], 6 * rows[-1][3], 1, act=nn.Hardswish, bn=bn)
    self.classifier_hidden = nn.Linear(6 * rows[-1][3], last)
    self.act, self.drop = nn.Hardswish(), nn.Dropout(dropout)
    self.classifier = nn.Linear(last, num_classes)

  def forward(self, x):
    x = self.stem_conv(x)
    for b in self.blocks:
      x = b(x)
    x = self.head_conv(x).mean((2, 3))
    return self.classifier(self.drop(self.act(self.classifier_hidden(x))))


def channel_shuffle(x, groups: int):
  """NCHW: channel ``g * (C/groups) + j`` moves to ``j * groups + g`` (torchvision)."""
  n, c, h, w = x.shape
  return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleV2Unit(nn.Module):
  """``cnnlab.models.shufflenet.ShuffleV2Unit`` (torchvision's ``InvertedResidual``)."""

  def __init__(self, cin, cout, stride):
    super().__init__()
    half, self.stride = cout // 2, stride
    if stride == 2:
      self.branch1_0 = nn.Conv2d(cin, cin, 3, 2, 1, groups=cin, bias=False)
      self.branch1_1 = nn.BatchNorm2d(cin)
      self.branch1_2 = nn.Conv2d(cin, half, 1, bias=False)
      self.branch1_3 = nn.BatchNorm2d(half)
    c2 = cin if stride == 2 else half
    self.branch2_0 = nn.Conv2d(c2, half, 1, bias=False)
    self.branch2_1 = nn.BatchNorm2d(half)
    self.branch2_3 = nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False)
    self.branch2_4 = nn.BatchNorm2d(half)
    self.branch2_5 = nn.Conv2d(half, half, 1, bias=False)
    self.branch2_6 = nn.BatchNorm2d(half)

  def forward(self, x):
    if self.stride == 1:
      x1, x2 = x.chunk(2, dim=1)
    else:
      x1 = self.branch1_2(self.branch1_1(self.branch1_0(x)))
      x1, x2 = torch.relu(self.branch1_3(x1)), x
    y = torch.relu(self.branch2_1(self.branch2_0(x2)))
    y = self.branch2_5(self.branch2_4(self.branch2_3(y)))
    return channel_shuffle(torch.cat([x1, torch.relu(self.branch2_6(y))], 1), 2)


class ShuffleNetV2(nn.Module):
  """``cnnlab`` ``shufflenet_v2_*`` (torchvision's layout; Ma et al. 2018): stem 3x3/2 conv 24 ->
  3x3/2 max pool -> stages of (4, 8, 4) units -> 1x1 conv ``stage_channels[3]`` -> pool -> fc."""

  def __init__(self, stage_channels=(116, 232, 464, 1024), num_classes=1000):
    super().__init__()
    self.conv1_0 = nn.Conv2d(3, 24, 3, 2, 1, bias=False)
    self.conv1_1 = nn.BatchNorm2d(24)
    self.units, cin = [], 24
    for s, (repeats, cout) in enumerate(zip((4, 8, 4), stage_channels[:3])):
      for i in range(repeats):
        u = ShuffleV2Unit(cin, cout, 2 if i == 0 else 1)
        self.add_module(f"stage{s + 2}_{i}", u)
        self.units.append(u)
        cin = cout
    self.conv5_0 = nn.Conv2d(cin, stage_channels[3], 1, bias=False)
    self.conv5_1 = nn.BatchNorm2d(stage_channels[3])
    self.fc = nn.Linear(stage_channels[3], num_classes)

  def forward(self, x):
    x = nn.functional.max_pool2d(torch.relu(self.conv1_1(self.conv1_0(x))), 3, 2, 1)
    for u in self.units:
      x = u(x)
    x = torch.relu(self.conv5_1(self.conv5_0(x)))
    return self.fc(x.mean((2, 3)))


class C3D(nn.Module):
  """``cnnlab`` ``c3d`` (Tran et al. 2015, with BN and a pooled ``fc`` head): stage ``i`` is
  ``depths[i]`` 3x3x3 conv -> BN -> ReLU units of ``widths[i]`` features, then a max pool 1x2x2
  (stage 1) or 2x2x2; NCDHW."""

  def __init__(self, widths=(16, 32, 64, 128, 128), depths=(1, 1, 2, 2, 2), in_channels=1,
               num_classes=10):
    super().__init__()
    self.stages, cin = [], in_channels
    for i, (width, depth) in enumerate(zip(widths, depths)):
      units = []
      for j in range(depth):
        units.append(ConvNormAct(cin, width, 3, act=nn.ReLU, dims=3))
        self.add_module(f"conv{i + 1}_{j}", units[-1])
        cin = width
      self.stages.append(units)
    self.fc = nn.Linear(cin, num_classes)

  def forward(self, x):
    for i, units in enumerate(self.stages):
      for u in units:
        x = u(x)
      x = nn.functional.max_pool3d(x, (1, 2, 2) if i == 0 else 2)
    return self.fc(x.mean((2, 3, 4)))
