"""Field-grade live resolution: pools of same-named peers share the work, on both backends.

A burst sent right after ``online()`` is spread over every same-named peer; a peer that
appeared while the port sat idle takes its share of the next burst; nothing is lost.
"""
from __future__ import annotations

import logging
import threading
import time

import pytest
import zmq

import zio
from test_live import NodeProcess

pytestmark = [pytest.mark.needs_netns, pytest.mark.usefixtures("discovery")]


def _wait_for(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _collect(workers: list[NodeProcess], total: int, counts: list[list[str]]) -> None:
    """Read 'got' lines from every worker until ``total`` labels arrived (or 15 s passed)."""
    deadline = time.monotonic() + 15
    while sum(len(c) for c in counts) < total and time.monotonic() < deadline:
        for worker, got in zip(workers, counts):
            got.extend(worker.got())
        time.sleep(0.02)
    time.sleep(0.2)  # anything beyond the total (a duplicate) would show up now
    for worker, got in zip(workers, counts):
        got.extend(worker.got())


def test_pool_of_worker_processes_shares_bursts(discovery):
    """Issue 10 as measured: 3 worker processes, a burst of 300 right after online(), then
    a 4th worker joins while the client is idle, then a burst of 400."""
    workers = NodeProcess.many(3, "pull", "worker", "in")
    try:
        with zio.Node("client") as client:
            out = client.port("out", zmq.PUSH)
            out.connect("worker", "in")
            client.online()
            for i in range(300):
                out.send(zio.Message(form="JOB ", label=f"a{i}"))
            counts: list[list[str]] = [[] for _ in workers]
            _collect(workers, 300, counts)
            labels = [label for got in counts for label in got]
            assert sorted(labels) == sorted(f"a{i}" for i in range(300)), "lost or duplicated jobs"
            shares = [len(got) for got in counts]
            assert min(shares) >= 60, f"burst after online() not shared by the pool: {shares}"

            workers.append(NodeProcess("pull", "worker", "in"))
            _wait_for(lambda: len(client.peer.matchnick("worker")) == 4, what="the 4th worker")
            time.sleep(0.5)  # the client sits idle: no send, no recv
            for i in range(400):
                out.send(zio.Message(form="JOB ", label=f"b{i}"))
            counts = [[] for _ in workers]
            _collect(workers, 400, counts)
            labels = [label for got in counts for label in got]
            assert sorted(labels) == sorted(f"b{i}" for i in range(400)), "lost or duplicated jobs"
            shares = [len(got) for got in counts]
            assert shares[3] >= 60, f"the worker that joined while the client was idle got {shares}"
    finally:
        for worker in workers:
            worker.proc.kill()
            worker.proc.wait()


def _shares(ports: list[zio.Port], total: int, timeout: float = 15.0) -> list[int]:
    """How many messages each port received: read every port until ``total`` arrived (bounded),
    then until 300 ms of quiet on all of them, so that a duplicate beyond the total shows up.
    (Draining one port after the other, 300 ms of quiet each, waited the quiet out per port.)"""
    counts = [0] * len(ports)
    deadline = time.monotonic() + timeout
    while sum(counts) < total and time.monotonic() < deadline:
        for i, port in enumerate(ports):
            while port.recv(0) is not None:
                counts[i] += 1
        time.sleep(0.005)
    quiet_until = time.monotonic() + 0.3
    while time.monotonic() < quiet_until:
        for i, port in enumerate(ports):
            while port.recv(0) is not None:
                counts[i] += 1
                quiet_until = time.monotonic() + 0.3
        time.sleep(0.005)
    return counts


@pytest.mark.parametrize(
    "client_type, server_type",
    [(zmq.DEALER, zmq.ROUTER), (zmq.CLIENT, zmq.SERVER)],
    ids=["DEALER", "CLIENT"],
)
def test_requesters_share_bursts_over_same_named_servers(client_type, server_type):
    """DEALER and CLIENT deal requests round-robin: every same-named server gets its share,
    right after online() and after one joined while the client sat idle."""
    servers = []
    try:
        for _ in range(3):
            node = zio.Node("svc")
            node.port("rep", server_type).bind()
            node.online()
            servers.append(node)
        with zio.Node("asker") as asker:
            ask = asker.port("ask", client_type)
            ask.connect("svc", "rep")
            asker.online()
            for i in range(300):
                ask.send(zio.Message(form="REQ ", seqno=i))
            shares = _shares([node.port("rep") for node in servers], 300)
            assert sum(shares) == 300 and min(shares) >= 60, shares

            node = zio.Node("svc")
            node.port("rep", server_type).bind()
            node.online()
            servers.append(node)
            _wait_for(lambda: len(asker.peer.matchnick("svc")) == 4, what="the 4th server")
            time.sleep(0.3)  # idle
            for i in range(400):
                ask.send(zio.Message(form="REQ ", seqno=i))
            shares = _shares([node.port("rep") for node in servers], 400)
            assert sum(shares) == 400 and shares[3] >= 60, shares
    finally:
        for node in servers:
            node.close()


class _Listening:
    """A subscriber node whose port receives in a thread, as a real subscriber sits in recv()."""

    def __init__(self, nick: str):
        self.node = zio.Node(nick)
        self.port = self.node.port("in", zmq.SUB)
        self.port.bind()
        self.port.subscribe("")
        self.node.online()
        self.seqnos: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self.port.recv(50)
            if msg is not None:
                self.seqnos.append(msg.seqno)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.node.close()


def test_publisher_reaches_a_subscriber_from_its_discovery_on():
    """A PUB that connects by name: a subscriber that appeared gets every message published
    after the publisher's peer table shows it, not only after a later send."""
    listeners = [_Listening("listener")]
    try:
        with zio.Node("talker") as talker:
            pub = talker.port("out", zmq.PUB)
            pub.connect("listener", "in")
            talker.online()
            pub.send(zio.Message(form="TICK", seqno=0))

            listeners.append(_Listening("listener"))
            talker.peer.waituntil(listeners[1].node.peer.uuid, 10000)
            for seqno in range(1, 51):
                pub.send(zio.Message(form="TICK", seqno=seqno))
            _wait_for(lambda: len(listeners[1].seqnos) >= 50, 5, "50 messages")
            time.sleep(0.1)
            assert listeners[1].seqnos == list(range(1, 51))
            assert listeners[0].seqnos == list(range(0, 51)), "the first subscriber missed messages"
    finally:
        for listener in listeners:
            listener.close()


def test_idle_port_follows_discovery_without_send_or_recv():
    """The connect to a newcomer is made while the port sits idle (no call into it)."""
    with zio.Node("watcher") as watcher:
        port = watcher.port("out", zmq.PUSH)
        port.connect("target", "in")
        watcher.online(timeout_ms=0)
        assert port.connected == []
        with zio.Node("target") as target:
            target.port("in", zmq.PULL).bind()
            target.online()
            watcher.peer.waituntil(target.peer.uuid, 10000)
            # no send() or recv() since: the discovery thread connected the idle port
            assert port.connected == [target.port("in").bound[0]]


# -- ZIO C++ adverts and unusable remote input -------------------------------------------------


def _fake_node(nick: str, port: str, socket: str, address: str) -> zio.Peer:
    """A peer advertising a port the way another implementation (or a broken node) would."""
    return zio.Peer(nick, **{f"zio.port.{port}.address": address, f"zio.port.{port}.socket": socket})


@pytest.mark.parametrize("separator", [" ", ",", ", "], ids=["space", "comma", "comma-space"])
def test_several_advertised_addresses_are_all_connected(separator):
    """ZIO C++ joins several binds with one space; zio reads spaces or commas."""
    pulls = [zio.Port("in", zmq.PULL) for _ in range(2)]
    for pull in pulls:
        pull.bind()
        pull.do_binds()
    addresses = [pull.bound[0] for pull in pulls]
    fake = _fake_node("cpp", "in", "PULL", separator.join(addresses))
    try:
        with zio.Node("client") as client:
            out = client.port("out", zmq.PUSH)
            out.connect("cpp", "in")
            client.online()
            assert sorted(out.connected) == sorted(addresses)
            for i in range(20):
                out.send(zio.Message(form="JOB ", seqno=i))
            assert _shares(pulls, 20) == [10, 10]
    finally:
        fake.stop()
        for pull in pulls:
            pull.close()


def test_port_bound_twice_advertises_space_joined_addresses():
    with zio.Node("twice") as node:
        port = node.port("out", zmq.PULL)
        port.bind()
        port.bind()
        node.online()
        advertised = node.peer.headers["zio.port.out.address"]
        assert advertised == " ".join(port.bound) and len(port.bound) == 2


def test_unusable_remote_addresses_are_logged_once_and_skipped(caplog):
    """Remote input never raises in the local program: bad addresses are warned about once,
    naming the node, and the usable ones are connected."""
    pull = zio.Port("in", zmq.PULL)
    pull.bind()
    pull.do_binds()
    bad = "garbage nope://x tcp://999.1.1.1:notaport"
    fake = _fake_node("mixed", "in", "PULL", f"{bad} {pull.bound[0]}")
    try:
        with caplog.at_level(logging.WARNING, logger="zio.port"):
            with zio.Node("client") as client:
                out = client.port("out", zmq.PUSH)
                out.connect("mixed", "in")
                client.online()
                assert out.connected == [pull.bound[0]]
                out.send(zio.Message(form="JOB "))
                assert pull.recv(2000) is not None
                for _ in range(3):  # more discovery changes: no second warning
                    out._dirty = True
                    out.send(zio.Message(form="JOB "))
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        for address in ("garbage", "nope://x", "tcp://999.1.1.1:notaport"):
            about = [w for w in warnings if address in w]
            assert len(about) == 1 and "'mixed'" in about[0], warnings
    finally:
        fake.stop()
        pull.close()


# -- errors that say why -------------------------------------------------------------------------


def test_timeout_names_the_missing_node(caplog):
    with caplog.at_level(logging.WARNING, logger="zio.port"):
        with zio.Node("lonely") as node:
            ask = node.port("ask", zmq.CLIENT)
            ask.connect("echo", "service")
            node.online(timeout_ms=300)
            with pytest.raises(zio.PortTimeout, match="no node named 'echo' was found"):
                ask.send(zio.Message(form="TEXT"), timeout_ms=200)
    assert any("'echo'" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_timeout_names_a_socket_type_that_cannot_talk(caplog):
    with zio.Node("echo") as server:
        server.port("service", zmq.SERVER).bind()
        server.online()
        with caplog.at_level(logging.WARNING, logger="zio.port"):
            with zio.Node("pusher") as node:
                out = node.port("out", zmq.PUSH)
                out.connect("echo", "service")
                node.online()
                with pytest.raises(zio.PortTimeout, match="is SERVER, which a PUSH port cannot talk to"):
                    out.send(zio.Message(form="TEXT"), timeout_ms=200)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("SERVER" in w and "echo" in w for w in warned), warned


def test_timeout_names_a_missing_port():
    with zio.Node("echo") as server:
        server.port("other", zmq.PULL).bind()
        server.online()
        with zio.Node("pusher") as node:
            out = node.port("out", zmq.PUSH)
            out.connect("echo", "service")
            node.online()
            with pytest.raises(zio.PortTimeout, match="node 'echo' has no port 'service'"):
                out.send(zio.Message(form="TEXT"), timeout_ms=200)

