"""The zio command: plugins, peers, send, recv, echo, demo; one-line errors and exit codes."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.needs_netns, pytest.mark.usefixtures("beacon_port")]


def zio(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zio", *args], capture_output=True, text=True, timeout=timeout)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "zio", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_plugins_lists_backends_and_packages():
    done = zio("plugins")
    assert done.returncode == 0
    assert done.stdout.split()[:2] == ["beacon", "zio"]


def test_echo_send_and_peers():
    echo = start("echo", "--count", "1")
    assert echo.stdout.readline().startswith("echo service echo/service (SERVER) at tcp://127.0.0.1:")
    listing = zio("peers", "--wait", "1")
    assert listing.returncode == 0
    assert "echo " in listing.stdout and "zio.port.service.socket = SERVER" in listing.stdout
    sent = zio("send", "--timeout", "20000", "--json", '{"x": 1}', "echo", "service", "part1")
    assert sent.returncode == 0, sent.stderr
    assert "label='{\"x\": 1}'" in sent.stdout and "b'part1'" in sent.stdout
    echo.communicate(timeout=30)
    assert echo.returncode == 0


def test_recv_from_a_publisher_and_watch():
    watch = start("peers", "--watch", "--duration", "30")
    time.sleep(0.5)
    publisher = subprocess.Popen(
        [sys.executable, "-c", "\n".join([
            "import time, zmq, zio",
            "with zio.Node('pub') as n:",
            "    p = n.port('out', zmq.PUB); p.bind(); n.online()",
            "    for i in range(400):",
            "        p.send(zio.Message(form='TICK', seqno=i)); time.sleep(0.01)",
        ])],
        stderr=subprocess.PIPE, text=True,
    )
    got = zio("recv", "--timeout", "20000", "pub", "out", "--count", "3")
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert len(lines) == 3 and all("'TICK'" in line for line in lines)
    publisher.kill()
    publisher.wait()
    seen = []
    for line in watch.stdout:  # until the watcher reports the killed publisher gone
        seen.append(line)
        if "EXIT pub " in line:
            break
    watch.kill()
    watch.wait()
    assert any("ENTER pub " in line for line in seen) and "EXIT pub " in seen[-1]


@pytest.mark.parametrize(
    "args, message",
    [
        (("send", "nobody", "port", "--timeout", "200"), "no node named 'nobody'"),
        (("send", "x", "y", "--json", "{bad"), "--json is not valid JSON"),
        (("peers", "--discovery", "nope"), "unknown discovery backend 'nope'"),
        (("peers", "--interface", "eth9"), "no usable IPv4 interface matches 'eth9'"),
    ],
)
def test_errors_are_one_line_with_exit_code_1(args, message):
    done = zio(*args)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_usage_errors_exit_2():
    assert zio("send").returncode == 2
    assert zio("no-such-command").returncode == 2
