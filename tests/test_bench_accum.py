"""scripts/bench_accum.py's measurements (cnnlab.bench.scale) on tiny settings: every impl's row
with its ratio to the large batch; remat shrinks the residuals the backward pass keeps (traced:
'full' keeps only block inputs, less than 'dots_saveable', less than none)."""

import jax
import jax.numpy as jnp
import pytest

from cnnlab import models
from cnnlab.bench import scale


@pytest.mark.slow  # compiles and times 3 train steps: ~20 s on 2 shared cores
def test_accum_rows_and_ratios():
  rows = scale.accum_throughput("lenet5", batch_size=8, k=2, steps=1, repeats=1,
                                input_shape=(32, 32, 1))
  assert [(r["impl"], r["k"], r["micro_batch"]) for r in rows] == [
      ("large batch", 1, 8), ("scan", 2, 4), ("multisteps", 2, 4)]
  for r in rows:
    assert r["img_per_s"] > 0
    assert r["ratio_to_large_batch"] == pytest.approx(r["img_per_s"] / rows[0]["img_per_s"])


def test_remat_shrinks_the_saved_residuals():
  x = jnp.zeros((4, 16, 16, 3))
  batch = {"inputs": x, "label": jnp.zeros(4, jnp.int32)}
  sizes = {}
  for policy in ("", "dots_saveable", "full"):
    model = models.create("resnet20", depth=8, remat=policy)
    variables = jax.eval_shape(lambda model=model: model.init(jax.random.key(0), x[:1]))
    sizes[policy] = scale._residual_bytes(model, variables, batch)
  assert sizes["full"] < sizes["dots_saveable"] < sizes[""]
