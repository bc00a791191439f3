"""The third-party plugin package examples/zio-static: installed by pip, found and used by name."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PACKAGE = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "zio-static")


def early_commands(tmp_dir: str) -> dict:
    """The pip install (~2 s of CPU), started once collection is over at low priority (conftest)."""
    return {"static-install": ([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation",
                                "--no-deps", "--target", os.path.join(tmp_dir, "site"), PACKAGE], tmp_dir)}


@pytest.fixture(scope="module")
def installed(tmp_path_factory, early_results):
    """pip-install the package into a folder of its own (offline: no build isolation, no deps)."""
    done, tmp_dir = early_results(sys.modules[__name__], "static-install", str(tmp_path_factory.mktemp("static")), 300)
    assert done.returncode == 0, done.stderr
    return os.path.join(tmp_dir, "site")


def run(code: str, site, **env) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, env=environ)


def test_listed_with_its_package(installed):
    done = run("import zio; print(zio.available_backends()['static'].package)", installed)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "zio-static 0.1.0"


def test_nodes_connect_by_name_through_static_peers(installed, tmp_path):
    peers_file = tmp_path / "peers.json"
    code = """
        import json, os, sys, zmq, zio
        server = zio.Port("sport", zmq.SERVER)
        server.bind("tcp://127.0.0.1:*")
        address = server.do_binds()["zio.port.sport.address"]
        server.online()
        with open(os.environ["PEERS_FILE"], "w") as f:
            json.dump([{"nick": "server", "headers": {"zio.port.sport.address": address}}], f)
        with zio.Node("client", discovery="static") as node:
            cport = node.port("cport", zmq.CLIENT)
            cport.connect("server", "sport")
            node.online(timeout_ms=2000)
            print(node.peer.backend.describe())
            cport.send(zio.Message(form="STAT", label="by name"), timeout_ms=2000)
            msg = server.recv(2000)
            server.send(msg)
            print("reply", cport.recv(2000).label)
        server.close()
    """
    done = run(code, installed, ZIO_STATIC_PEERS=str(peers_file), PEERS_FILE=str(peers_file))
    assert done.returncode == 0, done.stderr
    assert "'backend': 'static'" in done.stdout
    assert "reply by name" in done.stdout


def test_file_changes_are_followed(installed, tmp_path):
    peers_file = tmp_path / "peers.json"
    peers_file.write_text(json.dumps([{"nick": "a"}]))
    code = """
        import json, os, time, zio
        backend = zio.make_backend("static", file=os.environ["PEERS_FILE"], poll=0.05)
        with zio.Peer("me", discovery=backend) as peer:
            assert peer.waitfor("a", 2000)
            time.sleep(0.05)
            with open(os.environ["PEERS_FILE"], "w") as f:
                json.dump([{"nick": "b", "headers": {"k": "v"}}], f)
            os.utime(os.environ["PEERS_FILE"], (time.time() + 5, time.time() + 5))
            seen = []
            for e in peer.events(timeout_ms=2000):  # the three expected, each within 2 s
                seen.append((e.kind, e.peer.nick))
                if len(seen) == 3:  # then 0.5 s (10 polls of the file) for any event beyond them
                    seen += [(e.kind, e.peer.nick) for e in peer.events(timeout_ms=500)]
                    break
            print(seen)
    """
    done = run(code, installed, PEERS_FILE=str(peers_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('enter', 'a'), ('exit', 'a'), ('enter', 'b')]"


def test_bad_configuration_is_one_clear_error(installed):
    done = run("import zio; zio.make_backend('static')", installed)
    assert "ConfigurationError" in done.stderr and "ZIO_STATIC_PEERS" in done.stderr
    done = run("import zio; zio.make_backend('static')", installed, ZIO_STATIC_PEERS="[oops")
    assert "not valid JSON" in done.stderr
    done = run("import zio; zio.make_backend('static')", installed, ZIO_STATIC_PEERS="/no/such/file.json")
    assert "cannot read static peers" in done.stderr
