"""README's two set-up commands stay true: CI runs the test command verbatim, the main command
names a config and script that exist."""

import re

from conftest import REPO


def _commands():
  text = (REPO / "README.md").read_text()
  setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
  return re.findall(r"```bash\n(.+?)\n```", setup)


def test_exactly_two_setup_commands():
  cmds = _commands()
  assert len(cmds) == 2, cmds
  assert all("\n" not in c for c in cmds)


def test_ci_runs_the_readme_test_command_verbatim():
  ci = (REPO / ".ci" / "run").read_text().splitlines()
  assert _commands()[1] in ci


def test_main_command_points_at_real_files():
  main = _commands()[0]
  script, config = re.search(r"python (scripts/\S+\.py) --config=(\S+\.py)", main).groups()
  assert (REPO / script).exists() and (REPO / config).exists()
