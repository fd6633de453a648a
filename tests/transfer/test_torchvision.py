"""cnnlab.transfer.from_torchvision against torch re-statements of torchvision's models (their
module names and layouts, random weights), the converter's error listings, and
scripts/convert_weights.py (weights_only round trip, download hash check on a local server).

Parity models are the registered ones, a few shrunk through ``create`` options (VGG/AlexNet
hidden width 16, DenseNet-121 with 2 layers per block) so the file stays fast; the naming rules
they exercise are the full models'."""

import collections
import functools
import hashlib
import http.server
import json
import pathlib
import subprocess
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
import torch
from torch import nn as tnn
from torch.nn import functional as F

from cnnlab.bench import torch_models
from cnnlab import models, transfer
from cnnlab.bench.torch_models import TorchFire, TorchResNet

REPO = pathlib.Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- torchvision re-statements
def torchvision_state_dict(net):
  """``net.state_dict()`` under torchvision's names (TorchResNet's ModuleList ``layers.0.1.`` is
  torchvision's ``layer1.1.``)."""
  sd = {}
  for k, v in net.state_dict().items():
    parts = k.split(".")
    if isinstance(net, TorchResNet) and parts[0] == "layers":
      parts = [f"layer{int(parts[1]) + 1}"] + parts[2:]
    sd[".".join(parts)] = v
  return sd


class TVGG(tnn.Module):
  def __init__(self, cfg, num_classes, hidden):
    super().__init__()
    layers, cin = [], 3
    for v in cfg:
      if v == "M":
        layers.append(tnn.MaxPool2d(2, 2))
      else:
        layers += [tnn.Conv2d(cin, v, 3, padding=1), tnn.BatchNorm2d(v), tnn.ReLU()]
        cin = v
    self.features = tnn.Sequential(*layers)
    self.avgpool = tnn.AdaptiveAvgPool2d(7)
    self.classifier = tnn.Sequential(
        tnn.Linear(512 * 49, hidden), tnn.ReLU(), tnn.Dropout(), tnn.Linear(hidden, hidden),
        tnn.ReLU(), tnn.Dropout(), tnn.Linear(hidden, num_classes))

  def forward(self, x):
    return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class TAlexNet(tnn.Module):
  def __init__(self, num_classes, hidden):
    super().__init__()
    self.features = tnn.Sequential(
        tnn.Conv2d(3, 64, 11, 4, 2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(), tnn.Conv2d(384, 256, 3, padding=1),
        tnn.ReLU(), tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2))
    self.avgpool = tnn.AdaptiveAvgPool2d(6)
    self.classifier = tnn.Sequential(
        tnn.Dropout(), tnn.Linear(256 * 36, hidden), tnn.ReLU(), tnn.Dropout(),
        tnn.Linear(hidden, hidden), tnn.ReLU(), tnn.Linear(hidden, num_classes))

  def forward(self, x):
    return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class TSqueezeNet11(tnn.Module):
  def __init__(self, num_classes):
    super().__init__()
    pool = functools.partial(tnn.MaxPool2d, 3, 2, ceil_mode=True)
    self.features = tnn.Sequential(
        tnn.Conv2d(3, 64, 3, stride=2), tnn.ReLU(), pool(), TorchFire(64, 16, 64),
        TorchFire(128, 16, 64), pool(), TorchFire(128, 32, 128), TorchFire(256, 32, 128), pool(),
        TorchFire(256, 48, 192), TorchFire(384, 48, 192), TorchFire(384, 64, 256), TorchFire(512, 64, 256))
    self.classifier = tnn.Sequential(tnn.Dropout(), tnn.Conv2d(512, num_classes, 1), tnn.ReLU(),
                                     tnn.AdaptiveAvgPool2d(1))

  def forward(self, x):
    return torch.flatten(self.classifier(self.features(x)), 1)


class TDenseLayer(tnn.Module):
  def __init__(self, cin, k, bn_size):
    super().__init__()
    self.norm1, self.relu1 = tnn.BatchNorm2d(cin), tnn.ReLU()
    self.conv1 = tnn.Conv2d(cin, bn_size * k, 1, bias=False)
    self.norm2, self.relu2 = tnn.BatchNorm2d(bn_size * k), tnn.ReLU()
    self.conv2 = tnn.Conv2d(bn_size * k, k, 3, padding=1, bias=False)

  def forward(self, x):
    return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class TDenseBlock(tnn.ModuleDict):
  def forward(self, x):
    for layer in self.values():
      x = torch.cat([x, layer(x)], 1)
    return x


