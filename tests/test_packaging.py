"""The distribution: what a wheel of zio installs (PEP 561 markers among it)."""
from __future__ import annotations

import os
import pathlib
import shutil
import sys
import zipfile

import pytest

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)


def early_commands(tmp_dir: str) -> dict:
    """The wheel build (pip: ~2.5 s of CPU), started once collection is over at low priority
    (conftest), from a copy of the source tree made now in ``tmp_dir``."""
    src = os.path.join(tmp_dir, "src")
    for name in ("zio", "zio_plugins"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(src, name),
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), os.path.join(src, name))
    out = os.path.join(tmp_dir, "dist")
    return {"wheel": ([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-build-isolation", "--no-deps",
                       "--wheel-dir", out, src], tmp_dir)}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, early_results) -> zipfile.ZipFile:
    """A wheel built from a copy of the source tree (offline: no build isolation, no deps)."""
    done, tmp_dir = early_results(sys.modules[__name__], "wheel", str(tmp_path_factory.mktemp("wheel")), 300)
    assert done.returncode == 0, done.stderr
    [built] = pathlib.Path(tmp_dir, "dist").glob("zio-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_installs_the_py_typed_markers(wheel):
    names = set(wheel.namelist())
    assert {"zio/py.typed", "zio_plugins/py.typed"} <= names
    assert "zio/cli.py" in names and "zio_plugins/beacon/engine.py" in names


def test_the_source_tree_has_the_markers():
    import importlib.resources

    assert importlib.resources.files("zio").joinpath("py.typed").is_file()
    assert importlib.resources.files("zio_plugins").joinpath("py.typed").is_file()
