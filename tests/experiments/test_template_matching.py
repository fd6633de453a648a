"""Template matching by NCC: every conv impl that serves one channel against a float64 numpy double loop on a tiny image,
brute-force NCC at a few positions of the real photo, and a smoke run that finds the patch."""

import jax
import numpy as np
import pytest
from scipy import signal

from cnnlab import ops
from cnnlab.experiments import template_matching as tm
from cnnlab.ops.conv_registry import supports
from cnnlab.train.errors import ConfigError
from conftest import REPO, load_config_module

SMOKE = REPO / "configs" / "analysis" / "template_matching.py"


def ncc_loop(image, template, min_std=1e-3):
  """Zero-normalised cross-correlation by a direct loop over positions (float64)."""
  h, w = template.shape
  t0 = template - template.mean()
  out = np.zeros((image.shape[0] - h + 1, image.shape[1] - w + 1))
  for r in range(out.shape[0]):
    for c in range(out.shape[1]):
      p = image[r:r + h, c:c + w] - image[r:r + h, c:c + w].mean()
      out[r, c] = (p * t0).sum() / (np.linalg.norm(t0) * max(np.linalg.norm(p),
                                                              np.sqrt(p.size) * min_std))
  return out


@pytest.mark.parametrize("impl", ops.list_impls())
def test_ncc_matches_numpy_loop_for_every_impl(impl):
  rng = np.random.default_rng(0)
  image = rng.random((9, 11)).astype(np.float32)
  template = rng.random((3, 3)).astype(np.float32)  # 3x3: winograd can serve it too
  if not supports(impl, (1, 9, 11, 1), (3, 3, 1, 1)):
    pytest.skip(f"{impl} cannot serve one channel (direct: channel counts multiples of 8)")
  got = jax.jit(lambda a, b: tm.ncc(a, b, impl=impl))(image, template)
  np.testing.assert_allclose(got, ncc_loop(image.astype(np.float64), template), atol=2e-5)


def test_ncc_equals_scipy_correlate2d_formula_eager_and_jit():
  rng = np.random.default_rng(1)
  image = rng.random((8, 10))
  template = rng.random((4, 3))  # non-square
  t0 = template - template.mean()
  ones = np.ones_like(template)
  num = signal.correlate2d(image, t0, mode="valid")
  ssd = (signal.correlate2d(image**2, ones, mode="valid")
         - signal.correlate2d(image, ones, mode="valid") ** 2 / ones.size)
  ref = num / (np.linalg.norm(t0) * np.sqrt(ssd))
  x, t = image.astype(np.float32), template.astype(np.float32)
  eager = np.asarray(tm.ncc(x, t))
  np.testing.assert_allclose(eager, ref, atol=2e-5)
  np.testing.assert_allclose(jax.jit(tm.ncc)(x, t), eager, atol=1e-6)


def test_smoke_run_finds_the_patch_and_impls_agree(tmp_path):
  cfg = load_config_module(SMOKE).get_config("smoke")
  cfg.impls = ("lax", "fft", "matmul", "winograd")  # a refusal and the dense matrix; fast
  result = tm.run(cfg, str(tmp_path))
  image, template, true = tm.make_problem(cfg)
  assert result["exact"] and tuple(result["found"]) == true
  rows = {r["impl"]: r for r in result["rows"]}
  for impl, r in rows.items():
    if r["status"].startswith("ran"):
      assert tuple(r["found"]) == true and r["max_abs_diff_vs_lax"] < 1e-3, r
    else:  # a refusal is exactly the ValueError conv raises
      with pytest.raises(ValueError, match="cannot serve"):
        ops.conv(image[None, :, :, None], template[:, :, None, None], impl=impl)
  assert rows["winograd"]["status"].startswith("refused: window")
  assert rows["matmul"]["status"] == "ran"
  # brute force at a few positions of the real photo, float64
  h = cfg.size
  t0 = template.astype(np.float64) - template.mean()
  score = np.asarray(tm.ncc(image, template))
  for r, c in [true, (0, 0), (3, 17), (image.shape[0] - h, image.shape[1] - h)]:
    p = image[r:r + h, c:c + h].astype(np.float64)
    p = p - p.mean()
    want = (p * t0).sum() / (np.linalg.norm(t0) * np.linalg.norm(p))
    assert abs(score[r, c] - want) < 1e-4
  for name in ("template_matching.md", "template_matching.json", "template_matching.png"):
    assert (tmp_path / name).stat().st_size > 0


def test_bad_input_raises_value_error():
  cfg = load_config_module(SMOKE).get_config("smoke")
  with pytest.raises(ValueError, match="image="):
    tm.load_gray("lena.png", 24)
  cfg.top = 100
  with pytest.raises(ValueError, match="do not fit"):
    tm.make_problem(cfg)
  with pytest.raises(ValueError, match="no larger"):
    tm.ncc(np.zeros((4, 4)), np.zeros((5, 5)))
  with pytest.raises(ValueError, match="config arg"):
    load_config_module(SMOKE).get_config("big")


@pytest.mark.parametrize("field, value, message", [
    ("image", "lena.png", r"config.image='lena.png' is invalid \(allowed: \('china.jpg', "),
    ("height", 7, r"config.height=7 is invalid: must be in \[8, 427\]"),
    ("size", 0, r"config.size=0 is invalid: must be >= 1"),
    ("left", 31, r"config.left=31, config.size=6 are invalid: the patch must fit the \(24, 36\)"),
    ("min_std", 0.0, r"config.min_std=0.0 is invalid: must be > 0"),
    ("impls", ("fft",), r"config.impls=\('fft',\) is invalid: must include 'lax', the reference"),
    ("impls", ("lax", "fastest"),
     r"config.impls=\('lax', 'fastest'\) is invalid: \['fastest'\] are not conv impls"),
])
def test_bad_config_is_one_config_error_before_anything_runs(field, value, message, tmp_path):
  """The runner prints a ConfigError as one line (exit 2); nothing is computed or written."""
  cfg = load_config_module(SMOKE).get_config("smoke")
  cfg[field] = value
  with pytest.raises(ConfigError, match=message) as e:
    tm.run(cfg, str(tmp_path))
  assert "\n" not in str(e.value) and not list(tmp_path.iterdir())
