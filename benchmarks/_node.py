"""Discovery nodes in a process of their own, driven by the benchmark through stdin/stdout.

``python -m benchmarks._node MODE KIND PORT [ARGS...]``; KIND is ``beacon``, ``mdns``,
``etcd`` (zio backends), ``pyre`` (zeromq-pyre) or ``zeroconf`` (raw python-zeroconf: a
service of type ``_zbench._tcp.local.`` and a browser). PORT is the UDP beacon port (ignored
by the mDNS kinds, which use 5353); for ``etcd`` it names the scenario's key prefix
``/zbench/PORT/``, and the etcd to use comes from ``ZIO_ETCD_ENDPOINTS`` (set by the
benchmark: ``benchmarks/etcd_server.py``). One JSON object per line on stdout, stamped with
``time.monotonic()`` (one clock for every process of the machine, namespaces or not).

Modes:

``observer NICK``
    one node; prints ``enter``/``exit`` events (with the other peer's nick) until stdin
    closes.
``subject NICK``
    prints ``ready``; then on each stdin line ``start`` makes a fresh node (new UUID) and
    prints ``started`` with ``t0`` taken just before; on ``stop`` stops it and prints
    ``stopped`` with ``t0`` taken just before; EOF ends the process. Prints the
    ``enter``/``exit`` events of its current node too.
``swarm PREFIX LOCAL TOTAL``
    imports what its nodes need, then prints ``ready`` with its RSS; on ``start`` makes LOCAL nodes named PREFIX-i and
    prints ``converged`` once each of them sees TOTAL-1 others (``t0`` = start); on
    ``stop`` (or EOF) stops them all and prints ``stopped``.

This program never isolates itself: the benchmark runs it inside its private network
namespace (or inside a ``netns.Lan`` host), which children inherit.
"""
from __future__ import annotations

import json
import os
import select
import socket
import sys
import threading
import time

_print_lock = threading.Lock()


