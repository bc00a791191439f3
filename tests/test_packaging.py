"""The distribution: what a wheel of zio installs (PEP 561 markers among it)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """A wheel built from a copy of the source tree (offline: no build isolation, no deps)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("zio", "zio_plugins"):
        shutil.copytree(os.path.join(ROOT, name), src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-build-isolation", "--no-deps",
         "--wheel-dir", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    [built] = out.glob("zio-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_installs_the_py_typed_markers(wheel):
    names = set(wheel.namelist())
    assert {"zio/py.typed", "zio_plugins/py.typed"} <= names
    assert "zio/cli.py" in names and "zio_plugins/beacon/engine.py" in names


def test_the_source_tree_has_the_markers():
    import importlib.resources

    assert importlib.resources.files("zio").joinpath("py.typed").is_file()
    assert importlib.resources.files("zio_plugins").joinpath("py.typed").is_file()
