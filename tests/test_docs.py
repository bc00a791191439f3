"""The API reference builds, with the command the README names, and covers what it promises."""
from __future__ import annotations

import os
import pathlib
import shlex
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
README = os.path.join(ROOT, "README.md")


def readme_command() -> list[str]:
    """The pdoc command of the README's "API reference" section, as words."""
    with open(README, encoding="utf-8") as f:
        lines = [line for line in f if "python -m pdoc" in line]
    assert len(lines) == 1, lines
    return shlex.split(lines[0].split("&&")[-1])


def early_commands(tmp_dir: str) -> dict:
    """The README's pdoc command, writing to ``tmp_dir``/api: conftest starts it once collection
    is over, at low priority."""
    words = readme_command()
    return {"pdoc": ([sys.executable, "-m", "pdoc", "-o", os.path.join(tmp_dir, "api"), *words[5:]], ROOT)}


def test_the_api_reference_builds_and_covers_zio_asyncio_and_the_plugin_interface(early_run):
    pytest.importorskip("pdoc")
    words = readme_command()
    assert words[:4] == ["python", "-m", "pdoc", "-o"]
    done = early_run("pdoc", timeout=120)
    assert done.returncode == 0, done.stderr
    out = pathlib.Path(done.args[4])  # the -o directory
    assert done.args[5:] == words[5:]
    pages = {p: (out / p).read_text(encoding="utf-8") for p in ("zio.html", "zio/asyncio.html", "zio/hookspecs.html")}
    for name in ("Message", "Port", "Peer", "Node", "Discovery", "ZioError"):
        assert f'id="{name}"' in pages["zio.html"], name
    for name in ("Node.online", "Port.recv", "Port.send", "Peer.waitfor", "Peer.events"):
        assert f'id="{name}"' in pages["zio/asyncio.html"], name
    assert 'id="zio_discovery_backends"' in pages["zio/hookspecs.html"]
