"""``conv(..., impl='fenced')`` and ``conv_parts.fusion_fence``: ``lax``'s numbers in every mode
of differentiation, and the compiled CPU program they exist for (the weight-gradient conv's input
no longer recomputes the elementwise chain that produced it)."""

import json
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import launch, ops
from cnnlab.ops.conv_parts import fusion_fence
from cnnlab.train.backend import NO_YNN_CONV
from conftest import REPO

CASES = [dict(padding=1), dict(stride=2, padding=(0, 2)), dict(dilation=2, padding="SAME"),
         dict(groups=2, padding="VALID")]


def _conv(impl, kw):
  return lambda x, w: ops.conv(x, w, impl=impl, **kw)


@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("kw", CASES)
def test_values_and_both_gradients_are_lax_bit_for_bit(kw, use_jit):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((2, 9, 10, 4)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 4 // kw.get("groups", 1), 6)), jnp.float32)
  outs = {}
  for impl in ("lax", "fenced"):
    f = _conv(impl, kw)
    loss = lambda x, w: jnp.sum(jnp.sin(f(jnp.maximum(x, 0.1), w)))  # noqa: E731, B023
    fn = lambda x, w: (f(x, w), jax.grad(loss, (0, 1))(x, w))  # noqa: E731, B023
    outs[impl] = (jax.jit(fn) if use_jit else fn)(x, w)
  jax.tree.map(np.testing.assert_array_equal, outs["fenced"], outs["lax"])


def test_forward_mode_is_lax_too():
  """The fence's JVP rule passes the tangent through: ``jax.jvp`` (and so Hessian-vector
  products) gives ``lax``'s numbers."""
  rng = np.random.default_rng(1)
  x, dx = (jnp.asarray(rng.standard_normal((2, 6, 6, 3)), jnp.float32) for _ in range(2))
  w = jnp.asarray(rng.standard_normal((3, 3, 3, 5)), jnp.float32)
  got = jax.jvp(lambda x: _conv("fenced", dict(padding=1))(x, w), (x,), (dx,))
  want = jax.jvp(lambda x: _conv("lax", dict(padding=1))(x, w), (x,), (dx,))
  jax.tree.map(np.testing.assert_array_equal, got, want)


def test_the_fence_stands_only_where_differentiated_on_the_cpu(monkeypatch):
  x, w = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2))
  loss = lambda x, w: jnp.sum(_conv("fenced", {})(x, w))  # noqa: E731
  assert fusion_fence(x, w) is x
  assert "cond[" not in str(jax.make_jaxpr(_conv("fenced", {}))(x, w))  # eval, inference
  assert "cond[" in str(jax.make_jaxpr(jax.grad(loss, (0, 1)))(x, w))
  assert "cond[" in str(jax.make_jaxpr(jax.grad(loss, 1))(x, w))  # x not differentiated
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert "cond[" not in str(jax.make_jaxpr(jax.grad(loss, (0, 1)))(x, w))


def _conv_operand_fusions(hlo: str) -> list[str]:
  """The bodies of the fusions that compute an operand of a ``convolution`` instruction."""
  bodies = dict(re.findall(r"^(?:ENTRY )?%([\w.\-]+) \(.*?\{\n(.*?)\n\}", hlo, re.M | re.S))
  calls = dict(re.findall(r"%([\w.\-]+) = [^\n]* fusion\([^\n]*calls=%([\w.\-]+)", hlo))
  operands = re.findall(r" convolution\(%([\w.\-]+), %([\w.\-]+)\)", hlo)
  return [bodies[calls[op]] for pair in operands for op in pair if op in calls]


@pytest.mark.parametrize("impl,recomputed", [("lax", True), ("fenced", False)])
def test_weight_gradient_conv_reads_the_stored_input(impl, recomputed):
  """A BatchNorm-ReLU-residual-like chain feeds the conv. Under the CPU preset XLA fuses the
  chain (its ``maximum``) into the transposed copy feeding the weight-gradient conv when the
  conv is ``lax``; behind the fence (a ``conditional``) no conv operand recomputes it."""
  def loss(a, b, scale, w):
    x = jnp.maximum(a * scale + b, 0.0)
    x = jnp.maximum(x + b, 0.0)
    return jnp.sum(ops.conv(x, w, padding=1, impl=impl) ** 2)

  args = (jnp.ones((4, 8, 8, 16)), jnp.ones((4, 8, 8, 16)), jnp.ones(16), jnp.ones((3, 3, 16, 16)))
  step = jax.jit(jax.grad(loss, (0, 3)), compiler_options=NO_YNN_CONV)
  hlo = step.lower(*args).compile().as_text()
  fusions = _conv_operand_fusions(hlo)
  assert len(fusions) >= 2, hlo
  assert any("maximum(" in body for body in fusions) == recomputed
  assert ("conditional(" in hlo) == (impl == "fenced")


def test_batch_sharded_over_eight_devices_adds_no_communication():
  """The predicate reads the (replicated) kernel, not the batch-sharded input: the compiled
  gradient holds the same collectives as ``lax``'s."""
  script = textwrap.dedent("""
      import json, re, jax, jax.numpy as jnp
      from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
      from cnnlab import ops
      mesh = Mesh(jax.devices(), ("data",))
      x = jax.device_put(jnp.ones((8, 8, 8, 16)), NamedSharding(mesh, P("data")))
      w = jax.device_put(jnp.ones((3, 3, 16, 16)), NamedSharding(mesh, P()))
      out = {"devices": jax.device_count()}
      for impl in ("lax", "fenced"):
        loss = lambda x, w: jnp.sum(ops.conv(jnp.maximum(x, 0), w, padding=1, impl=impl) ** 2)
        hlo = jax.jit(jax.grad(loss, (0, 1))).lower(x, w).compile().as_text()
        pattern = r"(all-reduce|all-gather|collective-permute|all-to-all|reduce-scatter)[-a-z]*\("
        out[impl] = [sorted(re.findall(pattern, hlo)), "conditional(" in hlo]
      print(json.dumps(out))
  """)
  env = launch.child_env(8)
  proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  got = json.loads(proc.stdout.splitlines()[-1])
  assert got["devices"] == 8
  assert got["lax"][0], got  # the weight gradient's sum over the sharded batch
  assert got["fenced"] == [got["lax"][0], True], got
