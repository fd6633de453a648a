"""``conv(impl='auto')``: follows a cache file written here, else the heuristic; equals lax."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from cnnlab import ops
from cnnlab.ops import conv_auto, native
from cnnlab.ops.conv_case import make_case
from conftest import needs_compiler

X, W = (2, 8, 8, 8), (3, 3, 8, 5)  # 2D 3x3: every impl (winograd included) supports it; 8
# input channels: the heuristic takes fenced (lax behind a fusion fence) on the CPU


def _case(x_shape=X, w_shape=W, **kw):
  return make_case(x_shape, w_shape, jnp.float32, jnp.float32, **kw)


def _write(path, entries):
  path.write_text(json.dumps({"version": 2, "entries": entries}))


def _jaxpr_text(x_shape=X, w_shape=W):
  fn = lambda x, w: ops.conv(x, w, padding="SAME", impl="auto")  # noqa: E731
  return str(jax.make_jaxpr(fn)(jnp.zeros(x_shape), jnp.zeros(w_shape)))


@pytest.fixture
def cache(tmp_path, monkeypatch):
  """An empty cache file here; the CPU taken as one without AVX-512 (the AVX2 rules), so that
  the expectations hold on any CPU (``test_avx512_takes_direct_for_resnet_convs``)."""
  path = tmp_path / "conv_cache.json"
  monkeypatch.setenv(conv_auto.CACHE_ENV, str(path))
  monkeypatch.setattr(native, "avx512", lambda: False)
  return path


def test_follows_cache_file(cache):
  key = conv_auto.case_key(_case(padding="SAME"))
  _write(cache, {key: {"fwd_bwd_s": {"lax": 2.0, "fft": 1.0, "im2col": 3.0}}})
  assert conv_auto.choose(_case(padding="SAME")) == "fft"
  # the traced computation really is the FFT one (and not lax's conv)
  text = _jaxpr_text()
  assert "fft" in text and "conv_general_dilated" not in text
  _write(cache, {key: {"fwd_bwd_s": {"lax": 2.0, "fft": 4.0, "im2col": 3.0}}})
  assert conv_auto.choose(_case(padding="SAME")) == "fenced"  # a cached lax, in a network
  grad = jax.grad(lambda x, w: ops.conv(x, w, padding="SAME", impl="auto").sum(), 1)
  text = str(jax.make_jaxpr(grad)(jnp.zeros(X), jnp.zeros(W)))
  assert "conv_general_dilated" in text and "cond[" in text  # the fence, where differentiated
  # a cached direct too: faster alone, slower than fenced inside train steps
  case = _case(w_shape=(3, 3, 8, 8), padding="SAME")
  _write(cache, {conv_auto.case_key(case): {"fwd_bwd_s": {"lax": 2.0, "direct": 1.0}}})
  assert conv_auto.choose(case) == "fenced"


def test_skips_cached_impls_that_cannot_serve_the_case(cache):
  case = _case((2, 8, 8, 8), (5, 5, 8, 5))  # winograd needs 3x3
  _write(cache, {conv_auto.case_key(case): {"fwd_bwd_s": {"winograd": 0.1, "shift": 0.5,
                                                          "lax": 1.0, "no_such_impl": 0.01}}})
  assert conv_auto.choose(case) == "shift"


def test_nearest_batch_then_heuristic(cache):
  entries = {conv_auto.case_key(_case((n, 8, 8, 8))): {"fwd_bwd_s": {"lax": 1.0, impl: 0.5}}
             for n, impl in [(8, "im2col"), (64, "shift")]}
  _write(cache, entries)
  assert conv_auto.choose(_case((16, 8, 8, 8))) == "im2col"
  assert conv_auto.choose(_case((48, 8, 8, 8))) == "shift"
  assert conv_auto.choose(_case((16, 9, 8, 8))) == "fenced"  # no entry: heuristic


def test_symbolic_batch_takes_the_largest_timed_batch(cache):
  """Under ``jax.export`` with a polymorphic batch the case's N is symbolic: the entry of the
  largest timed batch decides."""
  entries = {conv_auto.case_key(_case((n, 8, 8, 8), padding="SAME")): {"fwd_bwd_s": times}
             for n, times in [(8, {"lax": 1.0, "im2col": 0.5}), (64, {"lax": 1.0, "shift": 0.5})]}
  _write(cache, entries)
  (b,) = jax.export.symbolic_shape("b")

  def exported_hlo():  # a new function each time: jit's trace cache would keep the first choice
    fn = lambda x, w: ops.conv(x, w, padding="SAME", impl="auto")  # noqa: E731
    return jax.export.export(jax.jit(fn))(jax.ShapeDtypeStruct((b, 8, 8, 8), jnp.float32),
                                          jax.ShapeDtypeStruct(W, jnp.float32)).mlir_module()

  assert "stablehlo.convolution" not in exported_hlo()  # shift: dots over the offsets
  _write(cache, {})
  assert "stablehlo.convolution" in exported_hlo()  # the heuristic: fenced, lax's conv


@pytest.mark.parametrize("x_shape,w_shape,kw,expected", [
    ((2, 64, 4), (23, 4, 4), {}, "fft"),
    ((2, 96, 32), (47, 32, 32), {}, "fft"),
    ((2, 96, 64), (63, 64, 64), {}, "lax"),
    ((2, 64, 4), (23, 4, 4), dict(stride=2), "lax"),
    ((2, 64, 4), (15, 4, 4), {}, "lax"),
    ((2, 12, 12, 1), (5, 5, 1, 6), {}, "few"),  # few input channels (LeNet-5's C1)
    ((2, 12, 12, 3), (3, 3, 3, 8), dict(stride=2), "few"),
    ((2, 12, 12, 3), (3, 3, 3, 12), dict(stride=2), "few"),
    ((2, 12, 12, 4), (3, 3, 4, 8), {}, "few"),
    ((2, 8, 12, 12, 1), (3, 3, 3, 1, 8), {}, "im2col"),
    ((2, 12, 12, 6), (5, 5, 6, 16), {}, "few"),
    ((2, 12, 12, 8), (5, 5, 8, 16), {}, "fenced"),
    ((2, 12, 12, 12), (3, 3, 6, 16), dict(groups=2), "lax"),
    ((2, 12, 12, 3), (1, 3, 3, 8), {}, "fenced"),  # one row tall already: not cols
    ((2, 64, 3), (5, 3, 4), {}, "lax"),  # 1D: rows would be im2col
    ((2, 12, 12, 8), (3, 3, 1, 8), dict(groups=8), "depthwise"),
    ((2, 12, 12, 8), (3, 3, 1, 16), dict(groups=8, stride=2), "depthwise"),
    ((2, 12, 12, 8), (3, 3, 2, 8), dict(groups=4), "lax"),
    ((2, 12, 12, 8), (3, 3, 8, 8), {}, "fenced"),
    ((2, 12, 12, 64), (3, 3, 64, 64), dict(padding=1), "fenced"),  # a ResNet conv
    ((2, 8, 12, 12, 8), (3, 3, 3, 8, 8), {}, "im2col"),  # 3D: the fence is measured in 2D only
    ((2, 8, 12, 12, 8), (1, 3, 3, 8, 8), {}, "lax"),
    ((2, 5, 5, 16), (5, 5, 16, 120), {}, "im2col"),  # one output position: one matmul
    ((2, 30, 4), (30, 4, 8), {}, "im2col"),  # ... before fft's rule
    ((2, 5, 5, 16), (5, 5, 16, 120), dict(padding="SAME"), "fenced"),
    ((2, 1, 1, 8), (1, 1, 8, 8), {}, "lax"),  # a 1x1 window: lax's conv is a dot already
    ((2, 12, 12, 8), (1, 1, 8, 16), dict(stride=2), "im2col"),  # ... but strided it is not
    ((2, 12, 8), (1, 8, 16), dict(stride=3), "im2col"),
    ((2, 12, 12, 8), (1, 1, 4, 16), dict(stride=2, groups=2), "lax"),
    ((2, 5, 5, 16), (5, 5, 1, 16), dict(groups=16), "depthwise"),
])
def test_heuristic_without_cache(cache, x_shape, w_shape, kw, expected):
  assert not cache.exists()
  assert conv_auto.choose(_case(x_shape, w_shape, **kw)) == expected


@pytest.mark.parametrize("c_in, expected", [(1, "cols"), (6, "rows")])
def test_few_channels_in_bfloat16_keep_cols_or_rows(cache, c_in, expected):
  """``few``'s C++ kernels are float32 only: bfloat16 LeNet-5 convs keep ``cols`` (up to 3
  input channels) or ``rows``."""
  case = make_case((2, 12, 12, c_in), (5, 5, c_in, 16), jnp.bfloat16, jnp.bfloat16)
  assert conv_auto.choose(case) == expected


@needs_compiler
@pytest.mark.parametrize("x_shape, w_shape, expected", [
    ((4, 16, 16, 16), (3, 3, 16, 32), "winograd"),         # 256 tiles of 2x2
    ((2, 8, 16, 16, 16), (3, 3, 3, 16, 16), "winograd"),   # 3D: 16 frames of 64 tiles
    ((16, 7, 7, 64), (3, 3, 64, 64), "fenced"),            # 7x7: 16 tiles, 64 outputs for 49
    ((1, 16, 16, 64), (3, 3, 64, 64), "fenced"),           # 64 tiles
    ((4, 16, 16, 8), (3, 3, 8, 32), "fenced"),             # C_in not a multiple of 16
    ((2, 8, 16, 16, 8), (3, 3, 3, 8, 16), "im2col"),
])
def test_winograd_for_3x3_stride1_convs_with_enough_even_tiles(cache, x_shape, w_shape, expected):
  assert conv_auto.choose(_case(x_shape, w_shape, padding=1)) == expected
  strided = _case(x_shape, w_shape, padding=1, stride=2)
  assert conv_auto.choose(strided) != "winograd"


def test_avx512_takes_direct_for_resnet_convs(cache, monkeypatch):
  """With AVX-512, float32 2D convs with 64-512 channels in and out go to ``direct`` (its row
  tiles); other channel counts and dtypes stay ``fenced``; a cached ``lax`` runs as ``fenced``,
  a cached ``direct`` as ``direct``, where without AVX-512 it runs as ``fenced``."""
  resnet = _case((2, 12, 12, 64), (3, 3, 64, 128), padding=1)
  strided = _case((2, 12, 12, 256), (3, 3, 256, 512), padding=1, stride=2)
  assert conv_auto.choose(resnet) == "fenced"
  key = conv_auto.case_key(resnet)
  _write(cache, {key: {"fwd_bwd_s": {"lax": 2.0, "direct": 1.0}}})
  assert conv_auto.choose(resnet) == "fenced"
  monkeypatch.setattr(native, "avx512", lambda: True)
  assert conv_auto.choose(resnet) == "direct"
  _write(cache, {})
  assert conv_auto.choose(resnet) == conv_auto.choose(strided) == "direct"
  assert conv_auto.choose(_case((2, 12, 12, 64), (3, 3, 64, 48), padding=1)) == "fenced"
  assert conv_auto.choose(_case((2, 12, 12, 8), (3, 3, 8, 64), padding=1)) == "fenced"
  bf16 = make_case((2, 12, 12, 64), (3, 3, 64, 64), jnp.bfloat16, jnp.bfloat16, padding=1)
  assert conv_auto.choose(bf16) == "fenced"
  _write(cache, {key: {"fwd_bwd_s": {"lax": 1.0, "direct": 2.0}}})
  assert conv_auto.choose(resnet) == "fenced"
  _write(cache, {key: {"fwd_bwd_s": {"lax": 1.0, "im2col": 0.5, "direct": 2.0}}})
  assert conv_auto.choose(resnet) == "im2col"


def test_a_cached_cols_or_rows_runs_as_few(cache):
  """Where the heuristic picks ``few``, a cached ``cols``/``rows`` runs as ``few``; another cached
  winner runs as itself; in bfloat16 (no ``few``) the cached winner runs."""
  c3 = _case((2, 14, 14, 6), (5, 5, 6, 16))
  c3_bf16 = make_case((2, 14, 14, 6), (5, 5, 6, 16), jnp.bfloat16, jnp.bfloat16)
  _write(cache, {conv_auto.case_key(c3): {"fwd_bwd_s": {"cols": 1.0, "rows": 1.5, "few": 2.0}},
                 conv_auto.case_key(c3_bf16): {"fwd_bwd_s": {"cols": 1.0, "rows": 2.0}}})
  assert conv_auto.choose(c3) == "few"
  assert conv_auto.choose(c3_bf16) == "cols"
  _write(cache, {conv_auto.case_key(c3): {"fwd_bwd_s": {"im2col": 1.0, "few": 2.0}}})
  assert conv_auto.choose(c3) == "im2col"


def test_entries_of_another_device_are_not_used(cache):
  key = conv_auto.case_key(_case(padding="SAME"))
  assert key.startswith("dev=cpu:")
  other = key.replace(f"dev={conv_auto.device()}|", "dev=gpu:NVIDIA H100 80GB HBM3|")
  _write(cache, {other: {"fwd_bwd_s": {"lax": 2.0, "fft": 1.0}}})
  assert conv_auto.choose(_case(padding="SAME")) == "fenced"  # the heuristic, not the GPU's
  _write(cache, {other: {"fwd_bwd_s": {"lax": 2.0, "fft": 1.0}},
                 key: {"fwd_bwd_s": {"lax": 2.0, "shift": 1.0}}})
  assert conv_auto.choose(_case(padding="SAME")) == "shift"


def test_entries_of_other_compiler_options_are_not_used(cache):
  """Times made under XLA compiler options pick the impl only where a jit is traced with the
  same options (``compiled_with``), and the defaults' times only under the defaults."""
  opts = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}
  plain = conv_auto.case_key(_case(padding="SAME"))
  with conv_auto.compiled_with(opts):
    tagged = conv_auto.case_key(_case(padding="SAME"))
  assert tagged != plain and tagged.startswith(f"dev={conv_auto.device()}+xla=")
  _write(cache, {plain: {"fwd_bwd_s": {"lax": 2.0, "shift": 1.0}},
                 tagged: {"fwd_bwd_s": {"lax": 2.0, "fft": 1.0}}})
  assert conv_auto.choose(_case(padding="SAME")) == "shift"
  with conv_auto.compiled_with(opts):
    assert conv_auto.choose(_case(padding="SAME")) == "fft"
    assert "fft" in _jaxpr_text()
  with conv_auto.compiled_with({}):  # no options: XLA's defaults
    assert conv_auto.choose(_case(padding="SAME")) == "shift"
  _write(cache, {tagged: {"fwd_bwd_s": {"lax": 2.0, "fft": 1.0}}})
  assert conv_auto.choose(_case(padding="SAME")) == "fenced"  # the heuristic


