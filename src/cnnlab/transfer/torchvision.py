"""torchvision ``state_dict`` -> cnnlab ``variables`` (docs/transfer.md).

``from_torchvision(model_name, state_dict)`` returns ``{'params', 'batch_stats'}`` for
``cnnlab.models.create(model_name, num_classes=...)``. The mapping is built from cnnlab's
parameter tree (``jax.eval_shape`` of ``model.init``): each Flax leaf gets one torch key from a
per-family naming rule, and every torch key must be consumed. Layouts: conv ``(O, I/g, kh, kw)``
-> ``(kh, kw, I/g, O)``, linear ``(out, in)`` -> ``(in, out)`` (a Linear that reads a flattened
``C x s x s`` map has its input rows reordered from torch's ``(C, H, W)`` to channels-last
``(H, W, C)``), BatchNorm ``weight/bias/running_mean/running_var`` -> ``scale/bias/mean/var``;
``num_batches_tracked`` is dropped. No torch import: tensors only need ``.detach()``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cnnlab import models
from cnnlab.models import efficientnet

# Registered models with a torchvision counterpart of the same name and parameter layout.
TORCHVISION_MODELS = (
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "googlenet", "inception_v3",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "resnext101_32x8d", "wide_resnet50_2",
    "densenet121", "densenet161", "densenet169", "densenet201",
    "squeezenet1_0", "squeezenet1_1",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
    "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
    *(f"efficientnet_b{i}" for i in range(8)),
)
_LEAF = {("params", "kernel"): "weight", ("params", "bias"): "bias",
         ("params", "scale"): "weight", ("batch_stats", "mean"): "running_mean",
         ("batch_stats", "var"): "running_var"}
# Old torchvision DenseNet files name 'denselayer1.norm.1.weight' for 'denselayer1.norm1.weight'
# (torchvision's densenet._load_state_dict applies the same rewrite).
_DENSENET_LEGACY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")

Path = tuple[str, ...]


def _family(name: str) -> str:
  for prefix in ("mobilenet_v2", "mobilenet_v3", "googlenet", "inception_v3"):
    if name.startswith(prefix):
      return prefix
  return models.get_spec(name).family


def _dot_index(path: Path) -> str:
  """'stage2_0/branch1_3' -> 'stage2.0.branch1.3' (ShuffleNet v2, GoogLeNet)."""
  return ".".join(re.sub(r"_(\d+)$", r".\1", p) for p in path)


def _resnet(path: Path, _tree) -> str:
  out = []
  for p in path:
    m = re.fullmatch(r"layer(\d+)_(\d+)", p)
    out.append(f"layer{m[1]}.{m[2]}" if m else
               {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}.get(p, p))
  return ".".join(out)


def _densenet(path: Path, _tree) -> str:
  if path == ("classifier",):
    return "classifier"
  m = re.fullmatch(r"denseblock(\d+)_layer(\d+)", path[0])
  head = f"denseblock{m[1]}.denselayer{m[2]}" if m else path[0]
  return ".".join(("features", head) + path[1:])


def _alexnet(path: Path, _tree) -> str:
  return {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6",
          "conv4": "features.8", "conv5": "features.10", "fc1": "classifier.1",
          "fc2": "classifier.4", "head": "classifier.6"}.get(path[0], path[0])


def _vgg(path: Path, tree) -> str:
  """``features`` is one Sequential: per conv [Conv, (BN), ReLU], per stage a MaxPool."""
  if path[0] in ("fc1", "fc2", "head"):
    return f"classifier.{ {'fc1': 0, 'fc2': 3, 'head': 6}[path[0]] }"
  per_conv = 3 if any(k.startswith("norm") for k in tree["block1"]) else 2
  index = 0
  for s in range(1, int(path[0][len("block"):])):
    index += per_conv * sum(k.startswith("conv") for k in tree[f"block{s}"]) + 1
  kind, i = re.fullmatch(r"(conv|norm)(\d+)", path[1]).groups()
  return f"features.{index + per_conv * int(i) + (kind == 'norm')}"


def _squeezenet(path: Path, tree) -> str:
  """features: [Conv, ReLU, MaxPool, stage1 Fires, MaxPool, stage2 Fires, MaxPool, stage3]."""
  if path[0] == "conv1":
    return "features.0"
  if path[0] == "head":
    return "classifier.1"
  stage, fire = map(int, re.fullmatch(r"stage(\d+)_fire(\d+)", path[0]).groups())
  before = sum(1 for k in tree if (m := re.fullmatch(r"stage(\d+)_fire\d+", k))
               and int(m[1]) < stage)
  return ".".join((f"features.{3 + before + (stage - 1) + fire - 1}",) + path[1:])


def _cna(sub: Path) -> str:
  """A ConvNormAct's 'conv' / 'bn' -> torchvision Conv2dNormActivation's '0' / '1'."""
  return {"conv": "0", "bn": "1"}[sub[0]]


def _inverted_residual(prefix: str, path: Path, block_tree) -> str:
  """MobileNet v3 / EfficientNet: ``block.{k}`` over the [expand], depthwise, [se], project
  present in the block."""
  order = [n for n in ("expand", "depthwise", "se", "project") if n in block_tree]
  k = order.index(path[0])
  return f"{prefix}.block.{k}." + (path[1] if path[0] == "se" else _cna(path[1:]))


def _mobilenet_v2(path: Path, tree) -> str:
  """features.0 stem, features.{i+1}.conv = [[expand cna], depthwise cna, project Conv, BN]."""
  if path[0] == "classifier":
    return "classifier.1"
  if path[0] in ("stem_conv", "head_conv"):
    n = sum(k.startswith("block") for k in tree)
    return f"features.{0 if path[0] == 'stem_conv' else n + 1}.{_cna(path[1:])}"
  i, block = int(path[0][len("block"):]), tree[path[0]]
  seq = [m for m in ("expand", "depthwise") if m in block]
  if path[1] == "project":
    return f"features.{i + 1}.conv.{len(seq) + (path[2] == 'bn')}"
  return f"features.{i + 1}.conv.{seq.index(path[1])}.{_cna(path[2:])}"


def _mobilenet_v3(path: Path, tree) -> str:
  """features.0 stem, features.{i+1}.block.{k}, features.{n+1} head conv; classifier.0 / .3."""
  if path[0] in ("classifier_hidden", "classifier"):
    return f"classifier.{0 if path[0] == 'classifier_hidden' else 3}"
  if path[0] in ("stem_conv", "head_conv"):
    n = sum(k.startswith("block") for k in tree)
    return f"features.{0 if path[0] == 'stem_conv' else n + 1}.{_cna(path[1:])}"
  i = int(path[0][len("block"):])
  return _inverted_residual(f"features.{i + 1}", path[1:], tree[path[0]])


def _efficientnet(path: Path, tree, depth: float) -> str:
  """features.0 stem, features.{r+1}.{j} the j-th block of B0 row r, features.8 head conv."""
  repeats = [math.ceil(row[-1] * depth) for row in efficientnet.B0_ROWS]
  if path[0] == "classifier":
    return "classifier.1"
  if path[0] in ("stem_conv", "head_conv"):
    return f"features.{0 if path[0] == 'stem_conv' else len(repeats) + 1}.{_cna(path[1:])}"
  i = int(path[0][len("block"):])
  r = int(np.searchsorted(np.cumsum(repeats), i, side="right"))
  j = i - sum(repeats[:r])
  return _inverted_residual(f"features.{r + 1}.{j}", path[1:], tree[path[0]])


def _inception_v3(path: Path, _tree) -> str:
  return ".".join(path)


# family -> (naming rule, heads (Flax module paths), auxiliary heads (may be absent)).
_HEADS = {"alexnet": ("head",), "vgg": ("head",), "squeezenet": ("head",), "resnet": ("fc",),
          "shufflenet": ("fc",), "googlenet": ("fc", "aux1/fc2", "aux2/fc2"),
          "inception_v3": ("fc", "AuxLogits/fc"), "densenet": ("classifier",),
          "mobilenet_v2": ("classifier",), "mobilenet_v3": ("classifier",),
          "efficientnet": ("classifier",)}
_AUX = {"googlenet": ("aux1", "aux2"), "inception_v3": ("AuxLogits",)}


def _rule(family: str, model) -> Callable[[Path, Any], str]:
  if family == "efficientnet":
    return lambda p, t: _efficientnet(p, t, model.depth_multiplier)
  return {"alexnet": _alexnet, "vgg": _vgg, "squeezenet": _squeezenet, "resnet": _resnet,
          "shufflenet": lambda p, t: _dot_index(p), "googlenet": lambda p, t: _dot_index(p),
          "inception_v3": _inception_v3, "densenet": _densenet, "mobilenet_v2": _mobilenet_v2,
          "mobilenet_v3": _mobilenet_v3}[family]


def _flattened(family: str, model) -> dict[str, int]:
  """Flax Dense paths whose input is a flattened ``s x s`` map -> ``s``."""
  if family in ("alexnet", "vgg"):
    return {"fc1": model.pool_size}
  if family == "googlenet":
    return {"aux1/fc1": 4, "aux2/fc1": 4}  # InceptionAux: adaptive avg pool to 4x4.
  return {}


def _to_numpy(value) -> np.ndarray:
  if hasattr(value, "detach"):  # a torch tensor
    value = value.detach().cpu()
  return np.asarray(value)


def _convert(key: str, value: np.ndarray, leaf: str, flat_size: int | None) -> np.ndarray:
  if leaf != "kernel":
    return value
  if value.ndim == 4:  # (O, I/groups, kh, kw) -> (kh, kw, I/groups, O)
    return value.transpose(2, 3, 1, 0)
  if value.ndim != 2:
    raise ValueError(f"from_torchvision: {key} has shape {value.shape}, expected a Linear "
                     "(2-D) or Conv2d (4-D) weight")
  if flat_size is not None:  # rows (C, H, W) -> (H, W, C)
    out, n = value.shape
    c = n // (flat_size * flat_size)
    if c * flat_size * flat_size == n:
      return value.reshape(out, c, flat_size, flat_size).transpose(2, 3, 1, 0).reshape(n, out)
  return value.T


def _listing(title: str, items: list[str], limit: int = 12) -> str:
  more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
  return f"{len(items)} {title}: [{', '.join(items[:limit])}{more}]"


def from_torchvision(model_name: str, state_dict: Mapping[str, Any], num_classes: int | None = None,
                     *, skip_head: bool = False, seed: int = 0, **overrides) -> dict:
  """Converts torchvision ``state_dict`` (names -> numpy arrays or torch tensors) for
  ``models.create(model_name, num_classes=num_classes, **overrides)``.

  ``num_classes=None`` takes the checkpoint's; a different ``num_classes`` raises unless
  ``skip_head=True``, which ignores the checkpoint's head (and auxiliary heads) and initialises
  them fresh from ``seed``. ``overrides`` are other ``create`` options; they must describe the
  checkpoint's architecture. Auxiliary heads in the file (GoogLeNet ``aux1``/``aux2``,
  Inception-v3 ``AuxLogits``) are dropped when the model is built without them
  (``aux_logits=False``). Returns ``{'params', 'batch_stats'}`` of float32 ``jax.Array``;
  raises ``ValueError`` listing missing / unused torch keys and shape mismatches.
  """
  if model_name not in TORCHVISION_MODELS:
    raise ValueError(f"from_torchvision: model_name={model_name!r} has no torchvision weights "
                     f"layout here; valid names: {list(TORCHVISION_MODELS)}")
  family = _family(model_name)
  sd = {}
  for k, v in state_dict.items():
    if not k.endswith("num_batches_tracked"):
      sd[_DENSENET_LEGACY.sub(r"\1\2", k) if family == "densenet" else k] = _to_numpy(v)

  rule = _rule(family, models.create(model_name, **overrides))
  heads = [tuple(h.split("/")) for h in _HEADS[family]]
  head_bias = rule(heads[0], None) + ".bias"  # head names need no tree
  if head_bias not in sd:
    raise ValueError(f"from_torchvision({model_name!r}): state_dict has no head bias "
                     f"{head_bias!r}; is it a {model_name} checkpoint?")
  file_classes = int(sd[head_bias].shape[0])
  num_classes = file_classes if num_classes is None else num_classes
  if num_classes != file_classes and not skip_head:
    raise ValueError(f"from_torchvision({model_name!r}): num_classes={num_classes} but the "
                     f"checkpoint's head {head_bias!r} has {file_classes} classes; pass "
                     "skip_head=True to initialise a new head instead")

  model = models.create(model_name, num_classes=num_classes, **overrides)
  x = jax.ShapeDtypeStruct((1, *models.get_spec(model_name).test_input_shape), jnp.float32)
  abstract = jax.eval_shape(model.init, jax.random.key(seed), x)
  tree = abstract["params"]
  flat = _flattened(family, model)
  heads = [h for h in heads if _has(tree, h)]
  ignored = tuple(rule((a,), tree) + "." for a in _AUX.get(family, ()) if a not in tree)
  if skip_head:
    ignored += tuple(rule(h, tree) + "." for h in heads)

  used, missing, wrong = set(), [], []

  def fill(col, kpath, leaf):
    path = tuple(k.key for k in kpath)
    if skip_head and any(path[:len(h)] == h for h in heads):
      return None
    key = f"{rule(path[:-1], tree)}.{_LEAF[(col, path[-1])]}"
    if key not in sd:
      missing.append(key)
      return None
    used.add(key)
    value = _convert(key, sd[key], path[-1], flat.get("/".join(path[:-1])))
    if value.shape != leaf.shape:
      wrong.append(f"{col}/{'/'.join(path)} {tuple(leaf.shape)} <- {key} {tuple(value.shape)}")
    return value.astype(leaf.dtype)

  out = {col: jax.tree_util.tree_map_with_path(lambda p, a, c=col: fill(c, p, a), sub)
         for col, sub in abstract.items()}
  unused = [k for k in sd if k not in used and not k.startswith(ignored)]
  if missing or wrong or unused:
    problems = [_listing(title, items) for title, items in (
        ("missing torch keys", missing), ("shape mismatches (flax <- torch)", wrong),
        ("unused torch keys", unused)) if items]
    raise ValueError(f"from_torchvision({model_name!r}): state_dict does not fit the model: "
                     + "; ".join(problems))
  fresh = _fresh_heads(model, x, seed, heads) if skip_head else None
  return {col: jax.tree_util.tree_map_with_path(
      lambda p, v, c=col: _get(fresh[c], tuple(k.key for k in p)) if v is None
      else jnp.asarray(v), sub, is_leaf=lambda v: v is None) for col, sub in out.items()}


def _get(tree, path: Path):
  for p in path:
    tree = tree[p]
  return tree


def _has(tree, path: Path) -> bool:
  for p in path:
    if not isinstance(tree, Mapping) or p not in tree:
      return False
    tree = tree[p]
  return True


def _fresh_heads(model, x, seed: int, heads: list[Path]) -> dict:
  """``{col: tree}`` holding only the ``heads``' variables of ``model.init(seed)`` (jit computes
  only them)."""
  def init(key):
    v = model.init(key, jnp.zeros(x.shape, x.dtype))
    out = {}
    for col, sub in v.items():
      for h in heads:
        if _has(sub, h):
          node = out.setdefault(col, {})
          for p in h[:-1]:
            node = node.setdefault(p, {})
          node[h[-1]] = _get(sub, h)
    return out
  return jax.jit(init)(jax.random.key(seed))
