"""Benchmarks of the training loop's scale options, each against its reference in the same run.

- :func:`accum_throughput`: images/s of one optimizer step on a batch of B as one large batch
  (the reference), as k scanned micro-batches of B/k (``grad_accum_impl='scan'``) and as k calls
  of the micro-batch step under ``optax.MultiSteps`` (``'multisteps'``, as the loop makes them);
  the library's ``train_step`` with Adam, batches already on the device, ``repeats`` paired
  rounds of one window of ``steps`` optimizer steps each (``train_throughput.paired_windows``;
  ``ratio_to_large_batch``: the median per-round ratio).
- :func:`remat_cost`: for each policy of ``blocks.REMAT_POLICIES``, the residuals the backward
  pass keeps (the arrays of ``jax.vjp``'s backward function, traced abstractly: what remat
  saves, before XLA schedules anything), the compiled train step's temporary memory
  (``compiled.memory_analysis()``: what XLA's buffer assignment makes of it) and FLOPs
  (``compiled.cost_analysis()``: recomputation shows as extra FLOPs) and, if ``time_steps`` > 0,
  its measured time; the reference is no remat (policy '').
"""

from __future__ import annotations

import functools
import time

import jax
import ml_collections
import numpy as np
import optax

from cnnlab import models
from cnnlab.bench import report
from cnnlab.bench.train_throughput import compiled_steps, paired_windows, random_batches
from cnnlab.models import blocks
from cnnlab.train import accum, state as state_lib, steps as steps_lib


def _step(accum_steps=1):
  return jax.jit(functools.partial(steps_lib.train_step, image_size=0, label_smoothing=0.0,
                                   accum_steps=accum_steps), donate_argnums=(0, 1))


def accum_throughput(model_name, *, batch_size, k, steps, repeats=3, num_classes=10,
                     input_shape=None, **model_kw) -> list[dict]:
  """Rows ``{impl, micro_batch, img_per_s, compile_s, ratio_to_large_batch}`` (module doc)."""
  model = models.create(model_name, num_classes=num_classes, **model_kw)
  input_shape = tuple(input_shape or models.get_spec(model_name).input_shape)
  batches = [{"inputs": x, "label": y}
             for x, y in random_batches(batch_size, input_shape, num_classes)]
  rows, runs = [], {}
  for impl, k_impl in (("large batch", 1), ("scan", k), ("multisteps", k)):
    config = ml_collections.ConfigDict({"grad_accum_steps": k_impl, "grad_accum_impl": impl})
    tx = accum.wrap_optimizer(config, optax.adam(1e-3))
    state = jax.jit(lambda tx=tx: state_lib.create(model, tx, input_shape, 0))()
    micro = [[jax.device_put(b) for b in accum.host_micro_batches(config, batch)]
             for batch in batches]  # one, or k micro-batches per optimizer step
    run, compile_s, _ = compiled_steps(_step(accum.scan_steps(config)), state, micro, warmup=2)
    runs[impl] = run
    rows.append({"model": model_name, "batch": batch_size, "k": k_impl, "impl": impl,
                 "micro_batch": batch_size // k_impl, "compile_s": compile_s})
  timed = paired_windows(runs, steps=steps, repeats=repeats, batch_size=batch_size)
  for r in rows:
    t = timed[r["impl"]]
    ratio, _ = report.ratio_per_round(t["rates"], timed["large batch"]["rates"])
    r.update(img_per_s=t["img_per_s"], spread=t["spread"], ratio_to_large_batch=ratio)
  return rows


def _residual_bytes(model, variables, batch) -> int:
  """Bytes of the residuals ``jax.vjp`` keeps for the backward pass of the training loss."""
  def vjp_fn(variables):
    def loss(params):
      logits, _ = model.apply({**variables, "params": params}, batch["inputs"], train=True,
                              mutable=["batch_stats"])
      return optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
    return jax.vjp(loss, variables["params"])[1]
  return sum(s.size * s.dtype.itemsize for s in jax.tree.leaves(jax.eval_shape(vjp_fn,
                                                                               variables)))


def remat_cost(model_name, *, batch_size, image_size, time_steps=0, num_classes=1000,
               policies=tuple(blocks.REMAT_POLICIES)) -> list[dict]:
  """Rows ``{policy, residual_mib, temp_mib, gflops, step_s, *_ratio}`` of the
  SGD train step at ``(batch_size, image_size, image_size, 3)`` (module doc)."""
  shape = (image_size, image_size, 3)
  x, y = random_batches(batch_size, shape, num_classes, n=1)[0]
  batch = jax.device_put({"inputs": x, "label": y})
  rows = []
  for policy in policies:
    model = models.create(model_name, num_classes=num_classes, remat=policy)
    state = jax.jit(lambda model=model: state_lib.create(model, optax.sgd(0.1), shape, 0))()
    m, key = steps_lib.zero_train_metrics(), jax.random.key(0)
    t = time.perf_counter()
    compiled = _step().lower(state, m, batch, key).compile()
    compile_s = time.perf_counter() - t
    mem = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    residual = _residual_bytes(model, {"params": state.params, "batch_stats": state.batch_stats},
                               batch)
    row = {"model": model_name, "batch": batch_size, "image_size": image_size,
           "policy": policy or "none", "residual_mib": residual / 2 ** 20,
           "temp_mib": mem.temp_size_in_bytes / 2 ** 20,
           "gflops": cost.get("flops", float("nan")) / 1e9, "compile_s": compile_s,
           "step_s": float("nan")}
    if time_steps:
      state, m = compiled(state, m, batch, key)  # warm-up
      jax.block_until_ready(m)
      times = []
      for _ in range(time_steps):
        t = time.perf_counter()
        state, m = compiled(state, m, batch, key)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t)
      row["step_s"] = float(np.median(times))
    rows.append(row)
  for r in rows:
    r["residual_ratio"] = r["residual_mib"] / rows[0]["residual_mib"]
    r["memory_ratio"] = r["temp_mib"] / rows[0]["temp_mib"]
    r["flops_ratio"] = r["gflops"] / rows[0]["gflops"]
    r["time_ratio"] = r["step_s"] / rows[0]["step_s"]
  return rows
