"""``conv(..., impl='auto')``: picks an impl per conv shape from a benchmark cache on disk.

Cache: the JSON that ``scripts/bench_conv.py`` writes/merges, at ``$CNNLAB_CONV_CACHE``
(default ``~/.cache/cnnlab/conv_cache.json``)::

  {"version": 2, "entries": {case_key: {"fwd_bwd_s": {impl: median seconds}, ...}}}

A case key starts with the device it was timed on (``dev=<platform>:<device kind>``, e.g.
``dev=cpu:cpu``) and the XLA compiler options in force (``+xla=<hash>`` when there are any, set
by :func:`compiled_with`; the entry lists them): a time measured on one backend, chip or set of
options never picks the impl under another.
Choice, at trace time (shapes only), among the registered impls that support the case:
1. the cached impl with the smallest fwd+bwd time for this exact case on this device; else for
   the same case with the nearest batch size (the largest one for a symbolic batch);
2. else the heuristic. Off the CPU: ``lax`` (cuDNN / the TPU's convs). On the CPU, from the
   crossovers measured in docs/experiments/conv_impls.md, docs/conv_benchmark.md and
   docs/performance.md ("LeNet-5's convs", "Depthwise convs"):
   - ``im2col`` where the window covers the whole input (one output position, ``groups == 1``:
     one matmul, as LeNet-5's C5, where XLA's input-gradient conv runs over zero padding), and
     for a strided 1x1 conv (a ResNet's downsampling shortcut: a strided slice and one matmul,
     where XLA's weight gradient is a 16x16-window conv; docs/performance.md, "Strided 1x1
     convs");
   - ``fft`` for 1D, ``groups == 1``, stride 1 and kernel >= 23 taps with C_in <= 8, or >= 47
     taps with C_in <= 32;
   - ``depthwise`` for ``groups == C_in > 1`` (MobileNet-v2's 3x3 at 56x56x144: fwd+bwd ~9x
     faster than lax's with its XLA forms; its native kernels, docs/performance.md, faster still);
   - for windows more than one row tall fed by at most 6 channels, ``groups == 1``: in 2D
     ``few`` for float32 (its C++ forward and weight gradient; LeNet-5's two first convs, the
     stems, docs/performance.md, "Few-channel weight gradients"), else ``cols`` up to 3
     channels (LeNet-5's first conv 2.3x faster fwd+bwd than by ``rows``, 3 channels 1.2x),
     ``rows`` from 4 (fwd+bwd faster than ``lax`` at 6 channels, slower at 8 and 16);
     ``im2col`` in 3D (4x faster than ``lax`` for a 3x3x3 conv on grey clips);
   - for 3x3 (3D: 3x3x3) stride-1 undilated float32 convs with ``groups == 1``, C_in and C_out
     multiples of 16, at least 128 output tiles of 2x2 (3D: over all frames) and at most 10 %
     of their pixels past the output (even sizes, or 27 and more), where the native kernels
     build: ``winograd`` (its C++ F(2x2, 3x3) kernels, in 3D per temporal tap: ResNet's 3x3
     stages and ResNet-18 CIFAR's convs 1.3-1.7x faster fwd+bwd than ``direct`` on CPU E,
     C3D's 3x3x3 convs 4-5x faster than ``lax``; docs/performance.md, "A native Winograd conv";
     at ResNet's 7x7x512 stage with 4 images, 64 tiles a third of them padding, ``direct`` was
     faster);
   - for other 3x3x3 convs with ``groups == 1``: ``im2col`` (C3D's train step 0.34x torch
     against 0.30x with ``lax`` for them, same docs section);
   - for other 2D windows of more than one tap, ``groups == 1``: ``direct`` (the C++ kernels)
     on a CPU with AVX-512 for float32 with C_in and C_out in ``conv_direct.ROW_TILE_CHANNELS``
     (ResNet's 3x3 convs: ResNet-18 CIFAR's train step 12-22 % faster than with ``fenced`` on
     CPU E; docs/performance.md, "Row tiles in the dense conv"), else ``fenced`` (``lax``
     behind a fusion fence, and 3. below; on AVX2 CPUs ``direct`` made that step slower);
   - else ``lax``.
3. On the CPU, where the heuristic picks ``fenced``, ``direct`` or ``winograd``, a cached ``lax``
   is run as ``fenced``: a conv timed alone reads a stored input, where the fence has nothing to save
   (``fenced`` times as ``lax`` there); in a network its input is an elementwise chain the fence
   keeps from being recomputed (docs/performance.md, "A fence before the weight gradient"). A
   cached ``direct`` is run as the heuristic's pick: faster alone at several ResNet shapes on
   AVX2 CPUs too, it made every ResNet-18 train step measured there slower than ``fenced``
   (docs/performance.md, "A native dense conv" and "AVX-512, and padding inside the kernels").
   Where it picks ``few``, a cached ``cols`` or ``rows`` (the forms ``few`` takes its input
   gradient from) is run as ``few``: alone they timed LeNet-5's C3 within the spread of
   ``few`` (1.29 against 1.34 ms), in LeNet-5's train step ``few`` made it 10 % faster
   (docs/performance.md, "Few-channel weight gradients").
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import math
import os
import pathlib

import jax
import numpy as np

from cnnlab.ops import conv_direct, conv_winograd, native
from cnnlab.ops.conv_case import ConvCase
from cnnlab.ops.conv_registry import get_impl, list_impls, register_impl, unsupported_reason

CACHE_ENV = "CNNLAB_CONV_CACHE"
DEFAULT_CACHE = pathlib.Path("~/.cache/cnnlab/conv_cache.json")
VERSION = 2  # 2: keys start with the device (1 had none)
_OPTIONS = contextvars.ContextVar("cnnlab_conv_auto_options", default="")


def cache_path() -> pathlib.Path:
  return pathlib.Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def options_tag(options: dict | None) -> str:
  """``''`` for no options (XLA's defaults), else 8 hex digits of a hash of ``options``."""
  if not options:
    return ""
  return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]


