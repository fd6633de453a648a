"""Result writers shared by experiments, sweeps and benchmarks: a Markdown table, and a result
record ``NAME.json`` (+ ``NAME.md``) in a workdir with the machine it ran on. No torch here."""

from __future__ import annotations

import json
import math
import os
import platform

from cnnlab import hostmem


def machine() -> dict:
  """Platform, CPU model, CPU count, JAX version/backend and huge-page settings
  (:func:`cnnlab.hostmem.in_force`) of this process."""
  import jax  # noqa: PLC0415 - keep importing this module cheap
  return {"platform": platform.platform(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
          "jax": jax.__version__, "jax_backend": jax.default_backend(),
          "host_memory": hostmem.in_force()}


VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "asimd", "sve")


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
  """The first ``model name`` of Linux's ``cpuinfo`` and its vector flags among
  ``VECTOR_FLAGS`` (``"AMD EPYC (avx2 fma)"``); ``platform.processor()`` where the file or the
  field is missing. Ratios against torch differ between CPUs: benchmarks record it."""
  try:
    with open(cpuinfo, encoding="utf-8", errors="replace") as f:
      lines = f.read().split("\n\n")[0].splitlines()  # the first processor's block
  except OSError:
    lines = []
  fields = {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in lines if ":" in l)}
  name = fields.get("model name") or platform.processor() or "unknown"
  flags = [f for f in VECTOR_FLAGS if f in fields.get("flags", fields.get("Features", "")).split()]
  return f"{name} ({' '.join(flags)})" if flags else name


def fmt(v) -> str:
  """Floats to 3 significant digits, ints whole; thousands separated above 1,000; the rest as
  ``str``."""
  if isinstance(v, int) and not isinstance(v, bool):
    return f"{v:,}"
  if isinstance(v, float):
    if not math.isfinite(v):
      return str(v)
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
  return str(v)


def markdown_table(rows: list[dict], columns: list[str]) -> str:
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
  return "\n".join(lines)


def write(workdir: str, name: str, rows: list[dict], columns: list[str] | None = None,
          extra: dict | None = None, markdown: str | None = None,
          machine_info: dict | None = None) -> dict:
  """Writes ``workdir/name.json`` (``{"machine", "rows", **extra}``) and ``workdir/name.md``
  (``markdown``, else the table of ``rows`` by ``columns``); returns their paths."""
  os.makedirs(workdir, exist_ok=True)
  paths = {"json": os.path.join(workdir, f"{name}.json"), "md": os.path.join(workdir, f"{name}.md")}
  with open(paths["json"], "w") as f:
    json.dump({"machine": machine_info or machine(), "rows": rows, **(extra or {})}, f, indent=2)
  text = markdown if markdown is not None else markdown_table(rows, columns or list(rows[0]))
  with open(paths["md"], "w") as f:
    f.write(text.rstrip("\n") + "\n")
  return paths
