"""The optional discovery backend "mdns": TXT layout, entering, leaving, liveness, bad records.

Every test here multicasts mDNS (224.0.0.251:5353), so the whole module needs the suite's
private network namespace. Nicknames carry a random suffix, so that peers left over by
another test are never mistaken for this test's. Measured figures are printed (``-s``);
asserted bounds are generous multiples of the targets.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
import uuid as uuidlib

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zio
from beacon_support import PEER  # the same event-printing peer program, backend from $ZIO_DISCOVERY
from zio_plugins.mdns import txt

zeroconf = pytest.importorskip("zeroconf")
from zio_plugins.mdns.backend import SERVICE_TYPE, MdnsDiscovery, instance_label  # noqa: E402
from zio_plugins.mdns.oneshot import OneShotQuery  # noqa: E402

pytestmark = pytest.mark.needs_netns

NODE_PROC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_proc.py")
MDNS_ENV = {"ZIO_DISCOVERY": "mdns", "ZIO_INTERFACE": "localhost"}


# ------------------------------------------------------------------------------------------
# helpers


def nick(base: str) -> str:
    """A nickname of this test's own."""
    return f"{base}-{uuidlib.uuid4().hex[:6]}"


@pytest.fixture
def make_peer(monkeypatch):
    """``make_peer(nick, **headers)``: an mdns Peer on loopback, stopped at teardown."""
    monkeypatch.setenv("ZIO_INTERFACE", "localhost")
    made: list[zio.Peer] = []

    def factory(name, **headers):
        peer = zio.Peer(name, discovery="mdns", **headers)
        made.append(peer)
        return peer

    yield factory
    for peer in made:
        peer.stop()


def wait_event(peer: zio.Peer, kind: str, uuid: uuidlib.UUID, timeout: float) -> zio.PeerEvent | None:
    """The next event of ``kind`` about ``uuid`` within ``timeout`` seconds, skipping others."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        event = peer.poll(left * 1000)
        if event is not None and event.kind == kind and event.peer.uuid == uuid:
            return event




def spawn_peer(name: str, env: dict[str, str], headers: dict | None = None, popen=subprocess.Popen):
    """Start the PEER program (``popen`` may be a ``Host.popen``)."""
    full_env = dict(os.environ)
    full_env.update(env)
    argv = [sys.executable, "-u", "-c", PEER, name, json.dumps(headers or {})]
    return popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=full_env)


class Lines:
    """JSON lines from a subprocess's stdout, read with a deadline."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.buf = b""
        self.seen: list[dict] = []

    def wait_for(self, timeout: float, **match) -> dict:
        """Skip lines until one has every ``key=value`` of ``match``; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                obj = json.loads(line)
                self.seen.append(obj)
                if all(obj.get(k) == v for k, v in match.items()):
                    return obj
            left = deadline - time.monotonic()
            chunk = os.read(fd, 65536) if left > 0 and select.select([fd], [], [], left)[0] else b""
            if not chunk:
                raise AssertionError(f"no line matching {match} within {timeout} s; seen {self.seen}")
            self.buf += chunk


def finish(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Close stdin (the program stops) and wait; kill it if it does not."""
    try:
        proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("peer subprocess did not stop")


# ------------------------------------------------------------------------------------------
# TXT layout (no network, but cheap enough to live here)

printable_keys = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="="),
    min_size=1, max_size=40,
)
utf8_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)


def zeroconf_round_trip(strings: list[bytes]) -> dict[bytes, bytes | None]:
    """Pack the strings with zeroconf's ServiceInfo and unpack them from the raw TXT bytes."""
    packed = zeroconf.ServiceInfo(SERVICE_TYPE, f"x.{SERVICE_TYPE}", properties=txt.as_properties(strings))
    unpacked = zeroconf.ServiceInfo(SERVICE_TYPE, f"x.{SERVICE_TYPE}", properties=packed.text)
    return unpacked.properties


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nickname=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=100),
    headers=st.dictionaries(printable_keys, utf8_text, max_size=5),
)
def test_txt_round_trips_any_headers(nickname, headers):
    record = txt.PeerRecord(uuidlib.uuid4(), nickname, "tcp://127.0.0.1:5555", headers)
    strings = txt.encode(record)
    assert all(len(s) <= 255 for s in strings)
    assert sum(1 + len(s) for s in strings) <= txt.MAX_TXT_BYTES
    assert txt.decode(zeroconf_round_trip(strings)) == record


