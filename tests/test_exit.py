"""A program that never stops its peers, nodes or ports still exits promptly, and says goodbye."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

import zio

pytestmark = [pytest.mark.needs_netns, pytest.mark.usefixtures("discovery")]

FORGETFUL = textwrap.dedent(
    """
    import sys, zmq, zio
    peer = zio.Peer("forgetful-peer")
    node = zio.Node("forgetful")
    node.port("out", zmq.PUSH).bind()
    node.port("in", zmq.PULL).connect("somebody", "out")
    node.online(timeout_ms=0)
    print("ready", flush=True)
    sys.stdin.readline()  # the test lets us go once the watcher has seen us
    sys.exit(0)  # no stop(), no offline(), no close()
    """
)


def test_exit_without_stop_does_not_hang_and_says_goodbye():
    with zio.Peer("watcher") as watcher:
        child = subprocess.Popen([sys.executable, "-c", FORGETFUL], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        seen = watcher.party(["forgetful", "forgetful-peer"], 10000)
        assert {info.nick for info in seen.values()} == {"forgetful", "forgetful-peer"}
        t0 = time.monotonic()
        out, err = child.communicate("go\n", timeout=60)
        took = time.monotonic() - t0
        assert child.returncode == 0, err
        print(f"\nprogram without stop() exited in {took:.2f} s")
        left = set()
        deadline = time.monotonic() + 10
        while len(left) < 2 and time.monotonic() < deadline:
            event = watcher.poll(100)
            if event is not None and event.kind == zio.EXIT:
                left.add(event.peer.nick)
        assert left == {"forgetful-peer", "forgetful"}
        assert watcher.matchnick("forgetful") == [] and watcher.matchnick("forgetful-peer") == []