@contextlib.contextmanager
def compiled_with(options: dict | None):
  """Within: ``impl='auto'`` traced here reads (and :func:`case_key` names) the cache entries
  timed with these XLA compiler options, the ``compiler_options`` of the jit being traced
  (None or ``{}``: XLA's defaults)."""
  token = _OPTIONS.set(options_tag(options))
  try:
    yield
  finally:
    _OPTIONS.reset(token)


def traced_with(fn, options: dict | None):
  """``fn`` traced inside :func:`compiled_with` ``options`` (to pass to ``jax.jit`` with the same
  ``compiler_options``); keeps ``fn``'s name (a partial's function's) for the jit's name."""

  def traced(*args, **kw):
    with compiled_with(options):
      return fn(*args, **kw)

  return functools.update_wrapper(traced, fn.func if isinstance(fn, functools.partial) else fn)


def device() -> str:
  """``'<platform>:<device kind>'`` of JAX's first device, e.g. ``'cpu:cpu'``, then
  ``'+xla=<options_tag>'`` inside :func:`compiled_with` options."""
  d = jax.devices()[0]
  tag = _OPTIONS.get()
  return f"{d.platform}:{d.device_kind}" + (f"+xla={tag}" if tag else "")


def case_key(case: ConvCase) -> str:
  """``'dev=DEVICE|n=N|x=...|w=...|s=...|p=...|d=...|g=...|dtype'``: one conv after argument
  parsing, on :func:`device`."""
  fmt = lambda v: "x".join(map(str, v))  # noqa: E731
  pads = ",".join(f"{lo}_{hi}" for lo, hi in case.pads)
  return (f"dev={device()}|n={case.x_shape[0]}|x={fmt(case.x_shape[1:])}|w={fmt(case.w_shape)}|"
          f"s={fmt(case.stride)}|p={pads}|d={fmt(case.dilation)}|g={case.groups}|"
          f"{np.dtype(case.dtype).name}")


def _split(key: str) -> tuple[int | None, str]:
  """``(N, the key without its batch field)``; N is None for a symbolic batch (``jax.export``
  with a polymorphic batch dimension)."""
  dev, n, rest = key.split("|", 2)
  n = n.removeprefix("n=")
  return (int(n) if n.isdigit() else None), f"{dev}|{rest}"


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int) -> dict:
  del mtime_ns  # part of the lru key: a rewritten file is read again
  data = json.loads(pathlib.Path(path).read_text())
  if data.get("version") != VERSION:
    raise ValueError(f"conv cache {path} has version {data.get('version')!r}, expected {VERSION} "
                     "(entries keyed by device): delete it, or rerun scripts/bench_conv.py")
  return data["entries"]


def load_cache(path=None) -> dict:
  """The cache's entries (``{}`` when the file does not exist)."""
  path = pathlib.Path(path or cache_path())
  return _read(str(path), path.stat().st_mtime_ns) if path.exists() else {}


