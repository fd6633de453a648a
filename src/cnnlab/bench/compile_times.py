"""Compile time of each registered model's jitted forward (eval mode, batch 1) at its default
input size. Parameters stay abstract (``jax.eval_shape``): nothing is allocated or run."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from cnnlab import models


def compile_seconds(name: str) -> dict:
  spec = models.get_spec(name)
  model = models.create(name)
  x = jax.ShapeDtypeStruct((1, *spec.input_shape), spec.input_dtype)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(x.shape, x.dtype),
                                                train=False))
  fwd = jax.jit(lambda v, x: model.apply(v, x, train=False))
  t = time.perf_counter()
  lowered = fwd.lower(variables, x)
  t_lower = time.perf_counter() - t
  lowered.compile()
  return {"model": name, "input": "x".join(map(str, spec.input_shape)),
          "trace_lower_s": t_lower, "compile_s": time.perf_counter() - t - t_lower}


def all_models() -> list[dict]:
  return [compile_seconds(n) for n in models.list_models()]
