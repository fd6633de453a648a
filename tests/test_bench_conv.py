"""Smoke run of ``scripts/bench_conv.py`` (two tiny shapes): JSON, table, summary, PNG, cache."""

import json
import subprocess
import sys
import warnings

import jax.numpy as jnp
import matplotlib.image
import ml_collections
import pytest

from cnnlab.bench import conv, report
from cnnlab.ops import conv_auto, conv_registry
from cnnlab.ops.conv_case import make_case
from cnnlab.train import backend
from cnnlab.train.errors import ConfigError
from conftest import REPO, load_config_module


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  out = tmp_path_factory.mktemp("bench_conv")
  cmd = [sys.executable, str(REPO / "scripts" / "bench_conv.py"),
         f"--config={REPO / 'configs' / 'bench' / 'conv.py'}:smoke", f"--workdir={out}",
         f"--cache={out / 'cache.json'}", f"--doc={out / 'doc.md'}"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return out


def test_json_has_every_shape_impl_and_torch(smoke_run):
  config = load_config_module(REPO / "configs" / "bench" / "conv.py").get_config("smoke")
  data = json.loads((smoke_run / "conv_bench.json").read_text())
  rows = data["rows"]
  assert data["matmul_peak_gflops"] > 0
  assert data["compiler_options"] == backend.NO_YNN_CONV  # the default: no --xla_cpu_options
  for s in config.shapes:
    impls = {r["impl"] for r in rows if r["shape"] == s["name"]}
    assert {"torch", "lax"} <= impls <= {"torch", *config.impls}
  for r in rows:
    assert r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > 0
    if r["impl"] != "torch":  # same data as torch: the outputs agree
      assert r["max_abs_diff_vs_torch"] < 1e-3, r


def test_fwd_bwd_runs_all_three_convs():
  """The timed fwd+bwd returns the forward output, so XLA keeps the forward conv: 3 convs in
  the compiled HLO (torch's autograd runs 3; a bare vjp compiles to 2)."""
  s = {"stride": 1, "padding": 1, "dilation": 1, "groups": 1}
  x, w = jnp.ones((2, 8, 8, 4)), jnp.ones((3, 3, 4, 4))
  _, fwd_bwd = conv.jitted(s, "lax", ml_collections.ConfigDict())
  assert fwd_bwd.lower(x, w, x).compile().as_text().count("convolution(") == 3
  y, dx, dw = fwd_bwd(x, w, x)
  assert y.shape == dx.shape == x.shape and dw.shape == w.shape


def test_rounds_rotate_the_order_and_speeds_are_per_round_ratios(smoke_run):
  order = []
  calls = {n: ((lambda n=n: order.append(n)), (lambda: None)) for n in ("torch", "a", "b")}
  times = conv.paired_rounds(calls, ml_collections.ConfigDict(dict(rounds=3, warmup=0, iters=1,
                                                                     warmup_s=0.0)))
  assert order == ["torch", "a", "b", "a", "b", "torch", "b", "torch", "a"]
  assert all(len(fwd) == len(fwd_bwd) == 3 for fwd, fwd_bwd in times.values())
  # torch / impl per round: 0.5, 0.5, 1.0 -> median 0.5, spread (1.0 - 0.5) / 0.5
  assert report.ratio_per_round([1.0, 4.0, 2.0], [2.0, 8.0, 2.0]) == (0.5, 1.0)
  rows = json.loads((smoke_run / "conv_bench.json").read_text())["rows"]
  assert all(r["spread"] >= 0 for r in rows) and "| spread |" in (smoke_run / "conv_bench.md"
                                                                    ).read_text()


def test_every_entry_runs_after_a_settling_sleep(monkeypatch):
  """Each timed entry starts only after ``report.SETTLE_S`` of sleep (torch's workers spin for
  milliseconds after a call), the sleep outside the entry's own timing."""
  events = []
  monkeypatch.setattr(report.time, "sleep", lambda s: events.append(("sleep", s)))
  fns = {n: (lambda n=n: events.append(n)) for n in ("torch", "a")}
  report.paired_rounds(fns, 2)
  assert report.SETTLE_S >= 0.02
  assert events == [("sleep", report.SETTLE_S), "torch", ("sleep", report.SETTLE_S), "a",
                    ("sleep", report.SETTLE_S), "a", ("sleep", report.SETTLE_S), "torch"]


def test_warm_up_lasts_its_calls_and_its_seconds(monkeypatch):
  """A fake clock where each call takes 0.01 s: ``warmup_s=0.035`` warms up with 4 calls (the
  first 3 leave the clock short of it), ``warmup=5`` with 5; then ``iters`` calls are timed."""
  clock, calls = [0.0], []
  monkeypatch.setattr(report.time, "perf_counter", lambda: clock[0])

  def fn():
    calls.append(clock[0])
    clock[0] += 0.01
  for warmup, warmup_s, warm_calls in ((1, 0.035, 4), (5, 0.035, 5), (0, 0.0, 0)):
    calls.clear()
    assert report.median_seconds(fn, warmup=warmup, iters=3, warmup_s=warmup_s) == pytest.approx(0.01)
    assert len(calls) == warm_calls + 3


def test_markdown_and_png_written(smoke_run):
  table = (smoke_run / "conv_bench.md").read_text()
  assert table.startswith("| shape | cls | impl |") and "tiny_1d_k11" in table
  doc = (smoke_run / "doc.md").read_text()
  assert doc == (smoke_run / "conv_benchmark.md").read_text()
  assert "# Which conv is fastest" in doc and "| conv1d_large_k |" in doc
  assert matplotlib.image.imread(smoke_run / "conv_bench.png").ndim == 3


def test_png_without_1d_shapes_shows_speed_per_shape(smoke_run, tmp_path):
  """The ``:depthwise`` run has no 1D shapes: its figure plots speed vs torch, not empty axes."""
  rows = [r for r in json.loads((smoke_run / "conv_bench.json").read_text())["rows"]
          if len(r["window"]) == 2]
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # matplotlib warns of an empty legend
    path = conv.plot(rows, str(tmp_path / "speed.png"))
  assert matplotlib.image.imread(path).ndim == 3


def test_cache_feeds_auto(smoke_run):
  """``impl='auto'`` traced with the run's compiler options picks, per shape, the impl with the
  smallest fwd+bwd time in the rows."""
  config = load_config_module(REPO / "configs" / "bench" / "conv.py").get_config("smoke")
  rows = json.loads((smoke_run / "conv_bench.json").read_text())["rows"]
  entries = conv_auto.load_cache(smoke_run / "cache.json")
  for s in config.shapes:
    times = {r["impl"]: r["fwd_bwd_ms"] for r in rows if r["shape"] == s["name"]}
    del times["torch"]
    w_shape = (*s["window"], s["x"][-1] // s["groups"], s["c_out"])
    case = make_case(s["x"], w_shape, "float32", "float32", stride=s["stride"],
                     padding=s["padding"], dilation=s["dilation"], groups=s["groups"])
    with conv_auto.compiled_with(backend.NO_YNN_CONV):
      assert conv_auto.choose(case, entries) == min(times, key=times.get)


def test_sequence_shapes_match_torch_and_each_impl_serves_them():
  """Each 1D shape of ``:sequence`` has torch's output length, and every impl it times takes it."""
  torch = pytest.importorskip("torch")
  cfg = load_config_module(REPO / "configs" / "bench" / "conv.py").get_config("sequence")
  assert len(cfg.shapes) == 9 and set(cfg.impls) == {"lax", "fft", "im2col", "shift"}
  for s in cfg.shapes:
    n, length, c_in = s["x"]
    (k,) = s["window"]
    case = make_case((n, length, c_in), (k, c_in, s["c_out"]), jnp.float32, jnp.float32,
                     stride=s["stride"], padding=[(s["padding"], s["padding"])],
                     dilation=s["dilation"])
    ref = torch.nn.functional.conv1d(torch.zeros(1, c_in, length), torch.zeros(s["c_out"], c_in, k),
                                     stride=s["stride"], padding=s["padding"],
                                     dilation=s["dilation"])
    assert case.out_spatial == tuple(ref.shape[2:]), s["name"]
    for impl in cfg.impls:
      assert conv_registry.unsupported_reason(impl, case) is None, (s["name"], impl)


def test_depthwise_arg_keeps_the_depthwise_shapes_for_the_depthwise_impl():
  """``:depthwise``: the five ``groups == C_in`` shapes of the full list, ``depthwise`` impl."""
  module = load_config_module(REPO / "configs" / "bench" / "conv.py")
  cfg = module.get_config("depthwise")
  every = module.get_config().shapes
  assert [s["name"] for s in cfg.shapes] == [s["name"] for s in every
                                             if s["groups"] == s["x"][-1] > 1]
  assert len(cfg.shapes) == 5 and tuple(cfg.impls) == ("depthwise",)
  for s in cfg.shapes:
    case = make_case(s["x"], (*s["window"], 1, s["c_out"]), jnp.float32, jnp.float32,
                     stride=s["stride"], padding=[(s["padding"],) * 2] * len(s["window"]),
                     dilation=s["dilation"], groups=s["groups"])
    assert conv_registry.unsupported_reason("depthwise", case) is None, s["name"]


@pytest.mark.parametrize("field, value, line", [
    ("impls", ("lax", "bogus"),
     "config.impls=('lax', 'bogus') is invalid: ['bogus'] are not conv impls (allowed: any of"),
    ("impls", ("auto",), "is invalid: ['auto'] are not conv impls"),
    ("iters", 0, "config.iters=0 is invalid: must be >= 1"),
    ("warmup", -1, "config.warmup=-1 is invalid: must be >= 0"),
    ("matmul_size", 0, "config.matmul_size=0 is invalid: must be >= 1"),
    ("shapes", [], "config.shapes is empty"),
])
def test_bad_config_is_one_line_naming_the_field(field, value, line):
  cfg = load_config_module(REPO / "configs" / "bench" / "conv.py").get_config("smoke")
  cfg[field] = value
  with pytest.raises(ConfigError) as e:
    conv.check_config(cfg)
  assert line in str(e.value) and "\n" not in str(e.value)


def test_bad_shape_names_its_index():
  cfg = load_config_module(REPO / "configs" / "bench" / "conv.py").get_config("smoke")
  cfg.shapes[1] = {**cfg.shapes[1], "groups": 3}  # 4 input channels in 3 groups
  with pytest.raises(ConfigError, match=r"config\.shapes\[1\] \('tiny_1d_k11'\) is invalid"):
    conv.check_config(cfg)
  cfg.shapes[1] = {**cfg.shapes[1], "groups": 1, "skip": ("lax", "fastest")}
  with pytest.raises(ConfigError, match=r"skip names \['fastest'\]"):
    conv.check_config(cfg)
  conv.check_config(load_config_module(REPO / "configs" / "bench" / "conv.py").get_config())
