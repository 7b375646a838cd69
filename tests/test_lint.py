"""ruff and mypy run as part of the suite so CI enforces them."""

import shutil
import subprocess
import sys

import pytest
from recorded import REPO

PACKAGES = ["core", "ext", "gateway", "llmtap"]


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(REPO / ".venv" / "bin")) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; it is part of the [test] extra")
    return path


def test_ruff_clean() -> None:
    r = subprocess.run(
        [_tool("ruff"), "check", *PACKAGES, "tests", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_clean(tmp_path) -> None:
    # mypy cannot follow setuptools' editable-install finder, and the sub-packages live
    # in root folders: rebuild the installed layout as a tree of symlinks and check that.
    top = tmp_path / "llmtap"
    top.mkdir()
    for entry in (REPO / "llmtap").iterdir():
        (top / entry.name).symlink_to(entry)
    for sub in ("core", "ext", "gateway"):
        (top / sub).symlink_to(REPO / sub)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "-p",
            "llmtap",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
