"""A worker of a pool, or the client that feeds the pool, driven by the benchmark (``pool``).

``python -m benchmarks._pool_node MODE KIND PORT``; KIND is ``beacon`` or ``mdns``, PORT
the UDP beacon port (ignored by mdns). One JSON object per line on stdout, as in
``benchmarks._node``, whose isolation check this program runs first: it refuses to start
outside the network namespace the benchmark put it in.

Modes:

``worker``
    prints ``ready``; on ``start NICK`` runs a fresh ``zio.Node(NICK)`` with a PULL port
    ``in`` (bound, online) and prints ``online``; counts every message it receives, by
    burst (the message's label) and sequence number; on ``count TAG`` prints ``count``
    with the sequence numbers of burst TAG received so far; on ``mates`` prints ``mates``
    with how many other nodes of its nickname its node sees; on ``stop`` closes the node
    and prints ``stopped``; EOF closes the node and ends.
``client``
    prints ``ready``; on ``online WORKERS N TAG`` closes its previous node if any, runs a
    fresh ``zio.Node("client")`` whose PUSH port ``out`` does ``connect(WORKERS, "in")``,
    calls ``online()``, prints ``online``, and at once (N > 0) sends burst TAG of N
    messages and prints ``sent``; on ``burst N TAG`` sends such a burst and prints
    ``sent``; on ``stop`` closes its node and prints ``stopped``. Between commands it does
    nothing at all (no send, no recv): it sits idle.
"""
from __future__ import annotations

import os
import select
import sys
import time

from ._node import StdinLines, _refuse_host_network, say, zio_backend

#: A send that no worker takes for this long ends the burst (reported as unsent).
SEND_TIMEOUT_MS = 5000


def worker(kind: str, port: int) -> None:
    import zmq

    import zio

    stdin = StdinLines()
    node = None
    pull = None
    received: dict[str, list[int]] = {}

    def handle(line: str) -> None:
        nonlocal node, pull
        cmd, *args = line.split()
        if cmd == "start" and node is None:
            t0 = time.monotonic()
            node = zio.Node(args[0], discovery=zio_backend(kind, port))
            pull = node.port("in", zmq.PULL)
            pull.bind()
            node.online()
            say(event="online", t0=t0, t=time.monotonic(), uuid=str(node.peer.uuid), address=pull.bound[0])
        elif cmd == "count":
            say(event="count", tag=args[0], seqnos=sorted(received.get(args[0], [])))
        elif cmd == "stop":
            if node is not None:
                node.close()
            node = pull = None
            say(event="stopped", t=time.monotonic())
        elif cmd == "mates":
            mates = 0
            if node is not None:
                mates = sum(1 for info in node.peer.peers.values() if info.nick == node.nick)
            say(event="mates", n=mates)

    say(event="ready", t=time.monotonic(), pid=os.getpid())
    while not stdin.eof:
        if pull is not None:
            msg = pull.recv(10)
            while msg is not None:  # drain what is there before looking at stdin again
                received.setdefault(msg.label, []).append(msg.seqno)
                msg = pull.recv(0)
            ready = select.select([stdin.fd], [], [], 0)[0]
            lines = stdin.read() if ready else []
        else:
            lines = stdin.wait(0.05)
        for line in lines:
            handle(line)
    if node is not None:
        node.close()


def client(kind: str, port: int) -> None:
    import zmq

    import zio

    stdin = StdinLines()
    state: dict = {"node": None, "push": None, "workers": ""}

    def burst(n: int, tag: str) -> None:
        node, push = state["node"], state["push"]
        # what the client's discovery knew when the burst began (diagnosis: discovery or port?)
        seen = sum(1 for info in node.peer.peers.values() if info.nick == state["workers"])
        connected = len(push.connected)
        t0 = time.monotonic()
        sent = 0
        try:
            for i in range(n):
                push.send(zio.Message(form="DATA", label=tag, seqno=i), timeout_ms=SEND_TIMEOUT_MS)
                sent += 1
        except zio.PortTimeout:
            pass
        say(event="sent", tag=tag, sent=sent, unsent=n - sent, t0=t0, t=time.monotonic(),
            seen=seen, connected=connected)

    def handle(line: str) -> None:
        cmd, *args = line.split()
        if cmd == "online":
            if state["node"] is not None:
                state["node"].close()
            workers, n, tag = args[0], int(args[1]), args[2]
            node = zio.Node("client", discovery=zio_backend(kind, port))
            push = node.port("out", zmq.PUSH)
            push.connect(workers, "in")
            state.update(node=node, push=push, workers=workers)
            t0 = time.monotonic()
            node.online()
            t1 = time.monotonic()
            if n > 0:
                burst(n, tag)  # right after online(): nothing in between
            say(event="online", t0=t0, t=t1, uuid=str(node.peer.uuid))
        elif cmd == "burst":
            burst(int(args[0]), args[1])
        elif cmd == "stop":
            if state["node"] is not None:
                state["node"].close()
            state.update(node=None, push=None)
            say(event="stopped", t=time.monotonic())

    say(event="ready", t=time.monotonic(), pid=os.getpid())
    while not stdin.eof:
        for line in stdin.wait(None):
            handle(line)
    if state["node"] is not None:
        state["node"].close()


def main(argv: list[str]) -> None:
    _refuse_host_network("benchmarks._pool_node")
    mode, kind, port = argv[0], argv[1], int(argv[2])
    if mode == "worker":
        worker(kind, port)
    elif mode == "client":
        client(kind, port)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    sys.stdout.flush()
    os._exit(0)  # do not wait for stray non-daemon threads of third-party libraries


if __name__ == "__main__":
    main(sys.argv[1:])
