"""``config.profile_steps=(start, stop)``: a ``jax.profiler`` trace of train steps ``start+1 ...
stop`` in ``WORKDIR/profile`` (TensorBoard's profile tab or Perfetto read it), and one line
splitting their time into input wait (the host waiting for the next batch) and device compute.

Only inside the window does the loop wait for each step to finish (to time it); outside it
nothing is synchronised. ``(0, 0)`` (the default) profiles nothing.
"""

from __future__ import annotations

import pathlib
import sys
import time

import jax


class Window:
  """Call :meth:`next_batch` for every batch and :meth:`step_done` after every step."""

  def __init__(self, profile_steps, workdir):
    self.start, self.stop = tuple(profile_steps) if profile_steps else (0, 0)
    self.dir = pathlib.Path(workdir) / "profile"
    self.input_s = self.compute_s = 0.0
    self.steps = 0
    self._tracing = False

  def _inside(self, step: int) -> bool:
    return self.start < step <= self.stop

  def next_batch(self, it, step: int):
    """``next(it)`` for step ``step`` (1-based); starts the trace at the window's first step."""
    if not self._inside(step):
      return next(it)
    if not self._tracing and jax.process_index() == 0:
      jax.profiler.start_trace(str(self.dir))
    self._tracing = True
    t0 = time.perf_counter()
    batch = next(it)
    self.input_s += time.perf_counter() - t0
    self._t = time.perf_counter()
    return batch

  def step_done(self, step: int, out) -> None:
    """After step ``step`` was dispatched with result ``out``: its compute time; at the
    window's last step, stops the trace and prints the summary line."""
    if not self._inside(step):
      return
    jax.block_until_ready(out)
    self.compute_s += time.perf_counter() - self._t
    self.steps += 1
    if step == self.stop:
      self.close()

  def close(self) -> None:
    if not self._tracing:
      return
    self._tracing = False
    if jax.process_index() == 0:
      jax.profiler.stop_trace()
      total = self.input_s + self.compute_s
      print(f"profile: steps {self.start + 1}-{self.start + self.steps}: "
            f"{1e3 * total / self.steps:.1f} ms/step = input wait "
            f"{1e3 * self.input_s / self.steps:.1f} ms ({100 * self.input_s / total:.0f} %) + "
            f"device compute {1e3 * self.compute_s / self.steps:.1f} ms; trace in {self.dir}",
            file=sys.stderr, flush=True)
