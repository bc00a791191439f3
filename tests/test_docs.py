"""The API reference builds, with the command the README names, and covers what it promises."""
from __future__ import annotations

import os
import shlex
import subprocess
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


def test_the_api_reference_builds_and_covers_zio_asyncio_and_the_plugin_interface(tmp_path):
    pytest.importorskip("pdoc")
    words = readme_command()
    assert words[:4] == ["python", "-m", "pdoc", "-o"]
    out = tmp_path / "api"
    done = subprocess.run([sys.executable, "-m", "pdoc", "-o", str(out), *words[5:]], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    pages = {p: (out / p).read_text(encoding="utf-8") for p in ("zio.html", "zio/asyncio.html", "zio/hookspecs.html")}
    for name in ("Message", "Port", "Peer", "Node", "Discovery", "ZioError"):
        assert f'id="{name}"' in pages["zio.html"], name
    for name in ("Node.online", "Port.recv", "Port.send", "Peer.waitfor", "Peer.events"):
        assert f'id="{name}"' in pages["zio/asyncio.html"], name
    assert 'id="zio_discovery_backends"' in pages["zio/hookspecs.html"]
