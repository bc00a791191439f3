"""Exit does not wait for peers that are gone: a SUB whose publisher left closes at once.

libzmq re-queues a SUB's subscriptions when its connection drops (for the reconnection);
with a linger, closing it -- or the context at interpreter exit -- waited the whole
``CLOSE_LINGER_MS`` (2 s) for a publisher that was not coming back. Seen as one of two
chat participants leaving together exiting 2 s late.
"""
from __future__ import annotations

import select
import subprocess
import sys
import textwrap
import time

import pytest
import zmq

import zio
from zio import port as port_module

SUBSCRIBER = """
    import sys, zmq, zio
    port = zio.Port("ears", zmq.SUB)
    port.subscribe()
    port.connect(sys.argv[1])
    port.online()
    print(port.recv(5000).label, flush=True)   # the publisher is there
    sys.stdin.readline()                        # ... until the test closes it
    assert port.recv(300) is None               # the socket notices the dropped connection
    print("closing", flush=True)
    if sys.argv[2] == "close":
        port.close()
    # else: never closed, the interpreter's exit closes it
"""


@pytest.mark.parametrize("how", ["close", "atexit"])
def test_a_sub_whose_publisher_left_exits_without_the_linger(how):
    publisher = zio.Port("mouth", zmq.PUB)
    publisher.bind("tcp://127.0.0.1:*")
    publisher.online()
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SUBSCRIBER), publisher.bound[0], how],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # PUB/SUB slow joiner: repeat until heard
            publisher.send(zio.Message(form="TEXT", label="hello"))
            if select.select([child.stdout], [], [], 0.05)[0]:
                break
        assert child.stdout.readline().strip() == "hello"
    finally:
        publisher.close()
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "closing"
    start = time.monotonic()
    child.wait(30)
    took = time.monotonic() - start
    assert child.returncode == 0, child.stderr.read()
    # with the linger it took CLOSE_LINGER_MS (2 s); without, a few tens of ms
    assert took < port_module.CLOSE_LINGER_MS / 1000 / 2, f"exit took {took:.2f} s"


def test_sockets_that_send_keep_their_linger():
    for kind, linger in ((zmq.SUB, 0), (zmq.PULL, 0), (zmq.PUB, port_module.CLOSE_LINGER_MS),
                         (zmq.PUSH, port_module.CLOSE_LINGER_MS), (zmq.CLIENT, port_module.CLOSE_LINGER_MS)):
        port = zio.Port("p", kind)
        assert port._linger_ms == linger
        port.close()


A_SERVER = """
    import time, zmq, zio
    with zio.Node("server") as node:
        port = node.port("sport", zmq.ROUTER)
        port.bind()
        node.online()
        print("up", flush=True)
        time.sleep(60)
"""

CLIENT_OF_A_DYING_SERVER = """
    import os, signal, subprocess, sys, time
    server = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True)
    import zmq, zio                              # (while the server starts: their imports overlap)
    assert server.stdout.readline().strip() == "up"
    node = zio.Node("client")
    port = node.port("cport", zmq.DEALER)
    port.connect("server", "sport")
    node.online(timeout_ms=10000)
    assert port.connected
    time.sleep(0.2)
    os.kill(server.pid, signal.SIGSTOP)          # it stops reading: our messages queue up here
    for _ in range(20):
        port.send(zio.Message(form="BLOB", payload=[b"x" * 1_000_000]), timeout_ms=1000)
    server.kill()
    server.wait()
    deadline = time.monotonic() + 10
    while port.connected and time.monotonic() < deadline:
        port.recv(100)                           # applies the departure: disconnects its address
    assert not port.connected, port.connected
    print("exiting", flush=True)
    # never closed: the interpreter's exit closes the port
"""


def test_exit_does_not_hang_on_messages_queued_to_a_departed_peer(discovery):
    """A DEALER had messages queued for a peer that died; the port dropped its address.
    The disconnect used libzmq's default linger (forever): the program hung at exit.
    Now they get the bounded CLOSE_LINGER_MS, counted from the disconnect."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CLIENT_OF_A_DYING_SERVER),
                              textwrap.dedent(A_SERVER)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "exiting", child.stderr.read()
        start = time.monotonic()
        child.wait(30)
        took = time.monotonic() - start
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, child.stderr.read()
    assert took < port_module.CLOSE_LINGER_MS / 1000 + 2, f"exit took {took:.2f} s"  # not forever


A_PUBLISHER = """
    import select, sys, zmq, zio
    with zio.Node("mouth") as node:
        port = node.port("say", zmq.PUB)
        port.bind()
        node.online()
        print("up", flush=True)
        sys.stdin.readline()
        for i in range(50):  # every 20 ms, for 1 s at most: until the subscriber says it heard one
            port.send(zio.Message(form="TEXT", label="hello"))
            if select.select([sys.stdin], [], [], 0.02)[0]:
                break
"""

SUBSCRIBER_BY_NAME = """
    import subprocess, sys, time
    publisher = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
    import zmq, zio                      # (while the publisher starts: their imports overlap)
    assert publisher.stdout.readline().strip() == "up"
    node = zio.Node("ears")
    port = node.port("hear", zmq.SUB)
    port.subscribe()
    port.connect("mouth", "say")
    node.online(timeout_ms=10000)
    assert port.connected
    time.sleep(0.3)                      # the subscription reaches the publisher
    publisher.stdin.write("go\\n")
    publisher.stdin.flush()
    assert port.recv(5000).label == "hello"
    publisher.stdin.write("heard\\n")
    publisher.stdin.flush()
    publisher.wait()                     # it said goodbye
    deadline = time.monotonic() + 10
    while port.connected and time.monotonic() < deadline:
        port.recv(100)                   # applies the departure: disconnects its address
    assert not port.connected, port.connected
    print("exiting", flush=True)
    node.close()
"""


def test_a_sub_that_dropped_a_departed_publisher_exits_at_once(discovery):
    """As the chat: the publisher left and the port dropped its address (disconnect)."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SUBSCRIBER_BY_NAME),
                              textwrap.dedent(A_PUBLISHER)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "exiting", child.stderr.read()
        start = time.monotonic()
        child.wait(30)
        took = time.monotonic() - start
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, child.stderr.read()
    assert took < port_module.CLOSE_LINGER_MS / 1000 / 2, f"exit took {took:.2f} s"