def say(**fields) -> None:
    line = json.dumps(fields)
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class StdinLines:
    """Lines from stdin without threads: ``fd`` to poll, ``get()`` for the complete ones."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno()
        self.buf = b""
        self.eof = False

    def read(self) -> list[str]:
        chunk = os.read(self.fd, 4096)
        if not chunk:
            self.eof = True
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        return [line.decode().strip() for line in lines if line.strip()]

    def wait(self, timeout: float | None = None) -> list[str]:
        if select.select([self.fd], [], [], timeout)[0]:
            return self.read()
        return []


# -------------------------------------------------------------------------------------------
# node kinds: each is (start(nick, on_event) -> handle, stop(handle), sockets(handle) for
# kinds whose events must be pumped by the main thread, pump(handle, on_event))


def zio_backend(kind: str, port: int):
    import zio

    if kind == "beacon":
        return zio.make_backend("beacon", port=port)
    if kind == "etcd":  # endpoints: $ZIO_ETCD_ENDPOINTS; a prefix per scenario
        return zio.make_backend("etcd", prefix=f"/zbench/{port}/")
    try:
        return zio.make_backend(kind)
    except zio.BackendError:
        import importlib

        module = importlib.import_module(f"zio_plugins.{kind}")
        return module.zio_discovery_backends()[kind]()


class ZioNode:
    pumped = False

    def __init__(self, kind: str, port: int, nick: str, on_event) -> None:
        import zio

        self.peer = zio.Peer(nick, discovery=zio_backend(kind, port))
        self.uuid = str(self.peer.uuid)

        def listener(event) -> None:  # the UUID object: swarms hash it, observers print str()
            if event.kind in (zio.ENTER, zio.EXIT):
                on_event(event.kind, event.peer.uuid, event.peer.nick, time.monotonic())

        self.peer.add_listener(listener)
        # events that arrived before the listener was added
        for info in self.peer.peers.values():
            on_event("enter", info.uuid, info.nick, time.monotonic())

    def stop(self) -> None:
        self.peer.stop()


class PyreNode:
    pumped = True

    def __init__(self, kind: str, port: int, nick: str, on_event) -> None:
        import pyre

        self.node = pyre.Pyre(nick)
        self.node.set_port(str(port).encode())
        self.node.start()
        self.uuid = str(self.node.uuid())
        self.socket = self.node.socket()
        self.on_event = on_event

    def pump(self) -> None:
        from pyre.pyre_event import PyreEvent

        import zmq

        while self.socket.poll(0, zmq.POLLIN):
            event = PyreEvent(self.node)
            if event.type in ("ENTER", "EXIT"):
                self.on_event(event.type.lower(), str(event.peer_uuid), event.peer_name, time.monotonic())

    def stop(self) -> None:
        self.node.stop()


ZEROCONF_TYPE = "_zbench._tcp.local."


class ZeroconfNode:
    """Raw python-zeroconf: register one service, browse the type (the mdns anchor)."""

    pumped = False

    def __init__(self, kind: str, port: int, nick: str, on_event) -> None:
        import uuid

        from zeroconf import ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

        address = os.environ.get("ZBENCH_ADDRESS", "127.0.0.1")
        self.zc = Zeroconf(interfaces=[address])
        self.name = f"{nick}-{uuid.uuid4().hex[:8]}.{ZEROCONF_TYPE}"
        self.uuid = self.name
        self.info = ServiceInfo(ZEROCONF_TYPE, self.name, addresses=[socket.inet_aton(address)],
                                port=9, properties={"nick": nick})

        def handler(zeroconf, service_type, name, state_change) -> None:
            if name == self.name:
                return
            peer_nick = name.split(".")[0].rsplit("-", 1)[0]
            if state_change is ServiceStateChange.Added:
                on_event("enter", name, peer_nick, time.monotonic())
            elif state_change is ServiceStateChange.Removed:
                on_event("exit", name, peer_nick, time.monotonic())

        self.browser = ServiceBrowser(self.zc, ZEROCONF_TYPE, handlers=[handler])
        self.zc.register_service(self.info)

    def stop(self) -> None:
        self.zc.unregister_service(self.info)
        self.browser.cancel()
        self.zc.close()


def make_node(kind: str, port: int, nick: str, on_event):
    if kind == "pyre":
        return PyreNode(kind, port, nick, on_event)
    if kind == "zeroconf":
        return ZeroconfNode(kind, port, nick, on_event)
    return ZioNode(kind, port, nick, on_event)


def _pump_loop(nodes_fn, stdin: StdinLines, handle_line, tick: float = 0.02) -> None:
    """Run until EOF: pump pyre sockets, hand stdin lines to ``handle_line``."""
    import zmq

    while not stdin.eof:
        nodes = [n for n in nodes_fn() if n.pumped]
        if nodes:
            poller = zmq.Poller()
            poller.register(stdin.fd, zmq.POLLIN)
            for n in nodes:
                poller.register(n.socket, zmq.POLLIN)
            ready = dict(poller.poll(tick * 1000))
            for n in nodes:
                n.pump()
            lines = stdin.read() if stdin.fd in ready else []
        else:
            lines = stdin.wait(tick)
        for line in lines:
            if handle_line(line) is False:
                return


# -------------------------------------------------------------------------------------------
# modes


def observer(kind: str, port: int, nick: str) -> None:
    def on_event(what, uuid, peer_nick, t):
        say(event=what, uuid=str(uuid), nick=peer_nick, t=t)

    node = make_node(kind, port, nick, on_event)
    say(event="ready", t=time.monotonic(), uuid=node.uuid)
    stdin = StdinLines()
    _pump_loop(lambda: [node], stdin, lambda line: None)
    node.stop()


def subject(kind: str, port: int, nick: str) -> None:
    current: list = []
    stdin = StdinLines()

    def report(what, uuid, peer_nick, t):  # what the current node sees (newcomer latency)
        say(event=what, uuid=str(uuid), nick=peer_nick, t=t)

    def handle(line: str):
        if line == "start":
            t0 = time.monotonic()
            node = make_node(kind, port, nick, report)
            current.append(node)
            say(event="started", t0=t0, t=time.monotonic(), pid=os.getpid(), uuid=node.uuid)
        elif line == "stop" and current:
            t0 = time.monotonic()
            current.pop().stop()
            say(event="stopped", t0=t0, t=time.monotonic())

    say(event="ready", t=time.monotonic(), pid=os.getpid())
    _pump_loop(lambda: current, stdin, handle)
    for node in current:
        node.stop()


def preload(kind: str) -> None:
    """Import the libraries a node of ``kind`` uses, before ``ready``.

    The convergence rows start their clock, and take their RSS baseline, once every swarm
    process is ready: "interpreter and libraries already imported" (convergence.py), so
    that their figures are about nodes, not about importing pyzmq, zio or etcd's gRPC
    client (about 0.25 CPU seconds and 20 MB per process for grpc and protobuf).
    """
    import zmq  # noqa: F401  (the pump loop; zio and pyre)

    if kind == "pyre":
        import pyre  # noqa: F401
        return
    import zio  # noqa: F401
    import zio.plugins

    zio.plugins.available_backends()  # loads the plugins' entry points (40 ms, once)
    if kind == "etcd":
        import grpc  # noqa: F401  (what the etcd factory imports on its first call)
        import pyetcd  # noqa: F401

        import zio_plugins.etcd.backend  # noqa: F401
    elif kind == "mdns":
        import zio_plugins.mdns  # noqa: F401


def swarm(kind: str, port: int, prefix: str, local: int, total: int) -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    lock = threading.Lock()  # held per event: the cheapest lock
    seen: list[set] = [set() for _ in range(local)]
    nodes: list = []
    # how many local nodes see all TOTAL-1 others: kept up to date per event (O(1)), since
    # 100 nodes of a process hear ~100 000 events on the way to 1000 nodes
    state = {"t0": None, "done": False, "complete": 0}

    def check() -> None:
        if not state["done"] and len(nodes) == local and state["complete"] == local:
            state["done"] = True
            say(event="converged", t0=state["t0"], t=time.monotonic(), rss_kb=rss_kb())

    def on_event_for(i):
        def on_event(what, uuid, peer_nick, t):
            with lock:
                was = len(seen[i]) >= total - 1
                if what == "enter":
                    seen[i].add(uuid)
                else:
                    seen[i].discard(uuid)
                now = len(seen[i]) >= total - 1
                if now != was:
                    state["complete"] += 1 if now else -1
                    check()
        return on_event

    def handle(line: str):
        if line == "start":
            state["t0"] = time.monotonic()
            for i in range(local):
                node = make_node(kind, port, f"{prefix}-{i}", on_event_for(i))
                with lock:
                    nodes.append(node)
            with lock:
                say(event="started", t0=state["t0"], t=time.monotonic(), rss_kb=rss_kb())
                check()
        elif line == "stop":
            return False

    preload(kind)
    say(event="ready", t=time.monotonic(), rss_kb=rss_kb(), pid=os.getpid())
    stdin = StdinLines()
    _pump_loop(lambda: list(nodes), stdin, handle)
    t0 = time.monotonic()
    for node in nodes:
        try:
            node.stop()
        except Exception as err:  # report, do not hang
            say(event="error", what=repr(err))
    say(event="stopped", t0=t0, t=time.monotonic())


def _refuse_host_network(program: str = "benchmarks._node") -> None:
    """Discovery must never reach a real network. The benchmark, once in its private network
    namespace, tells each child which namespace it must find itself in (``ZIO_BENCH_NETNS``:
    the benchmark's own, or a ``netns.Lan`` host's); anything else is refused."""
    expected = os.environ.get("ZIO_BENCH_NETNS")
    if not expected:
        raise SystemExit(f"{program} only runs as a child of an isolated `python -m benchmarks`")
    st = os.stat("/proc/self/ns/net")
    if f"{st.st_dev}:{st.st_ino}" != expected:
        raise SystemExit(
            f"{program} refuses to run: network namespace {st.st_dev}:{st.st_ino} is not "
            f"the isolated one the benchmark expected ({expected})"
        )


def main(argv: list[str]) -> None:
    _refuse_host_network()
    mode, kind, port = argv[0], argv[1], int(argv[2])
    if mode == "observer":
        observer(kind, port, argv[3])
    elif mode == "subject":
        subject(kind, port, argv[3])
    elif mode == "swarm":
        swarm(kind, port, argv[3], int(argv[4]), int(argv[5]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    sys.stdout.flush()
    os._exit(0)  # do not wait for stray non-daemon threads of third-party libraries


if __name__ == "__main__":
    main(sys.argv[1:])
