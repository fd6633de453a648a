"""cnnlab.train.inflight: queued multi-device CPU steps stay alive; no wait where not needed."""

import subprocess
import sys

import jax

from cnnlab import launch
from cnnlab.train import inflight

# 200 dispatches of a 2-device data-parallel SGD step (its gradient is all-reduced), with the
# loop's throttle after each. Without a bound, jaxlib 0.10.2 aborts this process once ~40 wait
# in the queue (module docstring); the result is checked against the same steps in numpy.
_CHILD = """
import functools, numpy as np, jax, jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from cnnlab.train import inflight
assert jax.device_count() == 2 and inflight.needed()
mesh = Mesh(np.array(jax.devices()), ("data",))
x_np = np.linspace(-1, 1, 64 * 32, dtype=np.float32).reshape(64, 32)
w = jax.device_put(jnp.full((32, 32), 0.1), NamedSharding(mesh, P()))
x = jax.device_put(x_np, NamedSharding(mesh, P("data")))

@functools.partial(jax.jit, donate_argnums=0)
def step(w, x):
  return w - 0.05 * jax.grad(lambda w: jnp.mean((x @ w) ** 2))(w)

throttle = inflight.Throttle()
for _ in range(200):
  w = step(w, x)
  throttle(w)
ref = np.full((32, 32), 0.1, np.float32)
for _ in range(200):  # d/dw mean((x w)^2) = 2 x^T x w / (rows * cols)
  ref = ref - 0.05 * 2 * x_np.T @ (x_np @ ref) / (64 * 32)
np.testing.assert_allclose(np.asarray(w), ref, rtol=1e-4, atol=1e-6)
print("done", throttle.count)
"""


def test_200_queued_two_device_steps_finish_and_match_numpy():
  env = launch.child_env(2)
  out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,
                       timeout=240)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.split() == ["done", "200"]


def test_one_device_never_waits(monkeypatch):
  assert jax.local_device_count() == 1 and not inflight.needed()
  waits = []
  monkeypatch.setattr(jax, "block_until_ready", waits.append)
  throttle = inflight.Throttle()
  for i in range(3 * inflight.EVERY):
    throttle(i)
  assert waits == [] and throttle.count == 3 * inflight.EVERY


def test_several_cpu_devices_wait_on_every_eighth_dispatch(monkeypatch):
  monkeypatch.setattr(inflight, "needed", lambda: True)
  waits = []
  monkeypatch.setattr(jax, "block_until_ready", waits.append)
  throttle = inflight.Throttle()
  for i in range(1, 3 * inflight.EVERY + 1):
    throttle(i)
  assert inflight.EVERY == 8 and waits == [8, 16, 24]