class TDenseNet(tnn.Module):
  def __init__(self, blocks, num_classes, k=32, init=64, bn_size=4):
    super().__init__()
    f = collections.OrderedDict(conv0=tnn.Conv2d(3, init, 7, 2, 3, bias=False),
                                norm0=tnn.BatchNorm2d(init), relu0=tnn.ReLU(),
                                pool0=tnn.MaxPool2d(3, 2, 1))
    c = init
    for i, n in enumerate(blocks):
      f[f"denseblock{i + 1}"] = TDenseBlock(
          {f"denselayer{j + 1}": TDenseLayer(c + j * k, k, bn_size) for j in range(n)})
      c += n * k
      if i < len(blocks) - 1:
        f[f"transition{i + 1}"] = tnn.Sequential(collections.OrderedDict(
            norm=tnn.BatchNorm2d(c), relu=tnn.ReLU(), conv=tnn.Conv2d(c, c // 2, 1, bias=False),
            pool=tnn.AvgPool2d(2, 2)))
        c //= 2
    f["norm5"] = tnn.BatchNorm2d(c)
    self.features = tnn.Sequential(f)
    self.classifier = tnn.Linear(c, num_classes)

  def forward(self, x):
    x = F.adaptive_avg_pool2d(F.relu(self.features(x)), 1)
    return self.classifier(torch.flatten(x, 1))


def _shuffle(x, groups):
  b, c, h, w = x.shape
  return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class TShuffleUnit(tnn.Module):
  def __init__(self, cin, cout, stride):
    super().__init__()
    self.stride, half = stride, cout // 2
    bn = tnn.BatchNorm2d
    if stride > 1:
      self.branch1 = tnn.Sequential(
          tnn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), bn(cin),
          tnn.Conv2d(cin, half, 1, bias=False), bn(half), tnn.ReLU())
    else:
      self.branch1 = tnn.Sequential()
    self.branch2 = tnn.Sequential(
        tnn.Conv2d(cin if stride > 1 else half, half, 1, bias=False), bn(half), tnn.ReLU(),
        tnn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), bn(half),
        tnn.Conv2d(half, half, 1, bias=False), bn(half), tnn.ReLU())

  def forward(self, x):
    if self.stride == 1:
      x1, x2 = x.chunk(2, dim=1)
      out = torch.cat((x1, self.branch2(x2)), 1)
    else:
      out = torch.cat((self.branch1(x), self.branch2(x)), 1)
    return _shuffle(out, 2)


class TShuffleNetV2(tnn.Module):
  def __init__(self, repeats, channels, num_classes):
    super().__init__()
    self.conv1 = tnn.Sequential(tnn.Conv2d(3, channels[0], 3, 2, 1, bias=False),
                                tnn.BatchNorm2d(channels[0]), tnn.ReLU())
    self.maxpool = tnn.MaxPool2d(3, 2, 1)
    cin = channels[0]
    for s, (r, c) in enumerate(zip(repeats, channels[1:])):
      setattr(self, f"stage{s + 2}", tnn.Sequential(
          TShuffleUnit(cin, c, 2), *[TShuffleUnit(c, c, 1) for _ in range(r - 1)]))
      cin = c
    self.conv5 = tnn.Sequential(tnn.Conv2d(cin, channels[-1], 1, bias=False),
                                tnn.BatchNorm2d(channels[-1]), tnn.ReLU())
    self.fc = tnn.Linear(channels[-1], num_classes)

  def forward(self, x):
    x = self.maxpool(self.conv1(x))
    x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
    return self.fc(x.mean([2, 3]))


def _cbr(cin, cout, k=3, stride=1, groups=1):
  return tnn.Sequential(tnn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                        tnn.BatchNorm2d(cout), tnn.ReLU6())


class TInvRes(tnn.Module):
  def __init__(self, cin, cout, stride, t):
    super().__init__()
    hidden = int(round(cin * t))
    self.res = stride == 1 and cin == cout
    layers = [_cbr(cin, hidden, 1)] if t != 1 else []
    layers += [_cbr(hidden, hidden, 3, stride, hidden), tnn.Conv2d(hidden, cout, 1, bias=False),
               tnn.BatchNorm2d(cout)]
    self.conv = tnn.Sequential(*layers)

  def forward(self, x):
    return x + self.conv(x) if self.res else self.conv(x)


