"""mypy passes on the typed packages (``py.typed``: tests/test_packaging.py), with the settings
of pyproject.toml ([tool.mypy]: only the etcd extra's untyped client libraries are let off)."""
from __future__ import annotations

import os
import re
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def early_commands(tmp_dir: str) -> dict:
    """mypy, with a cache of its own: conftest starts it once collection is over, at low priority."""
    return {"mypy": ([sys.executable, "-m", "mypy", "--cache-dir", os.path.join(tmp_dir, "mypy-cache"),
                      "zio", "zio_plugins"], ROOT)}


def test_mypy_passes_on_zio_and_the_plugins(early_run):
    pytest.importorskip("mypy")  # in the test extra: a plain run has it
    done = early_run("mypy", timeout=300)
    errors = [line for line in done.stdout.splitlines() if re.match(r"^\S+\.py:\d+: error:", line)]
    assert errors == []
    assert done.returncode == 0, done.stdout + done.stderr  # 2: mypy itself failed
