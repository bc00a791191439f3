"""The README's examples run as written, and so does the demo its first command runs."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.needs_netns

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def python_blocks() -> list[str]:
    with open(README, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


_runs: dict[int, subprocess.CompletedProcess] = {}


def run_block(index: int) -> subprocess.CompletedProcess:
    """Block ``index`` run as written, once per session (the first example's run serves the
    test of its exit code and the test of what it prints)."""
    if index not in _runs:
        _runs[index] = subprocess.run([sys.executable, "-c", python_blocks()[index]], capture_output=True,
                                      text=True, timeout=60)
    return _runs[index]


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_examples_run(index, beacon_port):
    done = run_block(index)
    assert done.returncode == 0, done.stderr


def test_readme_first_example_prints_what_it_promises(beacon_port):
    done = run_block(0)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("{'greeting': 'hello'}")
    assert lines[1] == "42"


def test_demo_command(beacon_port):
    done = subprocess.run(
        [sys.executable, "-m", "zio", "demo"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "visitor got 'hello, visitor' from origin 1" in done.stdout


def test_cli_errors_are_one_line(beacon_port):
    done = subprocess.run(
        [sys.executable, "-m", "zio", "demo", "--discovery", "nope"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "unknown discovery backend 'nope'" in done.stderr
