"""torchvision's official ImageNet weight files (``IMAGENET1K_V1``): URL, preprocessing, and a
download that checks the sha256 prefix in the file name (docs/transfer.md).

torchvision names its files ``<name>-<hex>.pth`` where ``<hex>`` is the start of the file's
sha256. GoogLeNet and Inception-v3 weights run with ``transform_input=True`` in torchvision, which
turns ImageNet-normalised input into ``(x - 0.5) / 0.5``; cnnlab's models have no such step, so
their ``mean``/``std`` here are 0.5 (``torch_mean``/``torch_std`` keep torchvision's transforms).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import re
import urllib.request

BASE_URL = "https://download.pytorch.org/models/"
_FILES = {
    "alexnet": "alexnet-owt-7be5be79.pth",
    "vgg11": "vgg11-8a719046.pth", "vgg13": "vgg13-19584684.pth",
    "vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth",
    "vgg11_bn": "vgg11_bn-6002323d.pth", "vgg13_bn": "vgg13_bn-abd245e5.pth",
    "vgg16_bn": "vgg16_bn-6c64b313.pth", "vgg19_bn": "vgg19_bn-c79401a0.pth",
    "googlenet": "googlenet-1378be20.pth", "inception_v3": "inception_v3_google-0cc3c7bd.pth",
    "resnet18": "resnet18-f37072fd.pth", "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth", "resnet101": "resnet101-63fe2227.pth",
    "resnet152": "resnet152-394f9c45.pth", "resnext50_32x4d": "resnext50_32x4d-7cdf4587.pth",
    "resnext101_32x8d": "resnext101_32x8d-8ba56ff5.pth",
    "wide_resnet50_2": "wide_resnet50_2-95faca4d.pth",
    "densenet121": "densenet121-a639ec97.pth", "densenet161": "densenet161-8d451a50.pth",
    "densenet169": "densenet169-b2777c0a.pth", "densenet201": "densenet201-c1103571.pth",
    "squeezenet1_0": "squeezenet1_0-b66bff10.pth", "squeezenet1_1": "squeezenet1_1-b8a52dc0.pth",
    "shufflenet_v2_x0_5": "shufflenetv2_x0.5-f707e7126e.pth",
    "shufflenet_v2_x1_0": "shufflenetv2_x1-5666bf0f80.pth",
    "mobilenet_v2": "mobilenet_v2-b0353104.pth",
    "mobilenet_v3_large": "mobilenet_v3_large-8738ca79.pth",
    "mobilenet_v3_small": "mobilenet_v3_small-047dcff4.pth",
}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# (crop, resize, interpolation) where not torchvision's default (224, 256, 'bilinear').
_SIZES = {"inception_v3": (299, 342, "bilinear"),
          **{f"efficientnet_b{i}": (c, r, "bicubic") for i, (c, r) in enumerate(
              ((224, 256), (240, 256), (288, 288), (300, 320), (380, 384), (456, 456),
               (528, 528), (600, 600)))}}
_TRANSFORM_INPUT = ("googlenet", "inception_v3")


@dataclasses.dataclass(frozen=True)
class WeightSet:
  model: str
  url: str
  preprocessing: dict


def preprocessing(model_name: str) -> dict:
  """torchvision's eval transform of ``model_name``'s ImageNet weights: resize the short side to
  ``resize``, centre-crop ``crop``, scale to [0, 1], normalise with ``mean``/``std`` (what
  cnnlab's model expects)."""
  crop, resize, interpolation = _SIZES.get(model_name, (224, 256, "bilinear"))
  transform_input = model_name in _TRANSFORM_INPUT
  half = (0.5, 0.5, 0.5)
  return dict(resize=resize, crop=crop, interpolation=interpolation,
              mean=half if transform_input else IMAGENET_MEAN,
              std=half if transform_input else IMAGENET_STD,
              torch_mean=IMAGENET_MEAN, torch_std=IMAGENET_STD, transform_input=transform_input)


def weight_set(model_name: str) -> WeightSet:
  if model_name not in _FILES:
    raise ValueError(f"model={model_name!r} has no known torchvision weights URL; known: "
                     f"{sorted(_FILES)}")
  return WeightSet(model_name, BASE_URL + _FILES[model_name], preprocessing(model_name))


def sha256_of(path: str | os.PathLike) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def check_sha256_prefix(path: str | os.PathLike, name: str | None = None) -> str:
  """Checks that ``path``'s sha256 starts with the hex after the last '-' of ``name`` (default:
  the file's own name) and returns the full digest; ``ValueError`` otherwise."""
  name = pathlib.Path(name or path).name
  m = re.search(r"-([0-9a-f]{6,})\.[A-Za-z]+$", name)
  if not m:
    raise ValueError(f"{name!r} carries no sha256 prefix ('<name>-<hex>.pth')")
  digest = sha256_of(path)
  if not digest.startswith(m[1]):
    raise ValueError(f"{path}: sha256 {digest[:len(m[1])]}... does not match the prefix "
                     f"{m[1]} in its name; the file is corrupt or not the published one")
  return digest


def download(url: str, dest_dir: str | os.PathLike, timeout: float = 60.0) -> pathlib.Path:
  """Fetches ``url`` into ``dest_dir`` (via a ``.part`` file) and checks its sha256 prefix. An
  existing file of that name is checked and reused, never overwritten."""
  dest = pathlib.Path(dest_dir) / url.rsplit("/", 1)[-1]
  if dest.exists():
    check_sha256_prefix(dest)
    return dest
  dest.parent.mkdir(parents=True, exist_ok=True)
  part = dest.with_name(dest.name + ".part")
  try:
    with urllib.request.urlopen(url, timeout=timeout) as r, open(part, "wb") as f:
      for chunk in iter(lambda: r.read(1 << 20), b""):
        f.write(chunk)
    check_sha256_prefix(part, dest.name)
  except BaseException:
    part.unlink(missing_ok=True)
    raise
  part.rename(dest)
  return dest