def test_heuristic_keeps_lax_off_the_cpu(cache, monkeypatch):
  depthwise = _case((2, 12, 12, 4), (3, 3, 1, 4), groups=4)
  assert conv_auto.choose(depthwise) == "depthwise"  # the CPU's choice for groups == C_in
  assert conv_auto.choose(_case()) == "fenced"
  _write(cache, {conv_auto.case_key(_case()): {"fwd_bwd_s": {"lax": 1.0, "fft": 2.0}}})
  assert conv_auto.choose(_case()) == "fenced"  # a cached lax is run behind the fence
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert conv_auto.choose(depthwise) == "lax"
  assert conv_auto.choose(_case()) == "lax"  # the cached lax as it is
  _write(cache, {})
  assert conv_auto.choose(_case()) == "lax"


def test_merge_cache_keeps_other_entries(cache):
  conv_auto.merge_cache({"a": {"fwd_bwd_s": {"lax": 1.0}}})
  conv_auto.merge_cache({"b": {"fwd_bwd_s": {"fft": 1.0}}})
  assert set(conv_auto.load_cache()) == {"a", "b"}


@pytest.mark.parametrize("cached", [None, "fft", "shift"])
@pytest.mark.parametrize("x_shape,w_shape,kw", [
    (X, W, dict(padding="SAME")),
    ((2, 9, 3), (5, 3, 4), dict(stride=2, padding=1, dilation=2)),
    ((2, 6, 6, 4), (3, 3, 2, 4), dict(groups=2, padding="SAME")),
    ((2, 7, 7, 4), (1, 1, 4, 8), dict(stride=2)),
])
def test_equals_lax(cache, cached, x_shape, w_shape, kw):
  if cached:
    _write(cache, {conv_auto.case_key(_case(x_shape, w_shape, **kw)):
                   {"fwd_bwd_s": {cached: 0.1, "lax": 1.0}}})
  rng = np.random.default_rng(0)
  x = rng.standard_normal(x_shape, np.float32)
  w = rng.standard_normal(w_shape, np.float32)
  pads = ([(kw["padding"],) * 2] * (len(x_shape) - 2) if isinstance(kw.get("padding"), int)
          else kw.get("padding", "VALID"))
  ref = lambda x, w: lax.conv_general_dilated(  # noqa: E731
      x, w, (kw.get("stride", 1),) * (x.ndim - 2), pads,
      rhs_dilation=(kw.get("dilation", 1),) * (x.ndim - 2),
      dimension_numbers=("NWC", "WIO", "NWC") if x.ndim == 3 else ("NHWC", "HWIO", "NHWC"),
      feature_group_count=kw.get("groups", 1))
  auto = jax.jit(lambda x, w: ops.conv(x, w, impl="auto", **kw))
  np.testing.assert_allclose(auto(x, w), ref(x, w), rtol=1e-4, atol=1e-4)
  g_auto = jax.grad(lambda x, w: jnp.sum(jnp.sin(auto(x, w))), (0, 1))(x, w)
  g_ref = jax.grad(lambda x, w: jnp.sum(jnp.sin(ref(x, w))), (0, 1))(x, w)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), g_auto, g_ref)


def test_strided_1x1_trains_without_a_conv(cache):
  """A ResNet's downsampling shortcut (1x1, stride 2): on the CPU its fwd+bwd compiles to a
  strided slice and dots, where ``lax``'s weight gradient is a 16x16-window conv."""
  x, w = jnp.zeros((4, 16, 16, 8)), jnp.zeros((1, 1, 8, 16))
  loss = lambda impl: lambda x, w: jnp.sum(ops.conv(x, w, stride=2, impl=impl) ** 2)  # noqa: E731
  hlo = lambda impl: jax.jit(jax.grad(loss(impl), (0, 1))).lower(x, w).compile().as_text()  # noqa: E731
  assert "convolution(" in hlo("lax")
  assert "convolution(" not in hlo("auto")


@pytest.mark.parametrize("version", [1, 99])
def test_bad_cache_version_raises(cache, version):
  cache.write_text(json.dumps({"version": version, "entries": {}}))
  with pytest.raises(ValueError, match=f"version {version}, expected 2 .*delete it"):
    conv_auto.load_cache()
