"""Training throughput of a cnnlab model vs the same network in PyTorch (eager or compiled).

cnnlab: the library's own jitted ``train_step`` (donated state, device-side metrics) with Adam;
torch: ``zero_grad / forward / cross_entropy / backward / step`` with ``torch.optim.Adam``, eager
or through ``torch.compile`` (default mode: Dynamo + Inductor, forward and backward). Both
read batches already in memory (4 rotating random batches), so only the step is timed. Each
``*_steps`` function compiles and warms a step up and returns it as :class:`Steps`;
:func:`paired_windows` times several of them in rotated rounds of one window each, so that their
ratios compare windows of the same round. Compile time (lower + compile) is reported apart.
``compiler_options``: XLA's, for cnnlab's step (``cnnlab.train.backend.compiler_options``; None =
XLA's defaults), under which ``impl='auto'`` also picks (``conv_auto.traced_with``). ``dtype``:
the compute dtype (cnnlab: the model's ``dtype``, parameters and Adam in float32; torch:
``torch.autocast``). :func:`train_flops_per_example` (the analytic MACs) turns img/s into model
FLOPs utilisation.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

from cnnlab import models
from cnnlab.bench import report, step_profile
from cnnlab.models import summary
from cnnlab.ops import conv_auto
from cnnlab.train import state as state_lib
from cnnlab.train import steps as steps_lib


def random_batches(batch_size, input_shape, num_classes, seed=0, n=4):
  """``n`` host batches ``(x, y)``: standard-normal float32 ``x`` ``(batch_size, *input_shape)``
  and int32 labels in ``[0, num_classes)``."""
  rng = np.random.default_rng(seed)
  return [(rng.standard_normal((batch_size, *input_shape), dtype=np.float32),
           rng.integers(0, num_classes, batch_size).astype(np.int32)) for _ in range(n)]


def _window(run_steps, steps, batch_size, warmup):
  """A callable timing one window of ``steps`` steps after ``warmup`` untimed ones: its
  images/s."""
  def timed():
    if warmup:
      run_steps(warmup)
    t = time.perf_counter()
    run_steps(steps)
    return steps * batch_size / (time.perf_counter() - t)
  return timed


def paired_windows(runs: dict, *, steps, repeats, batch_size, warmup=1) -> dict:
  """``{name: {img_per_s, spread, rates}}`` for ``runs`` ``{name: run(n)}`` (each runs n steps
  and waits for them): ``repeats`` rounds of one window of ``steps`` steps per entry, in an
  order rotated by one per round (``report.paired_rounds``); ``rates``: an entry's images/s per
  round (``report.ratio_per_round`` of two entries' rates: a speed ratio from windows of the
  same rounds), ``img_per_s`` and ``spread``: their median and spread. Each window starts after
  ``report.SETTLE_S`` of sleep (torch's workers spin for milliseconds after a call) and first runs
  ``warmup`` untimed steps: an entry's first step after another's window pays for the host
  memory the other left behind (cnnlab's ResNet-18 CIFAR step after torch's window: 1.6-1.7 s
  against 1.1, most of it the kernel compacting memory for huge pages; docs/performance.md,
  "Paired windows")."""
  rates = report.paired_rounds(
      {n: _window(run, steps, batch_size, warmup) for n, run in runs.items()}, repeats)
  return {n: dict(zip(("img_per_s", "spread"), report.median_and_spread(r)), rates=r)
          for n, r in rates.items()}


def train_flops_per_example(model_name, input_shape, num_classes=10, **model_kw) -> float:
  """FLOPs of one example's train step, ``3 x 2 x MACs`` of the forward pass: the backward pass
  costs about twice the forward (input and weight gradients). MACs: ``models.summary.summarize``
  (convs and dense layers, padding taps counted, as torchvision's GFLOPS column)."""
  model = models.create(model_name, num_classes=num_classes, **model_kw)
  return 6.0 * summary.summarize(model, tuple(input_shape)).total_macs


class Steps(NamedTuple):
  """A prepared train step: ``run(n)`` runs n steps and waits for them (None if it would not
  compile); ``compile_s`` (torch eager: 0); ``status``: 'compiled' or why not; ``profile(calls)``
  (cnnlab's only): trace that many steps and split their time (``cnnlab.bench.step_profile``)."""
  run: Callable[[int], None] | None
  compile_s: float | None
  status: str = "compiled"
  profile: Callable[[int], dict] | None = None


def compiled_steps(step, state, batches, *, warmup):
  """``step`` (a jitted ``steps.train_step``, state and metrics donated) compiled for ``state``
  and ``batches[0][0]``: ``(run, compile_s, compiled)``. ``batches``: per optimizer step, the
  device batches it takes (one, or its micro-batches, each one call); ``run(n)`` runs ``n``
  optimizer steps over them in turn, carrying state and metrics, and waits for them; it has run
  ``warmup`` steps before this returns."""
  key = jax.random.key(1)
  metrics = steps_lib.zero_train_metrics()
  t = time.perf_counter()
  compiled = step.lower(state, metrics, batches[0][0], key).compile()
  compile_s = time.perf_counter() - t
  box = [state, metrics]

  def run(n):
    s, m = box
    for i in range(n):
      for b in batches[i % len(batches)]:
        s, m = compiled(s, m, b, key)
    jax.block_until_ready(m)
    box[:] = [s, m]

  run(warmup)
  return run, compile_s, compiled


def cnnlab_steps(model_name, *, batch_size, lr=1e-3, num_classes=10, input_shape=None,
                 compiler_options=None, dtype="float32", **model_kw) -> Steps:
  """cnnlab's jitted train step of ``models.create(model_name, **model_kw)`` with Adam (state and
  metrics donated), compiled with ``compiler_options`` and warmed up with 3 steps."""
  model = models.create(model_name, num_classes=num_classes, dtype=jnp.dtype(dtype), **model_kw)
  input_shape = tuple(input_shape or models.get_spec(model_name).input_shape)
  tx = optax.adam(lr)
  state = jax.jit(lambda: state_lib.create(model, tx, input_shape, 0))()
  batches = [[jax.device_put({"inputs": x, "label": y})]
             for x, y in random_batches(batch_size, input_shape, num_classes)]
  step = jax.jit(conv_auto.traced_with(functools.partial(steps_lib.train_step, image_size=0,
                                                         label_smoothing=0.0), compiler_options),
                 donate_argnums=(0, 1), compiler_options=compiler_options)
  run, compile_s, compiled = compiled_steps(step, state, batches, warmup=3)
  return Steps(run, compile_s, profile=lambda calls: step_profile.profile(
      compiled.as_text(), run, calls=calls, model_scope=type(model).__name__))


def torch_steps(module: torch.nn.Module, input_shape_cfirst, *, batch_size, lr=1e-3,
                num_classes=10, channels_last=False, torch_compile=False,
                dtype="float32") -> Steps:
  """``input_shape_cfirst``: one example, ``(C, *spatial)`` (2D or 3D); ``channels_last``: NHWC /
  NDHWC memory format. ``torch_compile``: the step runs ``torch.compile(module)``; its
  ``compile_s`` is the first step's time (Dynamo + Inductor, forward and backward, plus that
  one step). Raises what ``torch.compile`` raises on a failed compile."""
  opt = torch.optim.Adam(module.parameters(), lr=lr)
  nd = len(input_shape_cfirst) - 1
  fmt = ({2: torch.channels_last, 3: torch.channels_last_3d}[nd] if channels_last
         else torch.contiguous_format)
  module = module.to(memory_format=fmt)
  batches = [(torch.from_numpy(x).to(memory_format=fmt), torch.from_numpy(y).long())
             for x, y in random_batches(batch_size, input_shape_cfirst, num_classes)]
  net = torch.compile(module) if torch_compile else module

  autocast = dtype != "float32"

  def run(n):
    for i in range(n):
      x, y = batches[i % len(batches)]
      opt.zero_grad(set_to_none=True)
      with torch.autocast("cpu", dtype=getattr(torch, dtype), enabled=autocast):
        loss = torch.nn.functional.cross_entropy(net(x), y)
      loss.backward()
      opt.step()

  t = time.perf_counter()
  run(1)
  compile_s = time.perf_counter() - t if torch_compile else 0.0
  run(2)
  return Steps(run, compile_s)


def torch_compiled_steps(module: torch.nn.Module, input_shape_cfirst, **kw) -> Steps:
  """:func:`torch_steps` with ``torch_compile=True``; on any compile failure ``run`` and
  ``compile_s`` None and ``status`` 'not compiled: <exception, first line>' (Dynamo / Inductor
  fail in many ways: no C++ compiler, an unsupported op, ...)."""
  try:
    return torch_steps(module, input_shape_cfirst, torch_compile=True, **kw)
  except Exception as e:  # noqa: BLE001 - every failure becomes the row's reason
    reason = f"{type(e).__name__}: {e}".splitlines()[0][:160]
    return Steps(None, None, f"not compiled: {reason}")