class TMobileNetV2(tnn.Module):
  ROWS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))

  def __init__(self, num_classes):
    super().__init__()
    layers, cin = [_cbr(3, 32, 3, 2)], 32
    for t, c, n, s in self.ROWS:
      for j in range(n):
        layers.append(TInvRes(cin, c, s if j == 0 else 1, t))
        cin = c
    self.features = tnn.Sequential(*layers, _cbr(cin, 1280, 1))
    self.classifier = tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(1280, num_classes))

  def forward(self, x):
    return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


# name -> (torch builder of num_classes, create() overrides, input H, W)
VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
CASES = {
    "resnet18": (lambda n: TorchResNet("basic", (2, 2, 2, 2), num_classes=n), {}, (64, 45)),
    "vgg11_bn": (lambda n: TVGG(VGG11, n, 16), dict(hidden_features=16), (64, 64)),
    "alexnet": (lambda n: TAlexNet(n, 16), dict(hidden_features=16), (99, 99)),
    "squeezenet1_1": (TSqueezeNet11, {}, (41, 38)),
    "densenet121": (lambda n: TDenseNet((2, 2, 2, 2), n), dict(block_sizes=(2, 2, 2, 2)), (40, 40)),
    "shufflenet_v2_x0_5": (lambda n: TShuffleNetV2((4, 8, 4), (24, 48, 96, 192, 1024), n), {},
                           (48, 40)),
    "mobilenet_v2": (TMobileNetV2, {}, (40, 40)),
}
MAX_DIFF = {}


@pytest.mark.parametrize("name", sorted(CASES))
def test_logits_match_torch(name):
  build, overrides, hw = CASES[name]
  torch.manual_seed(0)
  net = torch_models.randomize_bn(build(7)).eval()
  sd = torchvision_state_dict(net)  # torch tensors: the converter detaches them itself
  if name == "densenet121":  # old torchvision files: 'norm.1' for 'norm1' (torchvision rewrites)
    sd = {k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v for k, v in sd.items()}
  variables = transfer.from_torchvision(name, sd, **overrides)
  x = np.random.default_rng(0).normal(size=(2, 3, *hw)).astype(np.float32)
  with torch.no_grad():
    want = net(torch.from_numpy(x)).numpy()
  model = models.create(name, num_classes=7, **overrides)
  got = np.asarray(jax.jit(model.apply)(variables, jnp.asarray(x.transpose(0, 2, 3, 1))))
  MAX_DIFF[name] = float(np.abs(got - want).max())
  print(f"{name}: max |logit diff| = {MAX_DIFF[name]:.2e} (logit scale {np.abs(want).max():.2f})")
  assert np.abs(want).max() > 1e-2  # a network that outputs ~0 would match anything
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


# ---------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def resnet18_sd():
  torch.manual_seed(0)
  net = TorchResNet("basic", (2, 2, 2, 2), num_classes=10)
  return {k: v.numpy() for k, v in torchvision_state_dict(net).items()}


def test_missing_key_and_wrong_shape_are_listed(resnet18_sd):
  sd = dict(resnet18_sd)
  del sd["layer2.0.downsample.0.weight"]
  sd["layer3.1.bn2.running_var"] = np.ones(7, np.float32)
  sd["extra.weight"] = np.ones(3, np.float32)
  with pytest.raises(ValueError) as err:
    transfer.from_torchvision("resnet18", sd)
  msg = str(err.value)
  assert "1 missing torch keys: [layer2.0.downsample.0.weight]" in msg
  assert "batch_stats/layer3_1/bn2/var (256,) <- layer3.1.bn2.running_var (7,)" in msg
  assert "1 unused torch keys: [extra.weight]" in msg


def test_num_classes_mismatch_needs_skip_head(resnet18_sd):
  with pytest.raises(ValueError, match="num_classes=5 but the checkpoint's head 'fc.bias' has "
                     "10 classes; pass skip_head=True"):
    transfer.from_torchvision("resnet18", resnet18_sd, num_classes=5)
  v = transfer.from_torchvision("resnet18", resnet18_sd, num_classes=5, skip_head=True)
  assert v["params"]["fc"]["kernel"].shape == (512, 5)
  np.testing.assert_array_equal(v["params"]["conv1"]["kernel"],
                                resnet18_sd["conv1.weight"].transpose(2, 3, 1, 0))
  bound = 1 / np.sqrt(512)  # fresh head: torch's nn.Linear init, U(+-1/sqrt(fan_in))
  fc = np.asarray(v["params"]["fc"]["kernel"])
  assert 0 < np.abs(fc).max() <= bound