def merge_cache(entries: dict, path=None) -> pathlib.Path:
  """Adds/overwrites ``entries`` (``case_key -> {"fwd_bwd_s": {...}, ...}``) in the cache."""
  path = pathlib.Path(path or cache_path())
  merged = {**load_cache(path), **entries}
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(".tmp")
  tmp.write_text(json.dumps({"version": VERSION, "entries": merged}, indent=1, sort_keys=True))
  tmp.replace(path)
  return path


def _can(name: str, case: ConvCase) -> bool:
  return name in list_impls() and name != "auto" and unsupported_reason(name, case) is None


def _winograd_pays(case: ConvCase) -> bool:
  """Whether the heuristic picks ``winograd`` (module docstring, step 2)."""
  unit = (1,) * case.nd
  if not (case.nd in (2, 3) and case.window == (3,) * case.nd and case.stride == unit
          and case.dilation == unit and case.dtype == np.float32
          and conv_winograd.native_serves(case.x_shape[-1], case.w_shape[-1], case.groups)):
    return False
  frames = case.x_shape[0] * math.prod(case.out_spatial[:-2])  # 3D: images per temporal tap
  tiles = [-(-o // 2) for o in case.out_spatial[-2:]]
  return (frames * math.prod(tiles) >= 128
          and 4 * math.prod(tiles) <= 1.1 * math.prod(case.out_spatial[-2:])
          and native.enabled() and native.targets("winograd", conv_winograd.NATIVE))


def heuristic(case: ConvCase) -> str:
  """The documented fallback (module docstring, step 2)."""
  k, c_in = case.window[0], case.x_shape[-1]
  if jax.default_backend() != "cpu":
    preferred = "lax"
  elif case.groups == 1 and (math.prod(case.out_spatial) == 1 < math.prod(case.window)
                             or math.prod(case.window) == 1 < math.prod(case.stride)):
    preferred = "im2col"
  elif (case.nd == 1 and case.groups == 1 and case.stride == (1,)
      and ((k >= 23 and c_in <= 8) or (k >= 47 and c_in <= 32))):
    preferred = "fft"
  elif case.groups == c_in > 1:
    preferred = "depthwise"
  elif case.nd > 1 and k > 1 and case.groups == 1 and c_in <= 6:
    if case.nd > 2:
      preferred = "im2col"
    elif case.dtype == np.float32:
      preferred = "few"
    else:
      preferred = "cols" if c_in <= 3 else "rows"
  elif _winograd_pays(case):
    preferred = "winograd"
  elif case.nd == 3 and case.groups == 1 and case.window == (3, 3, 3):
    preferred = "im2col"
  elif case.nd == 2 and case.groups == 1 and math.prod(case.window) > 1:
    rows = {c_in, case.w_shape[-1]} <= set(conv_direct.ROW_TILE_CHANNELS)
    preferred = "direct" if rows and case.dtype == np.float32 and native.avx512() else "fenced"
  else:
    preferred = "lax"
  return preferred if _can(preferred, case) else "lax"


# Where the heuristic picks one of these, a cached winner among them runs as the heuristic's
# pick; where it picks one of these or winograd, a cached lax as fenced; where it picks few, a
# cached cols or rows runs as few (module docstring, step 3).
_XLA_OR_NATIVE = ("fenced", "direct")


def choose(case: ConvCase, entries: dict | None = None) -> str:
  """The impl ``impl='auto'`` runs for ``case`` (see the module docstring)."""
  entries = load_cache() if entries is None else entries
  key = case_key(case)
  n, rest = _split(key)
  if key in entries:
    candidates = [entries[key]]
  else:
    same = sorted((-m if n is None else abs(m - n), k)  # symbolic N: the largest timed batch
                  for k in entries for m, r in [_split(k)] if r == rest)
    candidates = [entries[k] for _, k in same]
  for entry in candidates:
    times = {k: t for k, t in entry.get("fwd_bwd_s", {}).items() if _can(k, case)}
    if times:
      best = min(times, key=times.get)
      pick = heuristic(case)
      if pick in (*_XLA_OR_NATIVE, "winograd") and best in ("lax", "fenced"):
        return "fenced"
      if pick in _XLA_OR_NATIVE and best == "direct":
        return pick
      return pick if pick == "few" and best in ("cols", "rows") else best
  return heuristic(case)


@register_impl("auto")
def conv_auto(x, w, *, stride, pads, dilation, groups):
  case = ConvCase(tuple(x.shape), tuple(w.shape), tuple(stride), tuple(map(tuple, pads)),
                  tuple(dilation), groups, np.dtype(x.dtype))
  return get_impl(choose(case))(x, w, stride=stride, pads=pads, dilation=dilation, groups=groups)
