"""Shift-invariance experiment: the shift against numpy, the metrics against brute-force loops,
max-pooling's invariance within its window on a constructed map, and smoke runs."""

import functools
import json

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cnnlab import models, ops, train
from cnnlab.experiments import shift_invariance as si
from cnnlab.train.errors import ConfigError
from conftest import REPO, load_config_module, needs_mnist8k


def _numpy_shift(x, dy, dx, fill):
  """Content moved on a zero-padded canvas with np.roll, then cropped back (nothing wraps)."""
  p = max(abs(dy), abs(dx), 1)
  b, h, w, c = x.shape
  canvas = np.full((b, h + 2 * p, w + 2 * p, c), fill, x.dtype)
  canvas[:, p:p + h, p:p + w] = x
  return np.roll(canvas, (dy, dx), axis=(1, 2))[:, p:p + h, p:p + w]


@pytest.mark.parametrize("jit", [False, True])
@settings(max_examples=20, deadline=None)
@given(dy=st.integers(-4, 4), dx=st.integers(-4, 4), fill=st.sampled_from([0.0, -0.42]))
def test_shift_matches_numpy_roll_on_padded_canvas(jit, dy, dx, fill):
  x = np.random.default_rng((dy + 4) * 9 + dx + 4).standard_normal((2, 7, 9, 2)).astype(np.float32)
  fn = functools.partial(si.shift_images, dy=dy, dx=dx, fill=fill)
  ours = (jax.jit(fn) if jit else fn)(x)
  np.testing.assert_array_equal(np.asarray(ours), _numpy_shift(x, dy, dx, fill))


def _brute_aligned(f0, f1, ty, tx):
  """Loop over pixels: f0[i, j] is compared with f1[i + ty, j + tx] where both exist."""
  b, h, w, _ = f0.shape
  num, den = np.zeros(b), np.zeros(b)
  for i in range(h):
    for j in range(w):
      if 0 <= i + ty < h and 0 <= j + tx < w:
        num += np.sum((f1[:, i + ty, j + tx] - f0[:, i, j]) ** 2, -1)
        den += np.sum(f0[:, i, j] ** 2, -1)
  return np.sqrt(num / den)


@pytest.mark.parametrize("dy,dx,jump", [(0, 2, 1), (3, 0, 1), (-2, 1, 1), (4, 0, 2), (0, 4, 4),
                                        (2, -4, 2)])
