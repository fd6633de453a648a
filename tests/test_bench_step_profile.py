"""``cnnlab.bench.step_profile``: instructions classified from hand-written HLO as labelled by
hand, instruction times from launch to completion marker, and traces of programs whose content
is known (a large conv dominates; the backward pass's convs land in the backward / unnamed
parts)."""

import jax
import jax.numpy as jnp
import numpy as np

from cnnlab import ops
from cnnlab.bench import step_profile, train_throughput

HLO = """HloModule m

%fused_computation.1 (p0: f32[8,8,4], p1: f32[3,3,4,4]) -> f32[8,8,4] {
  %p0 = f32[8,8,4]{2,1,0} parameter(0)
  %p1 = f32[3,3,4,4]{3,2,1,0} parameter(1)
  ROOT %convolution.3 = f32[8,8,4]{2,1,0} convolution(%p0, %p1), window={size=3x3}
}

%fused_computation.2 (p0.2: f32[8,8,4], p1.2: f32[]) -> f32[4] {
  %p0.2 = f32[8,8,4]{2,1,0} parameter(0)
  %p1.2 = f32[] parameter(1)
  ROOT %reduce.1 = f32[4]{0} reduce(%p0.2, %p1.2), dimensions={0,1}, metadata={op_name="jit(f)/transpose(jvp(Net))/bn/reduce_sum"}
}

%fused_computation.3 (p0.3: f32[4]) -> f32[4] {
  ROOT %p0.3 = f32[4]{0} parameter(0)
}

ENTRY %main (x: f32[8,8,4], w: f32[3,3,4,4]) -> f32[4] {
  %x = f32[8,8,4]{2,1,0} parameter(0)
  %w = f32[3,3,4,4]{3,2,1,0} parameter(1)
  %ynn_fusion.1 = f32[8,8,4]{2,1,0} fusion(%x, %w), kind=kCustom, calls=%fused_computation.1, metadata={op_name="jit(f)/jvp(Net)/conv/conv_general_dilated"}
  %transpose_copy_fusion.2 = f32[8,8,4]{0,1,2} fusion(%ynn_fusion.1), kind=kLoop, calls=%fused_computation.3
  %reduce_fusion = f32[4]{0} fusion(%transpose_copy_fusion.2, %x), kind=kInput, calls=%fused_computation.2
  %dot.4 = f32[4,4]{1,0} dot(%x, %x), metadata={op_name="jit(f)/adam/dot_general"}
  ROOT %add_fusion = f32[4]{0} fusion(%reduce_fusion), kind=kLoop, calls=%fused_computation.3, metadata={op_name="jit(f)/jvp(Net)/add"}
}
"""  # noqa: E501


def test_classify_hand_labelled_hlo():
  got = step_profile.classify(HLO, "Net")
  assert got["ynn_fusion.1"] == ("conv", "forward")
  assert got["transpose_copy_fusion.2"] == ("layout", "unnamed")
  assert got["reduce_fusion"] == ("reduce", "backward")  # the name stack of what it fuses
  assert got["dot.4"] == ("dot", "outside")
  assert got["add_fusion"] == ("elementwise", "forward")
  assert got["x"] == ("other", "unnamed")


def test_an_asynchronous_instruction_lasts_until_its_end_marker():
  """XLA's runtime records an asynchronous conv as a short launch event and an ``end: <name>``
  marker at its completion; a synchronous one as its whole event (here with a marker inside)."""
  ms = 1_000_000
  events = [(0, 1 * ms, "conv.1"), (1 * ms, 3 * ms, "tanh"), (2 * ms, 3 * ms, "end: tanh"),
            (9 * ms, 9 * ms + 10, "end: conv.1"), (10 * ms, 11 * ms, "conv.1"),
            (12 * ms, 12 * ms + 10, "end: conv.1"), (20 * ms, 21 * ms, "dot")]
  got = step_profile.durations(events)
  assert {k: round(v * 1e3, 3) for k, v in got.items()} == {"conv.1": 9.0 + 2.0, "tanh": 2.0,
                                                            "dot": 1.0}


def _traced(f, *args, calls=2):
  compiled = jax.jit(f).lower(*args).compile()

  def run(n):
    for _ in range(n):
      out = compiled(*args)
    jax.block_until_ready(out)

  run(1)
  return step_profile.profile(compiled.as_text(), run, calls=calls, model_scope="Net")


def test_a_large_conv_dominates_its_trace():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((8, 64, 64, 32)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 32, 32)), jnp.float32)

  def f(x, w):
    with jax.named_scope("Net"):
      # relu, not tanh: the tests' unoptimised CPU code (conftest) makes tanh as slow as the conv
      return jnp.maximum(ops.conv(x, w, padding="SAME", impl="lax"), 0.0)

  r = _traced(f, x, w)
  totals = {k: sum(v.values()) for k, v in r["kinds"].items()}
  assert totals["conv"] == max(totals.values()) and r["kinds"]["conv"]["forward"] > 0
  assert r["top"][0][1:3] == ("conv", "forward")
  assert 0 < sum(totals.values()) < 2 * r["step_ms"]  # one compute thread here or a few
  assert "| conv |" in step_profile.table(r)


def test_backward_convs_are_not_counted_as_forward():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((8, 32, 32, 16)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 16, 16)), jnp.float32)

  def loss(w):
    with jax.named_scope("Net"):
      return jnp.sum(ops.conv(x, w, padding="SAME", impl="lax") ** 2)

  r = _traced(jax.grad(loss), w)
  conv = r["kinds"]["conv"]
  assert conv["backward"] + conv["unnamed"] > 0 and conv["forward"] > 0


def test_train_throughput_profiles_the_default_step():
  steps = train_throughput.cnnlab_steps("lenet5", batch_size=4)
  kinds = steps.profile(1)["kinds"]
  assert kinds["conv"]["forward"] > 0 and kinds["conv"]["backward"] + kinds["conv"]["unnamed"] > 0
  assert sum(kinds["elementwise"].values()) > 0  # tanh, the Adam update