@settings(max_examples=50, deadline=None)
@given(key=printable_keys, value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=300, max_size=1500))
def test_txt_splits_long_values_into_continuations(key, value):
    record = txt.PeerRecord(uuidlib.uuid4(), "n", "tcp://127.0.0.1:1", {key: value, key + "*0": "x"})
    strings = txt.encode(record)
    assert any(b"*0=" in s for s in strings)
    assert txt.decode(zeroconf_round_trip(strings)) == record


def test_txt_layout_is_as_documented():
    u = uuidlib.UUID(int=1)
    strings = txt.encode(txt.PeerRecord(u, "n", "tcp://127.0.0.1:9", {"a*b%": "v", "long": "é" * 200}))
    assert strings[:4] == [b"zio=1", b"uuid=" + u.hex.encode(), b"nick=n", b"live=tcp://127.0.0.1:9"]
    assert strings[4] == b"h:a%2Ab%25=v"
    assert strings[5].startswith(b"h:long*0=") and len(strings[5]) == 255
    assert strings[6].startswith(b"h:long*1=")
    assert len(strings) == 7


@pytest.mark.parametrize("key", ["", "a=b", "tab\there", "caf\u00e9", "new\nline"])
def test_txt_rejects_bad_keys(key):
    with pytest.raises(zio.ConfigurationError):
        txt.encode(txt.PeerRecord(uuidlib.uuid4(), "n", "tcp://127.0.0.1:1", {key: "v"}))


def test_txt_rejects_unencodable_values():
    with pytest.raises(zio.ConfigurationError, match="'k'"):
        txt.encode(txt.PeerRecord(uuidlib.uuid4(), "n", "tcp://127.0.0.1:1", {"k": "\ud800"}))


def test_txt_too_big_names_the_biggest_header():
    headers = {"small": "x" * 100, "huge": "y" * 7000, "medium": "z" * 1500}
    with pytest.raises(zio.ConfigurationError, match="'huge'"):
        txt.encode(txt.PeerRecord(uuidlib.uuid4(), "n", "tcp://127.0.0.1:1", headers))
    with pytest.raises(zio.ConfigurationError, match="'huge'"):
        zio.Peer("too-big", discovery="mdns", huge="y" * 9000)


@pytest.mark.parametrize(
    "properties, why",
    [
        ({b"zio": b"1", b"nick": b"n", b"live": b"tcp://127.0.0.1:1"}, "uuid"),
        ({b"zio": b"2", b"uuid": b"0" * 32, b"nick": b"n", b"live": b"tcp://127.0.0.1:1"}, "version"),
        ({b"zio": b"1", b"uuid": b"zz", b"nick": b"n", b"live": b"tcp://127.0.0.1:1"}, "UUID"),
        ({b"zio": b"1", b"uuid": b"0" * 32, b"nick": b"\xff\xfe", b"live": b"tcp://127.0.0.1:1"}, "UTF-8"),
        ({b"zio": b"1", b"uuid": b"0" * 32, b"nick": b"n", b"live": b"tcp://127.0.0.1:1", b"h:k": None}, "no '='"),
        ({b"zio": b"1", b"uuid": b"0" * 32, b"nick*0": b"a", b"nick*2": b"b", b"live": b"tcp://x:1"}, "0..n-1"),
        ({b"zio": b"1", b"uuid": b"0" * 32, b"nick": b"a", b"nick*0": b"b", b"live": b"tcp://x:1"}, "both"),
        ({b"zio": b"1", b"uuid": b"0" * 32, b"nick": b"a", b"live": b"ipc://x"}, "tcp"),
        ({b"zio": b"1", b"uuid": b"0" * 32, b"nick": b"a", b"live": b"tcp://x:1", b"h:%zz": b""}, "escape"),
        ({b"zio": b"1", b"uuid": b"0" * 32, b"nick": b"a", b"live": b"tcp://x:1", b"\xc3\xa9": b""}, "ASCII"),
    ],
)
def test_txt_decoder_refuses_malformed_records(properties, why):
    with pytest.raises(zio.MalformedError, match=why):
        txt.decode(properties)


def test_instance_names_are_dns_labels():
    u = uuidlib.uuid4()
    for name in ["server", "Ünïcødé node", "x" * 200, "---", "a.b_c d"]:
        label = instance_label(name, u)
        assert len(label.encode()) <= 63
        assert label.endswith(u.hex[:12])
        assert all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in label), label
    assert instance_label("server", u) == f"server-{u.hex[:12]}"