def test_metrics_match_brute_force(dy, dx, jump):
  rng = np.random.default_rng(0)
  f0, f1 = rng.standard_normal((2, 3, 6, 7, 4))
  expected = _brute_aligned(f0, f1, dy // jump, dx // jump)
  np.testing.assert_allclose(si.aligned_change(f0, f1, dy, dx, jump), expected, rtol=1e-12)
  raw = np.sqrt(((f1 - f0) ** 2).sum((1, 2, 3)) / (f0 ** 2).sum((1, 2, 3)))
  np.testing.assert_allclose(si.relative_change(f0, f1), raw, rtol=1e-12)


def test_aligned_change_undefined_where_stride_does_not_divide():
  f = np.ones((2, 4, 4, 1))
  assert np.isnan(si.aligned_change(f, f, 1, 0, 2)).all()
  assert np.isnan(si.aligned_change(f, f, 0, 6, 4)).all()


def test_max_pool_is_invariant_within_its_window():
  """Isolated peaks at even coordinates (window corners): a shift by 0/1 pixel keeps each in its
  2x2 window, so the max-pooled map is unchanged, while plain stride-2 subsampling loses them;
  a shift by 2 moves the pooled map by exactly one cell (equivariance)."""
  x = np.zeros((1, 12, 12, 1), np.float32)
  x[0, 2::4, 2::4, 0] = np.arange(1, 10).reshape(3, 3)
  pooled = np.asarray(ops.max_pool(x, 2))
  for dy, dx in ((0, 1), (1, 0), (1, 1)):
    xs = si.shift_images(x, dy, dx)
    np.testing.assert_array_equal(np.asarray(ops.max_pool(xs, 2)), pooled)
    assert si.relative_change(pooled, ops.max_pool(xs, 2))[0] == 0
    assert si.relative_change(x[:, ::2, ::2], np.asarray(xs)[:, ::2, ::2])[0] > 0.5
  moved = np.asarray(ops.max_pool(si.shift_images(x, 2, 2), 2))
  assert si.relative_change(pooled, moved)[0] > 0.5
  assert si.aligned_change(pooled, moved, 2, 2, 2)[0] == 0


def test_single_conv_stage_is_equivariant_on_an_untrained_model():
  """Closed form: one zero-padded stride-1 conv (+ReLU) commutes with a shift when the digit has
  an empty margin, so the aligned change of stage1 of the unpooled model is 0 (to rounding);
  shift 0 changes nothing; and the metric tree has the documented keys."""
  model = models.create("small_cnn", width=4, norm="none", downsample="none")
  x = np.zeros((5, 16, 16, 1), np.float32)
  x[:, 5:11, 5:11] = np.random.default_rng(1).standard_normal((5, 6, 6, 1))
  variables = model.init(jax.random.key(0), x)
  r = si.analyse(model, variables, x, np.arange(5) % 10, max_shift=2, batch_size=3)
  assert r["jumps"] == {"stage1": 1, "stage2": 1, "stage3": 1}
  for d in si.DIRECTIONS:
    np.testing.assert_allclose(r[d]["aligned/stage1"], 0, atol=1e-6)
    assert r[d]["raw/stage1"][0] == 0 and r[d]["raw/stage1"][2] > 0.1
    assert r[d]["unchanged"][0] == 1 and r[d]["pre_logits_cos"][0] == pytest.approx(1)


def test_pooled_model_jumps_and_nan_where_undefined():
  model = models.create("small_cnn", width=4, downsample="maxpool")
  x = np.random.default_rng(2).standard_normal((3, 8, 8, 1)).astype(np.float32)
  r = si.analyse(model, model.init(jax.random.key(0), x), x, np.zeros(3), max_shift=2)
  assert r["jumps"] == {"stage1": 2, "stage2": 4, "stage3": 4}
  assert np.isnan(r["right"]["aligned/stage1"][1]) and not np.isnan(r["right"]["aligned/stage1"][2])


def _analysis(sweep_workdir, **fields):
  config = load_config_module(REPO / "configs/experiments/shift_invariance.py").get_config(
      "analysis")
  config.update(sweep_workdir=str(sweep_workdir), **fields)
  return config


def test_missing_sweep_says_how_to_train(tmp_path):
  with pytest.raises(FileNotFoundError, match="scripts/sweep.py"):
    si.run(_analysis(tmp_path), str(tmp_path / "out"))


def test_end_to_end_on_a_two_step_run(tmp_path):
  needs_mnist8k()
  config = load_config_module(REPO / "configs/experiments/shift_invariance.py").get_config("smoke")
  point = tmp_path / "sweep" / "000_downsample=maxpool"
  train.train_and_evaluate(config, str(point))
  (point / "point.json").write_text(json.dumps({"overrides": {"model.downsample": "maxpool"}}))
  (point / "result.json").write_text("{}")
  rows = si.run(_analysis(tmp_path / "sweep", max_shift=1, limit=16), str(tmp_path / "out"))["rows"]
  assert {r["model"] for r in rows} == {"maxpool"}
  assert next(r for r in rows if r["direction"] == "down" and r["shift"] == 0)["unchanged"] == 1
  for ext in ("json", "md", "png"):
    assert (tmp_path / "out" / f"shift_invariance.{ext}").stat().st_size > 0


@pytest.mark.parametrize("field, value, message", [
    ("max_shift", -1, r"config.max_shift=-1 is invalid: must be >= 0"),
    ("limit", -3, r"config.limit=-3 is invalid: must be >= 0"),
])
def test_bad_analysis_field_is_one_config_error_first(field, value, message, tmp_path):
  config = REPO / "configs" / "experiments" / "shift_invariance.py"
  cfg = load_config_module(config).get_config("analysis")
  cfg[field] = value
  with pytest.raises(ConfigError, match=message):
    si.run(cfg, str(tmp_path))
  assert not list(tmp_path.iterdir())
