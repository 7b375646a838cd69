"""The README's commands are the ones CI runs: keep them from drifting apart."""

import re

from recorded import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```sh\n(python3 -m venv .*?)\n```", text)


def test_ci_runs_the_readme_test_command() -> None:
    commands = _readme_commands()
    test_cmd = [c for c in commands if c.endswith("pytest")]
    assert len(test_cmd) == 1, commands
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_cmd[0] in ci


def test_readme_main_command_installs_and_runs_llmtap() -> None:
    commands = _readme_commands()
    assert any("pip install '.[demo]'" in c and "llmtap demo" in c for c in commands), commands
