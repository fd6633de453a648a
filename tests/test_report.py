"""``cnnlab.report``: the CPU model benchmarks record, tables, result records."""

import json
import platform

from cnnlab import report

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_bf16 amx_tile

processor\t: 1
model name\t: another core
"""

ARM = "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd sve\nCPU implementer\t: 0x41\n"


def test_cpu_model_from_cpuinfo_with_vector_flags(tmp_path):
  path = tmp_path / "cpuinfo"
  path.write_text(CPUINFO)
  assert report.cpu_model(str(path)) == (
      "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz (avx2 fma avx512f avx512_bf16 amx_tile)")


def test_cpu_model_without_model_name_or_file_falls_back_to_platform(tmp_path):
  path = tmp_path / "cpuinfo"
  path.write_text(ARM)
  fallback = platform.processor() or "unknown"
  assert report.cpu_model(str(path)) == f"{fallback} (asimd sve)"
  assert report.cpu_model(str(tmp_path / "missing")) == fallback


def test_write_records_machine_rows_and_table(tmp_path):
  rows = [{"a": 1234, "b": 0.12345}]
  paths = report.write(str(tmp_path), "r", rows, ["a", "b"], extra={"note": "x"})
  record = json.loads(open(paths["json"]).read())
  assert record["rows"] == rows and record["note"] == "x"
  assert set(record["machine"]) >= {"platform", "cpu", "cpu_count", "jax"}
  assert open(paths["md"]).read() == "| a | b |\n|---|---|\n| 1,234 | 0.123 |\n"
