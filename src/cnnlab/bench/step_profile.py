"""Where a compiled step's time goes on XLA's CPU backend: a ``jax.profiler`` trace of a few
calls, each executed HLO instruction's events summed and grouped by what it computes and where.

XLA's CPU runtime records one trace event per executed instruction (thunk), named as the
instruction in the compiled HLO (``compiled.as_text()``). Each is classified from that text:

- kind: ``conv`` (a ``convolution``, alone or inside a fusion, YNN's included), ``dot``,
  ``layout`` (``copy`` / ``transpose`` instructions and fusions named after them: data laid out
  for the next op), ``reduce`` (fusions holding a ``reduce`` / ``reduce-window``),
  ``elementwise`` (other fusions), ``other``;
- part: ``backward`` when the instruction's JAX name stack (``metadata op_name``; for a fusion
  without one, those of the instructions it fuses) holds a ``transpose(`` (the VJP), ``forward``
  inside the model's scope, ``outside`` when it names neither (loss, metrics, optimizer update),
  ``unnamed`` when XLA left it none: in practice the layout copies and the weight-gradient convs
  that XLA's CPU backend builds for the backward pass.

Times are summed per call, each instruction from its start to its completion (the runtime's
``end: <name>`` marker: an asynchronous conv's own event covers only its launch); with one
compute thread they add up to about the step's time (compare ``step_ms``), with several, or
with instructions waiting for a free thread, they may exceed it. Measured breakdowns of
ResNet-18 and MobileNet-v2: docs/performance.md, "Where a train step's time goes".
"""

from __future__ import annotations

import collections
import pathlib
import re
import tempfile
import time

import jax
from jax.profiler import ProfileData

_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+) = .*? ([a-z][\w\-]*)\((.*)$")
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%([\w.\-]+) ")
KINDS = ("conv", "dot", "layout", "reduce", "elementwise", "other")
PARTS = ("forward", "backward", "outside", "unnamed")


def _computations(hlo_text: str) -> dict[str, str]:
  """Computation name -> its body's text."""
  out, name = {}, None
  for line in hlo_text.splitlines():
    m = _COMPUTATION.match(line)
    if m and line.rstrip().endswith("{"):
      name = m.group(1)
      out[name] = []
    elif name:
      out[name].append(line)
  return {k: "\n".join(v) for k, v in out.items()}


def classify(hlo_text: str, model_scope: str) -> dict[str, tuple[str, str]]:
  """Instruction name -> ``(kind, part)`` for every instruction of ``hlo_text``."""
  bodies = _computations(hlo_text)
  out = {}
  for line in hlo_text.splitlines():
    m = _INSTRUCTION.match(line)
    if not m:
      continue
    name, opcode, rest = m.groups()
    called = re.search(r"calls=%([\w.\-]+)", rest)
    body = bodies.get(called.group(1), "") if called else ""
    # The instruction's name stack; a fusion without one: those of the instructions it fuses.
    op_name = " ".join(re.findall(r'op_name="([^"]*)"', rest) or
                       re.findall(r'op_name="([^"]*)"', body))
    if opcode == "convolution" or " convolution(" in body:
      kind = "conv"
    elif opcode == "dot" or " dot(" in body:
      kind = "dot"
    elif opcode in ("copy", "transpose") or name.startswith(("copy", "transpose")):
      kind = "layout"
    elif opcode == "fusion" and (" reduce(" in body or " reduce-window(" in body):
      kind = "reduce"
    elif opcode == "fusion":
      kind = "elementwise"
    else:
      kind = "other"
    part = ("unnamed" if not op_name else "backward" if "transpose(" in op_name else
            "forward" if model_scope in op_name else "outside")
    out[name] = (kind, part)
  return out


def durations(events) -> dict[str, float]:
  """Instruction name -> summed seconds, from trace ``events`` ``(start_ns, end_ns, name)``: an
  instruction runs from its event's start to the end of its ``end: <name>`` marker where the
  runtime records one after it (an instruction that runs asynchronously, as XLA's Eigen convs
  often do, has a short event for its launch and the marker at its completion), else for its
  event's length."""
  totals, running = collections.Counter(), {}  # name -> (start, end) of its unmatched event
  for start, end, name in sorted(events):
    if name.startswith("end: "):
      if name[5:] in running:
        s0, e0 = running.pop(name[5:])
        totals[name[5:]] += (max(e0, end) - s0) * 1e-9
      continue
    if name in running:  # the previous one had no marker
      totals[name] += (running[name][1] - running[name][0]) * 1e-9
    running[name] = (start, end)
  for name, (s0, e0) in running.items():
    totals[name] += (e0 - s0) * 1e-9
  return totals


def _event_durations(trace_dir: pathlib.Path) -> dict[str, float]:
  """:func:`durations` of every event on every thread of the trace in ``trace_dir``."""
  (path,) = sorted(trace_dir.rglob("*.xplane.pb"))[-1:]
  return durations((e.start_ns, e.start_ns + e.duration_ns, e.name)
                   for plane in ProfileData.from_file(str(path)).planes
                   for line in plane.lines for e in line.events)


def profile(hlo_text: str, run, *, calls: int, model_scope: str, top: int = 10) -> dict:
  """Traces ``run(calls)`` (``calls`` calls of the program compiled to ``hlo_text``, waited for)
  and returns ``{"step_ms", "kinds": {kind: {part: ms per call}}, "top": [(instruction, kind,
  part, ms per call), ...]}``; ``model_scope``: the model's name in JAX's name stack (its class
  name)."""
  classes = classify(hlo_text, model_scope)
  with tempfile.TemporaryDirectory() as tmp:
    jax.profiler.start_trace(tmp)
    t = time.perf_counter()
    run(calls)
    step_s = (time.perf_counter() - t) / calls
    jax.profiler.stop_trace()
    durations = _event_durations(pathlib.Path(tmp))
  kinds = {k: dict.fromkeys(PARTS, 0.0) for k in KINDS}
  rows = []
  for name, seconds in durations.items():
    if name in classes:
      kind, part = classes[name]
      kinds[kind][part] += 1e3 * seconds / calls
      rows.append((name, kind, part, 1e3 * seconds / calls))
  rows.sort(key=lambda r: -r[-1])
  return {"step_ms": 1e3 * step_s, "kinds": kinds, "top": rows[:top]}


def table(result: dict) -> str:
  """Markdown: ms per call by kind (rows) and part (columns), then the top instructions."""
  lines = [f"step: {result['step_ms']:.1f} ms; instruction time (ms per step):", "",
           "| kind | " + " | ".join(PARTS) + " | total | share |", "|---" * (len(PARTS) + 3) + "|"]
  grand = sum(sum(v.values()) for v in result["kinds"].values()) or 1.0
  for kind, parts in result["kinds"].items():
    total = sum(parts.values())
    lines.append(f"| {kind} | " + " | ".join(f"{parts[p]:.1f}" for p in PARTS)
                 + f" | {total:.1f} | {100 * total / grand:.0f} % |")
  lines += ["", "| instruction | kind | part | ms |", "|---|---|---|---|"]
  lines += [f"| {n} | {k} | {p} | {ms:.1f} |" for n, k, p, ms in result["top"]]
  return "\n".join(lines)