def test_unknown_model_is_rejected():
  with pytest.raises(ValueError, match="model_name='resnet20' has no torchvision"):
    transfer.from_torchvision("resnet20", {})


# ---------------------------------------------------------------- script and download
def _run_script(*args):
  return subprocess.run([sys.executable, str(REPO / "scripts" / "convert_weights.py"), *args],
                        capture_output=True, text=True, timeout=120, cwd=REPO)


def test_script_round_trip_weights_only(tmp_path, resnet18_sd):
  f = tmp_path / "resnet18.pth"
  torch.save({k: torch.from_numpy(v) for k, v in resnet18_sd.items()}, f)
  out = tmp_path / "out"
  r = _run_script("--model=resnet18", f"--torch_weights={f}", f"--workdir={out}")
  assert r.returncode == 0, r.stderr[-3000:]
  record = json.loads((out / "weights.json").read_text())
  assert record["model"] == "resnet18"
  assert record["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
  assert record["preprocessing"]["crop"] == 224 and record["preprocessing"]["resize"] == 256
  assert record["preprocessing"]["mean"] == [0.485, 0.456, 0.406]
  want = transfer.from_torchvision("resnet18", resnet18_sd)
  with ocp.StandardCheckpointer() as ckptr:
    got = ckptr.restore(out / "variables")
  assert jax.tree.structure(got) == jax.tree.structure(want)
  jax.tree.map(np.testing.assert_array_equal, got, want)
  again = _run_script("--model=resnet18", f"--torch_weights={f}", f"--workdir={out}")
  assert again.returncode != 0 and "already holds" in again.stderr


def test_script_bad_weights_file_is_one_line_and_writes_nothing(tmp_path):
  """A file torch cannot load (``weights_only=True``): one line naming it, nothing written."""
  f = tmp_path / "w.pth"
  f.write_bytes(b"not a checkpoint")
  r = _run_script("--model=resnet18", f"--torch_weights={f}", f"--workdir={tmp_path / 'out'}")
  assert r.returncode != 0, r.stderr[-3000:]
  assert "not a torch file that loads with weights_only=True" in r.stderr
  assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()


@pytest.fixture
def local_server(tmp_path):
  root = tmp_path / "served"
  root.mkdir()
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield root, f"http://127.0.0.1:{server.server_address[1]}"
  server.shutdown()
  server.server_close()


def test_download_checks_sha256_prefix(tmp_path, local_server):
  root, url = local_server
  payload = b"not really weights " * 100
  prefix = hashlib.sha256(payload).hexdigest()[:8]
  (root / f"good-{prefix}.pth").write_bytes(payload)
  (root / f"bad-{prefix}.pth").write_bytes(payload[:-1] + b"!")
  got = transfer.download(f"{url}/good-{prefix}.pth", tmp_path / "dl")
  assert got.read_bytes() == payload
  with pytest.raises(ValueError, match="does not match the prefix"):
    transfer.download(f"{url}/bad-{prefix}.pth", tmp_path / "dl")
  assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [f"good-{prefix}.pth"]


def test_script_download_path(tmp_path, local_server, resnet18_sd):
  root, url = local_server
  tmp = tmp_path / "w.pth"
  torch.save({k: torch.from_numpy(v) for k, v in resnet18_sd.items()}, tmp)
  name = f"resnet18-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"
  (root / name).write_bytes(tmp.read_bytes())
  out = tmp_path / "out"
  r = _run_script("--model=resnet18", "--download", f"--url={url}/{name}", f"--workdir={out}")
  assert r.returncode == 0, r.stderr[-3000:]
  assert (out / name).exists() and (out / "variables").exists()


def test_known_urls_follow_torchvision_naming():
  ws = transfer.weight_set("resnet18")
  assert ws.url == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
  assert transfer.preprocessing("inception_v3")["crop"] == 299
  assert transfer.preprocessing("inception_v3")["resize"] == 342
  assert transfer.preprocessing("googlenet")["mean"] == (0.5, 0.5, 0.5)
  assert set(transfer.weights._FILES) <= set(transfer.TORCHVISION_MODELS)
