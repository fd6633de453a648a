"""README.md cannot rot: its two set-up commands are what CI runs, and every shell command it
shows runs — training and sweeps with ``:smoke``, benchmarks on their smallest settings — with
every path under ``runs/`` (and ``--doc``) moved into a temporary directory.

Cluster commands run here as what they start: ``--executor=slurm`` as ``submitit_local`` (the
job's tasks as local processes), and ``gcloud ... ssh --worker=all --command="cd DIR && CMD"`` as
CMD in one process (``--multihost`` dropped, ``gs://BUCKET/`` read as ``runs/``)."""

import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO
from experiments.test_fc_vs_conv import README_RUN
from sweep.test_sweep import README_SWEEP

README = (REPO / "README.md").read_text()
SMOKE_CONFIG = {"scripts/bench_conv.py": "configs/bench/conv.py:smoke"}
EXTRA_FLAGS = {"scripts/bench_conv.py": ["--update_cache=false"],
               "scripts/bench_train.py": ["--steps=1", "--repeats=1", "--cases=lenet5",
                                          "--impls=lax", "--torch_compile=false"]}


def _blocks(text=README):
  """Each ```bash block as a list of commands (backslash continuations joined)."""
  return [block.replace("\\\n", " ").splitlines()
          for block in re.findall(r"```bash\n(.+?)\n```", text, re.S)]


def _setup_commands():
  setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
  return [c for block in _blocks(setup) for c in block]


def _smoke(command: str, tmp) -> list[str] | None:
  """The argv that runs ``command`` quickly with its outputs under ``tmp`` (None: the command
  is the test run itself)."""
  if command.startswith("gcloud "):  # a TPU pod's command on every worker: here, one process
    (inner,) = [a.split("=", 1)[1] for a in shlex.split(command) if a.startswith("--command=")]
    inner = inner.replace("gs://BUCKET/", "runs/").replace(" --multihost", "")
    return _smoke(inner, tmp)
  command = command.split("&&")[-1].strip()  # "pip install ... && python ...": CI installs
  argv = shlex.split(command)
  if argv[:3] == ["python", "-m", "pytest"]:
    return None
  assert argv[0] == "python" and argv[1].startswith("scripts/"), command
  script, out = argv[1], [sys.executable, argv[1]]
  for a in argv[2:]:
    key, eq, value = a.partition("=")
    if key == "--config":
      value = SMOKE_CONFIG.get(script) or value + (",smoke" if ":" in value else ":smoke")
    elif key == "--doc":
      value = str(tmp / "doc.md")
    elif key == "--executor" and value == "slurm":
      value = "submitit_local"
    elif value.startswith("runs/") or (not eq and a.startswith("runs/")):
      value, a = str(tmp / value), str(tmp / a)
    out.append(f"{key}={value}" if eq else a)
  return out + EXTRA_FLAGS.get(script, [])


def _what_runs(argv):
  return argv and tuple(a for a in argv[1:] if not a.startswith("--workdir="))


# Commands another test runs as shown (the same argv but for --workdir) and checks beyond their
# exit code: run there, not a second time here. Changing either side runs the command here again.
RUN_ELSEWHERE = {README_SWEEP: "tests/sweep/test_sweep.py::test_killed_sweep_resumes_...",
                 README_RUN: "tests/experiments/test_fc_vs_conv.py::test_script_smoke"}


def test_exactly_two_setup_commands():
  cmds = _setup_commands()
  assert len(cmds) == 2, cmds
  assert cmds[0].startswith("python -m pip install -r requirements.txt && python scripts/")


def test_ci_runs_the_readme_test_command_verbatim():
  ci = (REPO / ".ci" / "run").read_text().splitlines()
  assert _setup_commands()[1] in ci


def test_every_shown_command_is_run_here():
  shown = {c for block in _blocks() for c in block}
  assert len(shown) >= 10, shown  # the set-up, runner, sweep, summary and benchmark commands
  assert all(c.split("&&")[-1].strip().startswith(("python ", "gcloud ")) for c in shown), shown


def test_commands_left_to_other_tests_are_shown():
  """A RUN_ELSEWHERE entry that no longer matches a shown command would skip nothing: stale."""
  shown = {_what_runs(_smoke(c, REPO / "runs")) for block in _blocks() for c in block}
  assert set(RUN_ELSEWHERE) <= shown, set(RUN_ELSEWHERE) - shown


@pytest.mark.parametrize("block", range(len(_blocks())))
def test_readme_block_runs(block, tmp_path):
  """Each run once: a command that differs from an earlier one only in its --workdir (the TPU
  pod's command, block 0's main job shown again) is not run again, nor one in RUN_ELSEWHERE."""
  seen = {_what_runs(_smoke(c, tmp_path)) for b in _blocks()[:block] for c in b}
  seen |= set(RUN_ELSEWHERE)
  for command in _blocks()[block]:
    argv = _smoke(command, tmp_path)
    if argv is None or _what_runs(argv) in seen:
      continue
    seen.add(_what_runs(argv))
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
