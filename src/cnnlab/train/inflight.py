"""A bound on queued steps where jaxlib's CPU client needs one (docs/scale.md, "Queued steps on
several CPU devices").

With more than one CPU device in a process (``--xla_force_host_platform_device_count``,
``jax_num_cpu_devices``), jaxlib 0.10.2 aborts the process ("Termination timeout for `all
reduce ...`") once a few dozen dispatched steps that hold a cross-device all-reduce wait in its
queue: 40 queued steps of a 2-device data-parallel SGD step did, 30 did not. ``Throttle`` waits
for the outputs of every ``EVERY``-th dispatch there (``jax.block_until_ready``: no copy to the
host) and does nothing on one CPU device, a GPU or a TPU.
"""

from __future__ import annotations

import jax

EVERY = 8  # dispatches between waits; 10 kept 2,000 queued steps alive on 2 and on 8 devices


def needed() -> bool:
  """Several CPU devices in this process."""
  return jax.default_backend() == "cpu" and jax.local_device_count() > 1


class Throttle:
  """``throttle(outputs)`` after each dispatch; waits on every ``EVERY``-th where ``needed()``."""

  def __init__(self):
    self.active = needed()
    self.count = 0

  def __call__(self, outputs) -> None:
    self.count += 1
    if self.active and self.count % EVERY == 0:
      jax.block_until_ready(outputs)
