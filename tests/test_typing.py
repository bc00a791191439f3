"""mypy passes on the typed packages (``py.typed``: tests/test_packaging.py), with the settings
of pyproject.toml ([tool.mypy]: only the etcd extra's untyped client libraries are let off)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def test_mypy_passes_on_zio_and_the_plugins(tmp_path):
    pytest.importorskip("mypy")  # in the test extra: a plain run has it
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache"), "zio", "zio_plugins"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    errors = [line for line in done.stdout.splitlines() if re.match(r"^\S+\.py:\d+: error:", line)]
    assert errors == []
    assert done.returncode == 0, done.stdout + done.stderr  # 2: mypy itself failed