# ------------------------------------------------------------------------------------------
# the plugin without zeroconf


def test_missing_zeroconf_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "zeroconf", None)  # "import zeroconf" now fails
    monkeypatch.delitem(sys.modules, "zio_plugins.mdns.backend", raising=False)
    assert "mdns" in zio.available_backends()
    with pytest.raises(zio.BackendError, match=r"pip install 'zio\[mdns\]'"):
        zio.make_backend("mdns")


def test_plugin_module_imports_without_zeroconf():
    code = (
        "import sys; sys.modules['zeroconf'] = None\n"
        "import zio, zio_plugins.mdns\n"
        "assert 'mdns' in zio.available_backends()\n"
        "try:\n    zio.Peer('x', discovery='mdns')\n"
        "except zio.BackendError as err:\n    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "pip install 'zio[mdns]'" in out.stdout


# ------------------------------------------------------------------------------------------
# peers on loopback


def test_interface_is_pinned(make_peer, monkeypatch):
    peer = make_peer(nick("pinned"))
    backend = peer.backend
    assert isinstance(backend, MdnsDiscovery)
    assert backend.bind_host == "127.0.0.1"
    senders = [t.transport.get_extra_info("sockname") for t in backend.zeroconf.engine.senders]
    assert senders == [("127.0.0.1", 5353)]
    assert backend.describe()["liveness"].startswith("tcp://127.0.0.1:")
    monkeypatch.setenv("ZIO_INTERFACE", "no-such-interface0")
    with pytest.raises(zio.ConfigurationError):
        zio.make_backend("mdns")


def test_two_peers_see_each_other_with_headers(make_peer):
    a_nick, b_nick = nick("alpha"), nick("beta")
    a = make_peer(a_nick, colour="blue", n=1)
    t0 = time.monotonic()
    b = make_peer(b_nick, **{"zio.port.p.address": "tcp://127.0.0.1:1", "unicode": "h\u00e9 \u2603"})
    started = time.monotonic() - t0
    assert a.waitfor(b_nick, 5000)
    a_sees_b = time.monotonic() - t0
    assert b.waitfor(a_nick, 5000)
    b_sees_a = time.monotonic() - t0
    print(f"\nmdns enter: start() {1000 * started:.1f} ms, newcomer seen by others in "
          f"{1000 * a_sees_b:.1f} ms, newcomer sees others in {1000 * b_sees_a:.1f} ms")
    assert a.peers[b.uuid].headers == {"zio.port.p.address": "tcp://127.0.0.1:1", "unicode": "h\u00e9 \u2603"}
    assert a.peers[b.uuid].nick == b_nick
    assert b.peers[a.uuid] == zio.PeerInfo(a.uuid, a_nick, {"colour": "blue", "n": "1"})
    assert a_sees_b < 1.3 and b_sees_a < 1.3


def test_headers_that_need_splitting_round_trip(make_peer):
    big = {
        "zio.port.data.address": ",".join(f"tcp://127.0.0.1:{p}" for p in range(20000, 20100)),
        "label": "\u00e9\u2603\U0001F600" * 200,
        "k" * 200: "v" * 100,
        "a*0": "star",
        "a": "=" * 600,
    }
    first_nick, second_nick = nick("big"), nick("late")
    first = make_peer(first_nick, **big)  # seen by the second through a query and its answer
    second = make_peer(second_nick, **big)  # seen by the first through its announcement
    assert first.waitfor(second_nick, 5000) and second.waitfor(first_nick, 5000)
    assert second.peers[first.uuid].headers == big
    assert first.peers[second.uuid].headers == big


def test_record_at_the_size_limit_arrives(make_peer):
    """The largest TXT record allowed still fits one mDNS packet, both announced and queried."""
    long_nick, other_nick = nick("n" * 50), nick("m" * 50)  # the longest instance labels: 63 bytes

    def record_size(n):
        headers = {"big": "x" * n}
        return sum(1 + len(s) for s in txt.encode(txt.PeerRecord(uuidlib.uuid4(), long_nick, "tcp://127.0.0.1:65535", headers)))

    n = 8000
    while True:
        try:
            record_size(n + 1)
        except zio.ConfigurationError:
            break
        n += 1
    assert txt.MAX_TXT_BYTES - 5 <= record_size(n) <= txt.MAX_TXT_BYTES
    first = make_peer(long_nick, big="x" * n)
    second = make_peer(other_nick, big="y" * n)
    assert first.waitfor(other_nick, 5000) and second.waitfor(long_nick, 5000)
    assert second.peers[first.uuid].headers["big"] == "x" * n
    assert first.peers[second.uuid].headers["big"] == "y" * n


def test_graceful_stop_is_seen_at_once(make_peer):
    a = make_peer(nick("stays"))
    b_nick = nick("leaves")
    b = make_peer(b_nick)
    assert a.waitfor(b_nick, 5000)
    a.drain()
    t0 = time.monotonic()
    b.stop()
    stop_took = time.monotonic() - t0
    event = wait_event(a, zio.EXIT, b.uuid, 3.0)
    seen = time.monotonic() - t0
    print(f"\nmdns graceful leave: stop() {1000 * stop_took:.1f} ms, exit seen after {1000 * seen:.1f} ms")
    assert event is not None and b.uuid not in a.peers
    assert seen < 1.0
    assert wait_event(a, zio.ENTER, b.uuid, 0.5) is None  # no late announcement brings it back


def test_killed_peer_leaves_within_a_second(make_peer):
    watcher = make_peer(nick("watcher"))
    victim_nick = nick("victim")
    proc = spawn_peer(victim_nick, {"ZIO_DISCOVERY": "mdns", "ZIO_INTERFACE": "localhost"})
    try:
        ready = Lines(proc).wait_for(20, event="ready")
        victim = uuidlib.UUID(ready["uuid"])
        assert watcher.waituntil(victim, 5000)
        proc.kill()
        t0 = time.monotonic()
        proc.wait(5)
        event = wait_event(watcher, zio.EXIT, victim, 5.0)
        gone = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    print(f"\nmdns killed peer gone after {1000 * gone:.1f} ms")
    assert event is not None and victim not in watcher.peers
    assert gone < 3.0


def test_goodbye_at_interpreter_exit():
    """A program that never calls stop() still sends its mDNS goodbye when it exits."""
    events: list[tuple[str, str, float]] = []

    class Recorder:
        def add_service(self, zc, type_, name):
            events.append(("add", name, time.monotonic()))

        def update_service(self, zc, type_, name):
            pass

        def remove_service(self, zc, type_, name):
            events.append(("remove", name, time.monotonic()))

    zc = zeroconf.Zeroconf(interfaces=["127.0.0.1"], ip_version=zeroconf.IPVersion.V4Only)
    browser = zeroconf.ServiceBrowser(zc, SERVICE_TYPE, Recorder())
    code = "import sys, zio; p = zio.Peer(sys.argv[1], discovery='mdns'); print(p.uuid, flush=True); sys.stdin.read()"
    env = dict(os.environ, ZIO_INTERFACE="localhost")
    proc = subprocess.Popen([sys.executable, "-c", code, nick("atexit")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env)
    try:
        uuid = uuidlib.UUID(proc.stdout.readline().decode().strip())
        name = f"{instance_label('x', uuid).split('-', 1)[1]}"
        deadline = time.monotonic() + 5
        while not any(kind == "add" and name in n for kind, n, _ in events) and time.monotonic() < deadline:
            time.sleep(0.01)
        asked = time.monotonic()
        proc.stdin.close()  # the program ends normally, without stop()
        assert proc.wait(10) == 0
        exited = time.monotonic()
        while not any(kind == "remove" and name in n for kind, n, _ in events) and time.monotonic() < exited + 3:
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        browser.cancel()
        zc.close()
    removed = [t for kind, n, t in events if kind == "remove" and name in n]
    assert removed, events
    print(f"\nmdns goodbye at exit seen {1000 * (removed[0] - asked):.1f} ms after the program was asked to end")


def test_stop_is_idempotent_and_quick(make_peer):
    peer = make_peer(nick("twice"))
    other_nick = nick("other")
    other = make_peer(other_nick)
    assert peer.waitfor(other_nick, 5000)
    t0 = time.monotonic()
    peer.stop()
    peer.stop()
    peer.backend.stop()
    assert time.monotonic() - t0 < 2.0
    assert peer.stopped
    # a backend that never started stops too, and a started one cannot serve a second Peer
    zio.make_backend("mdns").stop()
    with pytest.raises(zio.ConfigurationError):
        zio.Peer("again", discovery=other.backend)


def test_stop_from_a_peer_listener_does_not_hang(make_peer):
    a = make_peer(nick("listener"))
    stopped = threading.Event()

    def on_event(event):
        a.stop()  # runs in the backend's own thread
        stopped.set()

    a.add_listener(on_event)
    make_peer(nick("trigger"))
    assert stopped.wait(5)
    assert a.stopped


def test_node_round_trip_by_name(monkeypatch):
    monkeypatch.setenv("ZIO_INTERFACE", "localhost")
    server_nick = nick("server")
    with zio.Node(server_nick, origin=42, discovery="mdns") as server, zio.Node(nick("client"), discovery="mdns") as client:
        sport = server.port("sport", zmq.SERVER)
        sport.bind()
        server.online()
        cport = client.port("cport", zmq.CLIENT)
        cport.connect(server_nick, "sport")
        t0 = time.monotonic()
        client.online(timeout_ms=5000)
        cport.send(zio.Message(form="TEXT", label_object={"greeting": "hello"}))
        msg = sport.recv(5000)
        assert msg is not None and msg.label_object == {"greeting": "hello"}
        sport.send(msg)
        reply = cport.recv(5000)
        took = time.monotonic() - t0
        assert reply is not None and reply.origin == 42
        assert server.peer.backend.name == "mdns"
    print(f"\nmdns node round trip by name: {1000 * took:.1f} ms from online()")


# ------------------------------------------------------------------------------------------
# newcomers: peers already running, in other processes, are found at once


def test_newcomer_finds_a_running_peer(make_peer):
    """A new Peer sees a peer that was already running in another process (bound generous:
    the latency figure is benchmarks/discovery.py's "running peer visible to a newcomer")."""
    running_nick = nick("running")
    proc = spawn_peer(running_nick, MDNS_ENV)
    try:
        running = uuidlib.UUID(Lines(proc).wait_for(20, event="ready")["uuid"])
        time.sleep(0.3)  # its announcements are over: only an answer to our query can tell us
        t0 = time.monotonic()
        newcomer = make_peer(nick("newcomer"))
        assert newcomer.waituntil(running, 3000)
        took = time.monotonic() - t0
        assert newcomer.peers[running].nick == running_nick
    finally:
        finish(proc)
    print(f"\nmdns newcomer sees a running peer after {1000 * took:.1f} ms")


def test_one_shot_query_is_answered_by_unicast_each_time(make_peer):
    """The one-shot query from an ephemeral port gets the running peers' records, and a second
    one sent right after (another newcomer) is answered too: zeroconf responders ignore a
    packet identical to one of the last 800 ms unless it asks a QU question, so the one-shot
    question carries the QU bit."""
    running = make_peer(nick("answers"), colour="green")
    found: list[queue.SimpleQueue] = [queue.SimpleQueue(), queue.SimpleQueue()]
    queries = [
        OneShotQuery("127.0.0.1", SERVICE_TYPE, lambda name, info, q=q: q.put((name, info)), window=2.0)
        for q in found
    ]
    try:
        for query in queries:
            query.start()
        for q in found:
            name, info = q.get(timeout=3)
            record = txt.decode(info.properties)
            assert record.uuid == running.uuid and record.headers == {"colour": "green"}
            assert name == f"{instance_label(running.nickname, running.uuid)}.{SERVICE_TYPE}"
    finally:
        for query in queries:
            query.close()
    assert all(query.zeroconf is None for query in queries)


def test_listener_resolves_concurrently_and_drops_overtaken_results(make_peer):
    """A service whose records are not cached is resolved on zeroconf's loop: the browser's
    callbacks return at once, several resolve side by side, and a result that a removal of
    the same name overtook is dropped."""
    from zio_plugins.mdns.backend import _Listener

    peers = [make_peer(nick("resolved")) for _ in range(3)]
    names = [f"{instance_label(p.nickname, p.uuid)}.{SERVICE_TYPE}" for p in peers]
    accepted: queue.SimpleQueue = queue.SimpleQueue()
    lost: list[str] = []

    class Backend:  # what _Listener uses of MdnsDiscovery
        service_name = None
        stopping = False
        engine = type("Engine", (), {"lose": lambda self, name: lost.append(name)})()

        def accept(self, name, info):
            accepted.put((name, txt.decode(info.properties).uuid))

    listener = _Listener(Backend())
    zc = zeroconf.Zeroconf(interfaces=["127.0.0.1"], ip_version=zeroconf.IPVersion.V4Only)
    try:
        assert not zeroconf.ServiceInfo(SERVICE_TYPE, names[0]).load_from_cache(zc)  # nothing cached
        gate = threading.Event()
        zc.loop.call_soon_threadsafe(gate.wait, 5)  # zeroconf's loop waits: no resolve ends early
        t0 = time.monotonic()
        listener.add_service(zc, SERVICE_TYPE, names[0])
        listener.add_service(zc, SERVICE_TYPE, names[1])
        listener.add_service(zc, SERVICE_TYPE, names[2])
        listener.remove_service(zc, SERVICE_TYPE, names[2])  # its resolve is out of date now
        assert time.monotonic() - t0 < 0.1  # nothing waited for the network
        gate.set()
        got = {accepted.get(timeout=3) for _ in range(2)}
        assert got == {(names[0], peers[0].uuid), (names[1], peers[1].uuid)}
        time.sleep(0.5)
        assert accepted.empty() and lost == [names[2]]
    finally:
        zc.close()


def test_same_named_peers_are_all_known_to_a_newcomer(monkeypatch):
    """Three processes run Node("worker") with a bound PULL port; a client that connects its
    PUSH port to ("worker", "in") knows all three, not just the first."""
    for key, value in MDNS_ENV.items():
        monkeypatch.setenv(key, value)
    worker_nick = nick("worker")
    workers = [
        subprocess.Popen([sys.executable, NODE_PROC, "pull", worker_nick, "in"], stdout=subprocess.PIPE,
                         text=True, env=dict(os.environ))
        for _ in range(3)
    ]
    try:
        for proc in workers:
            line = proc.stdout.readline()
            assert line.startswith("online "), line
        t0 = time.monotonic()
        with zio.Node(nick("client")) as client:
            push = client.port("out", zmq.PUSH)
            push.connect(worker_nick, "in")
            client.online(timeout_ms=5000)
            deadline = t0 + 3.0
            while len(client.peer.matchnick(worker_nick)) < 3 and time.monotonic() < deadline:
                time.sleep(0.005)
            took = time.monotonic() - t0
            known = client.peer.matchnick(worker_nick)
            assert len(known) == 3, f"the client knows {len(known)} of 3 workers after {took:.1f} s"
            addresses = {client.peer.peers[u].headers["zio.port.in.address"] for u in known}
            assert len(addresses) == 3
    finally:
        for proc in workers:
            proc.kill()
            proc.wait()
    print(f"\nmdns: all 3 same-named workers known to a new client {1000 * took:.1f} ms after Node()")


# ------------------------------------------------------------------------------------------
# records that are not (good) zio peers


def register(zc, info, update=False):
    """Register (or update) a hand-made service without probing and without waiting for announcements."""
    coro = zc.async_update_service(info) if update else zc.async_register_service(info, cooperating_responders=True)
    asyncio.run_coroutine_threadsafe(coro, zc.loop).result(5)


class FakeLiveness:
    """A liveness ROUTER that answers like a zio peer with ``uuid``, in a thread of its own."""

    def __init__(self, uuid: uuidlib.UUID):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind("tcp://127.0.0.1:*")
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.uuid = uuid
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            if self.sock.poll(50):
                rid, body = self.sock.recv_multipart()
                if body == b"?":
                    self.sock.send_multipart([rid, self.uuid.bytes])

    def close(self):
        self.done.set()
        self.thread.join(5)
        self.sock.close(0)
        self.ctx.term()


def test_malformed_records_are_dropped_and_logged(make_peer, caplog):
    caplog.set_level(logging.WARNING, logger="zio_plugins.mdns")
    observer = make_peer(nick("observer"))
    fake_uuid = uuidlib.uuid4()
    fake = FakeLiveness(fake_uuid)
    good = txt.encode_properties(txt.PeerRecord(fake_uuid, "fake", fake.endpoint, {"k": "v"}))
    u = uuidlib.uuid4().hex.encode()
    bad = {
        "nouuid": {b"zio": b"1", b"nick": b"x", b"live": fake.endpoint.encode()},
        "badutf8": {b"zio": b"1", b"uuid": u, b"nick": b"\xff\xfe\xfd", b"live": fake.endpoint.encode()},
        "garbage": b"\x40\x01\x02\x03garbage",
        "empty": b"",
        "farhost": {b"zio": b"1", b"uuid": u, b"nick": b"far", b"live": b"tcp://10.99.0.1:5"},
        "splitgap": {b"zio": b"1", b"uuid": u, b"nick*0": b"a", b"nick*3": b"b", b"live": fake.endpoint.encode()},
    }
    zc = zeroconf.Zeroconf(interfaces=["127.0.0.1"], ip_version=zeroconf.IPVersion.V4Only)

    def info(label, properties):
        return zeroconf.ServiceInfo(
            SERVICE_TYPE, f"{label}.{SERVICE_TYPE}", port=5, properties=properties,
            server=f"{label}.local.", parsed_addresses=["127.0.0.1"],
        )

    fake_label = nick("fakepeer")
    try:
        infos = [info(nick(label), props) for label, props in bad.items()]
        for i in infos:
            register(zc, i)
        register(zc, info(fake_label, good))
        # a good record after the bad ones: when it is in, the bad ones were handled
        entered = wait_event(observer, zio.ENTER, fake_uuid, 5.0)
        assert entered is not None and entered.peer.headers == {"k": "v"}
        assert set(observer.peers) == {fake_uuid}
        dropped = [r.getMessage() for r in caplog.records if "dropped the record" in r.getMessage()]
        for label in bad:
            assert any(label in message for message in dropped), (label, dropped)
        # the good peer turns bad: it leaves; good again: it is back
        register(zc, info(fake_label, {b"zio": b"1", b"uuid": fake_uuid.hex.encode(), b"nick": b"\xff"}), update=True)
        assert wait_event(observer, zio.EXIT, fake_uuid, 5.0) is not None
        assert observer.peers == {}
        # (new content: zeroconf only reports a TXT it has not cached in the last seconds)
        good_again = txt.encode_properties(txt.PeerRecord(fake_uuid, "fake", fake.endpoint, {"k": "v2"}))
        register(zc, info(fake_label, good_again), update=True)
        entered = wait_event(observer, zio.ENTER, fake_uuid, 5.0)
        assert entered is not None and entered.peer.headers == {"k": "v2"}
        assert set(observer.peers) == {fake_uuid}
        # a record whose liveness socket answers with another UUID never enters
        impostor = uuidlib.uuid4()
        register(zc, info(nick("impostor"), txt.encode_properties(txt.PeerRecord(impostor, "imp", fake.endpoint, {}))))
        assert wait_event(observer, zio.ENTER, impostor, 1.0) is None
        assert any("not UUID" in r.getMessage() for r in caplog.records)
    finally:
        zc.close()
        fake.close()
    assert wait_event(observer, zio.EXIT, fake_uuid, 5.0) is not None


# ------------------------------------------------------------------------------------------
# a pretend LAN


@pytest.mark.needs_lan
def test_cut_host_leaves_within_five_seconds(make_lan):
    lan = make_lan(2, subnet="10.78.0")
    env = {"ZIO_DISCOVERY": "mdns", "ZIO_INTERFACE": "eth0"}
    watcher_nick, victim_nick = nick("lanwatch"), nick("lanvictim")
    watcher = spawn_peer(watcher_nick, env, popen=lan.hosts[0].popen)
    victim = spawn_peer(victim_nick, env, {"where": "host1"}, popen=lan.hosts[1].popen)
    try:
        watch_lines, victim_lines = Lines(watcher), Lines(victim)
        ready = victim_lines.wait_for(20, event="ready")
        assert ready["describe"]["address"] == lan.hosts[1].address
        watch_lines.wait_for(20, event="ready")
        entered = watch_lines.wait_for(10, event="enter", nick=victim_nick)
        assert entered["headers"] == {"where": "host1"}
        victim_lines.wait_for(10, event="enter", nick=watcher_nick)
        lan.hosts[1].cut()
        t0 = time.monotonic()
        watch_lines.wait_for(10, event="exit", nick=victim_nick)
        gone = time.monotonic() - t0
        print(f"\nmdns cut host gone after {1000 * gone:.1f} ms")
        assert gone < 8.0
        lan.hosts[1].restore()  # the watcher keeps redialling: the host comes back by itself
        t0 = time.monotonic()
        watch_lines.wait_for(15, event="enter", nick=victim_nick)
        print(f"mdns restored host back after {1000 * (time.monotonic() - t0):.1f} ms")
    finally:
        for proc in (watcher, victim):
            proc.kill()
            proc.wait()
