"""CPU kernels in C++ as XLA FFI custom calls, compiled on first use (docs/performance.md,
"A native depthwise kernel", "A native dense conv", "A native forward for few input channels").

``targets(source, symbols)`` compiles ``<source>.cc`` beside this file once per machine against
the installed jaxlib's FFI headers (``jax.ffi.include_dir()``), with ``$CXX`` (default ``c++``;
GCC 12+ or Clang: the kernels use vector extensions and ``__builtin_shufflevector``) and
``-O3 -march=native``, into ``$CNNLAB_NATIVE_CACHE`` (default ``~/.cache/cnnlab/native``)
under a name hashing the source, the headers beside it (``common.h``), the flags, the
compiler's version, jaxlib's version and the CPU, so that an edit, an upgrade or another
machine sharing the folder builds its own; the library is written to a temporary file and
renamed, so parallel processes never load a partial one, and built under a lock file in the
cache (``fcntl.flock``, where POSIX has it), so that processes starting together (pytest's
workers) build it once. It then registers each handler symbol as a CPU FFI target. Where that
fails (no compiler, a build error) it logs one warning and returns False: callers keep their
XLA form.

``enabled()``: False under ``CNNLAB_NATIVE=0`` or inside ``disabled()`` (``jax.export`` uses it:
an artifact must not name a custom call that only this library registers). ``serves`` and
``call`` are what the impls use: whether a source's kernels take float32 operands now, and one
handler as a function of its operands.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import hashlib
import importlib.metadata
import os
import pathlib
import platform
import subprocess
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

try:
  import fcntl
except ImportError:  # no POSIX locks (Windows): processes starting together each build
  fcntl = None

FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-fno-math-errno", "-std=c++17",
         "-fPIC", "-shared", "-Wno-attributes", "-Wno-return-type")
_DISABLED = contextvars.ContextVar("cnnlab_native_disabled", default=False)


def enabled() -> bool:
  """Whether impls may use the native kernels now (see module doc)."""
  return os.environ.get("CNNLAB_NATIVE", "1") != "0" and not _DISABLED.get()


@contextlib.contextmanager
def disabled():
  """Within this block, impls trace their XLA forms only."""
  token = _DISABLED.set(True)
  try:
    yield
  finally:
    _DISABLED.reset(token)


@functools.cache
def avx512() -> bool:
  """Whether this CPU has AVX-512 (Linux: ``avx512f`` among its flags): the native kernels,
  built with ``-march=native``, then use 16-float vectors and their widest tiles."""
  return any(line.startswith("flags") and " avx512f" in f" {line} "
             for line in _cpu_id().splitlines())


def _cpu_id() -> str:
  """The CPU's model and feature flags (Linux), else the machine name: ``-march=native`` code
  runs only where it was built."""
  try:
    lines = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
    return "\n".join(sorted({l for l in lines if l.startswith(("model name", "flags"))}))
  except OSError:
    return platform.machine() + platform.processor()


def _build(source: pathlib.Path) -> pathlib.Path:
  """The compiled library of ``source``, built into the cache unless already there."""
  cxx = os.environ.get("CXX", "c++")
  version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout
  headers = sorted(source.parent.glob("*.h"))
  parts = [source.read_text(), *(h.read_text() for h in headers), *FLAGS, cxx, version,
           importlib.metadata.version("jaxlib"), _cpu_id()]
  key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
  cache = pathlib.Path(os.environ.get("CNNLAB_NATIVE_CACHE",
                                      pathlib.Path.home() / ".cache" / "cnnlab" / "native"))
  lib = cache / f"{source.stem}-{key}.so"
  if lib.exists():
    return lib
  cache.mkdir(parents=True, exist_ok=True)
  with open(cache / f"{lib.name}.lock", "w") as lock:
    if fcntl is not None:
      fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
    if lib.exists():  # built by another process while this one waited
      return lib
    logging.info("cnnlab native: building %s (once for this machine)", lib)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache)
    os.close(fd)
    try:
      subprocess.run([cxx, *FLAGS, f"-I{jax.ffi.include_dir()}", str(source), "-o", tmp],
                     capture_output=True, text=True, check=True)
      os.replace(tmp, lib)
    finally:
      if os.path.exists(tmp):
        os.unlink(tmp)
  return lib


@functools.cache
def targets(source: str, symbols: tuple[str, ...]) -> bool:
  """Builds ``<source>.cc`` and registers each of ``symbols`` as the CPU FFI target of the same
  name; False, after one warning, where it cannot (see module doc)."""
  try:
    lib = ctypes.cdll.LoadLibrary(str(_build(pathlib.Path(__file__).with_name(f"{source}.cc"))))
    for symbol in symbols:
      jax.ffi.register_ffi_target(symbol, jax.ffi.pycapsule(getattr(lib, symbol)),
                                  platform="cpu")
  except (OSError, subprocess.CalledProcessError, AttributeError) as e:
    detail = getattr(e, "stderr", "") or str(e)
    logging.warning("cnnlab native %s kernels unavailable, using the XLA forms: %s", source,
                    " ".join(detail.split())[:500])
    return False
  return True


def serves(source: str, symbols: tuple[str, ...], *operands) -> bool:
  """Whether ``source``'s kernels may run on ``operands``: all float32, JAX's default backend the
  CPU, native kernels enabled and built (``targets``)."""
  return (all(a.dtype == jnp.float32 for a in operands) and jax.default_backend() == "cpu"
          and enabled() and targets(source, symbols))


def call(target: str, out_shape, **attrs):
  """The handler ``target`` as a function of its operands -> float32 ``out_shape``; ``attrs``
  (ints) passed as int64 attributes. vmap runs it once per element."""
  fn = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(tuple(out_shape), jnp.float32),
                        vmap_method="sequential")
  return functools.partial(fn, **{k: np.int64(v) for k, v in attrs.items()})
