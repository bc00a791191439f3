"""The default discovery backend "beacon" on loopback: ZRE protocol, pyre interop, liveness, robustness.

Every test here discovers, so the whole module needs the suite's private network namespace.
Each test uses its own beacon UDP port (the ``beacon_port`` fixture), so that peers left over
by another test are never seen. Measured figures are printed (run with ``-s``); the asserted
bounds are deliberately generous, several times the targets, so that they never flake on a
loaded machine.

Some tests send on the peer's own channels to prove that earlier input was handled: a
"marker" beacon for a made-up UUID whose mailbox is a raw ROUTER of the test makes the engine
connect there and say HELLO. Beacons share one UDP socket and mail from one DEALER shares one
TCP connection, so when that HELLO (or the ENTER of a marker HELLO) arrives, everything sent
before it was processed.
"""
from __future__ import annotations

import gc
import itertools
import json
import logging
import socket
import struct
import threading
import time
import uuid as uuidlib
import warnings

import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

import zio
from zio_plugins.beacon import engine as engine_module
from beacon_support import (ECHO_CLIENT, ECHO_SERVER, PEER, PUBLISHER, PYRE, SUBSCRIBER, Lines, finish, python, spawn,
                            wait_until)
from zio_plugins.beacon import wire

pytestmark = pytest.mark.needs_netns

GROUP = "225.25.25.25"
PING, PING_OK = wire.PING, wire.PING_OK
_ports = itertools.count(47110)


# ------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def beacon_port(monkeypatch):
    """A beacon UDP port of this test's own; also the default of peers and subprocesses."""
    port = next(_ports)
    monkeypatch.setenv("ZIO_BEACON_PORT", str(port))
    monkeypatch.setenv("ZIO_INTERFACE", "localhost")
    return port


@pytest.fixture
def make_peer(beacon_port):
    """``make_peer(nick, timing=None, share=False, **headers)``: a zio Peer on loopback, stopped
    at teardown. Not shared by default: these tests are about what two peers say to each other
    over ZRE (UDP and TCP), as two processes would; shared engines meet in-process
    (tests/test_beacon_scale.py)."""
    made: list[zio.Peer] = []

    def factory(nick, timing=None, share=False, **headers):
        backend = zio.make_backend("beacon", interface="localhost", port=beacon_port, share=share, **(timing or {}))
        peer = zio.Peer(nick, discovery=backend, **headers)
        made.append(peer)
        return peer

    yield factory
    for peer in made:
        peer.stop()


def wait_event(peer, kind, uuid=None, nick=None, timeout=5.0, others=None):
    """Poll ``peer`` until an event of ``kind`` for ``uuid``/``nick``; return it and when it came.

    Other events are appended to ``others`` (when given). Fails after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        event = peer.poll(max(0.0, left) * 1000.0)
        if event is None:
            raise AssertionError(f"{peer.nickname}: no {kind} of {uuid or nick} within {timeout} s")
        now = time.monotonic()
        if event.kind == kind and uuid in (None, event.peer.uuid) and nick in (None, event.peer.nick):
            return event, now
        if others is not None:
            others.append(event)




class Beacons:
    """A third-party UDP socket that sends hand-built datagrams to the loopback beacon group."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)

    def send(self, data, target=GROUP):
        self.sock.sendto(data, (target, self.port))

    def beacon(self, uuid, port):
        self.send(wire.Beacon(uuid, port).encode())

    def close(self):
        self.sock.close()


@pytest.fixture
def beacons(beacon_port):
    sender = Beacons(beacon_port)
    yield sender
    sender.close()


class Mailbox:
    """A raw ZRE mailbox (ROUTER) of a made-up peer, to see what a zio peer sends it."""

    def __init__(self, ctx):
        self.uuid = uuidlib.uuid4()
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{self.port}"

    def recv(self, timeout=5.0):
        """The next message: (sender uuid, decoded ZRE message); fails after ``timeout`` s."""
        if not self.sock.poll(timeout * 1000):
            raise AssertionError(f"mailbox {self.endpoint}: nothing within {timeout} s")
        frames = self.sock.recv_multipart()
        return wire.uuid_from_routing_id(frames[0]), wire.decode_message(frames[1:])

    def close(self):
        self.sock.close(0)


class Dealer:
    """A raw DEALER talking to a zio peer's mailbox as the made-up peer ``uuid``."""

    def __init__(self, ctx, endpoint, uuid=None):
        self.uuid = uuid or uuidlib.uuid4()
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTING_ID, wire.routing_id_for(self.uuid))
        self.sock.connect(endpoint)

    def send(self, *frames):
        self.sock.send_multipart(list(frames))

    def send_msg(self, msg):
        self.sock.send_multipart(wire.encode_message(msg))

    def close(self):
        self.sock.close(0)


@pytest.fixture
def raw():
    """A zmq context for raw sockets; every socket made from it is closed at teardown."""
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def sync_udp(peer, beacons, ctx):
    """Return once ``peer`` has handled every datagram sent before (see the module docstring)."""
    box = Mailbox(ctx)
    try:
        beacons.beacon(box.uuid, box.port)
        deadline = time.monotonic() + 5.0
        while True:  # every peer on the port says HELLO to the marker: wait for this one's
            sender, hello = box.recv(timeout=max(0.0, deadline - time.monotonic()))
            if sender == peer.uuid:
                assert isinstance(hello, wire.Hello)
                break
    finally:
        box.close()
    return box.uuid


def hello_frame(name="fuzz", endpoint="tcp://127.0.0.1:1", sequence=1, headers=None, groups=()):
    return wire.encode_message(wire.Hello(sequence, endpoint, groups, 0, name, headers or {}))[0]


def ready_remotes(peer):
    """UUIDs of the remotes the engine considers ready (said HELLO)."""
    return {u for u, r in dict(peer.backend.engine.remotes).items() if r.ready}


# ------------------------------------------------------------------------------------------
# 1. the protocol on loopback


def test_two_peers_find_each_other_with_headers(make_peer):
    a = make_peer("alpha", color="red", size=3)
    t0 = time.monotonic()
    b = make_peer("beta", **{"zio.port.out.address": "tcp://127.0.0.1:5555"})
    enter_b, t_b = wait_event(a, zio.ENTER, b.uuid)
    enter_a, t_a = wait_event(b, zio.ENTER, a.uuid)
    print(f"\n[beacon] new peer visible: {(t_b - t0) * 1000:.1f} ms (to the old one), "
          f"{(t_a - t0) * 1000:.1f} ms (the old one to it); target <= 10 ms")
    assert enter_b.peer == zio.PeerInfo(b.uuid, "beta", {"zio.port.out.address": "tcp://127.0.0.1:5555"})
    assert enter_a.peer == zio.PeerInfo(a.uuid, "alpha", {"color": "red", "size": "3"})
    assert a.peers == {b.uuid: enter_b.peer} and b.peers == {a.uuid: enter_a.peer}
    assert a.matchnick("beta") == [b.uuid]
    facts = a.backend.describe()
    assert facts["backend"] == "beacon" and facts["interface"] == "lo"
    assert facts["beacon_target"] == f"{GROUP}:{a.backend.port}"
    assert facts["mailbox"].startswith("tcp://127.0.0.1:")
    assert t_b - t0 < 3.0 and t_a - t0 < 3.0  # the target is 10 ms: this only catches a broken first beacon


def test_unicode_names_and_headers_round_trip(make_peer):
    a = make_peer("ångström", **{"clé": "välue ✓", "empty": ""})
    b = make_peer("日本語")
    event, _ = wait_event(b, zio.ENTER, a.uuid)
    assert event.peer == zio.PeerInfo(a.uuid, "ångström", {"clé": "välue ✓", "empty": ""})
    assert wait_event(a, zio.ENTER, b.uuid)[0].peer.nick == "日本語"


def test_names_and_headers_that_do_not_fit_fail_at_start(beacon_port):
    before = set(threading.enumerate())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(zio.ConfigurationError, match="name"):
            zio.Peer("n" * 256)
        with pytest.raises(zio.ConfigurationError, match="k{20}"):
            zio.Peer("fine", **{"k" * 256: "v"})
        gc.collect()
    # nothing was left open or running: no socket closed only by the garbage collector
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("zio-beacon-")]


def test_beacon_without_a_mailbox_gives_no_enter(make_peer, beacons, raw):
    peer = make_peer("watcher")
    # a beacon for a peer whose "mailbox" port is closed ...
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    ghost = uuidlib.uuid4()
    for _ in range(3):
        beacons.beacon(ghost, dead_port)
    # ... and one whose mailbox listens, receives our HELLO, and never answers
    mute = Mailbox(raw)
    beacons.beacon(mute.uuid, mute.port)
    sender, hello = mute.recv()
    # the HELLO the zio peer sent is a correct one
    assert sender == peer.uuid
    assert isinstance(hello, wire.Hello) and hello.sequence == 1
    assert hello.name == "watcher" and hello.endpoint == peer.backend.engine.endpoint
    sync_udp(peer, beacons, raw)
    time.sleep(0.2)  # a late ENTER would have had time to show
    entered = [e.peer.uuid for e in peer.drain() if e.kind == zio.ENTER]
    assert ghost not in entered and mute.uuid not in entered
    assert peer.peers == {}
    mute.close()


def test_port_zero_beacon_makes_a_known_peer_leave_at_once(make_peer, beacons):
    short = {"interval": 0.2, "evasive": 0.4, "expired": 0.8}  # b comes back at its next beacon
    a = make_peer("stays", timing=short)
    b = make_peer("spoofed", timing=short)
    wait_event(a, zio.ENTER, b.uuid)
    wait_event(b, zio.ENTER, a.uuid)
    # a third party says "b is leaving" while b lives: a trusts the beacon at once
    t0 = time.monotonic()
    beacons.beacon(b.uuid, 0)
    _, t1 = wait_event(a, zio.EXIT, b.uuid, timeout=3.0)
    print(f"\n[beacon] forged port-0 beacon honoured in {(t1 - t0) * 1000:.1f} ms")
    assert t1 - t0 < 1.0
    # b's next beacon brings it back (within one beacon interval, here 0.2 s)
    _, t2 = wait_event(a, zio.ENTER, b.uuid, timeout=5.0)
    print(f"[beacon] and back after {(t2 - t1):.2f} s (next beacon)")
    assert a.matchnick("spoofed") == [b.uuid]


def test_graceful_stop_is_seen_at_once(make_peer):
    a = make_peer("stays")
    b = make_peer("goes")
    wait_event(a, zio.ENTER, b.uuid)
    t0 = time.monotonic()
    b.stop()
    event, t1 = wait_event(a, zio.EXIT, b.uuid, timeout=3.0)
    print(f"\n[beacon] graceful leave seen in {(t1 - t0) * 1000:.1f} ms (stop() included)")
    assert event.peer.nick == "goes"
    assert t1 - t0 < 1.0  # "well under a second": typically a few ms
    assert a.peers == {}


def test_a_peer_that_moves_leaves_and_is_met_at_its_new_mailbox(make_peer, beacons, raw):
    peer = make_peer("target")
    old, new = Mailbox(raw), Mailbox(raw)
    mover = old.uuid
    beacons.beacon(mover, old.port)
    assert old.recv()[0] == peer.uuid  # greeted at the old address
    first = Dealer(raw, peer.backend.engine.endpoint, uuid=mover)
    first.send_msg(wire.Hello(1, old.endpoint, (), 0, "mover", {}))
    wait_event(peer, zio.ENTER, mover)
    # the same UUID now beacons another mailbox port while the old one lives: ignored (issue 15)
    beacons.beacon(mover, new.port)
    sync_udp(peer, beacons, raw)
    assert mover in peer.peers and peer.backend.engine.remotes[mover].endpoint == old.endpoint
    # a restart elsewhere: the old mailbox closes (the peer leaves), the new one beacons
    old.close()
    wait_event(peer, zio.EXIT, mover, timeout=3.0)
    beacons.beacon(mover, new.port)
    sender, hello = new.recv()
    assert sender == peer.uuid and isinstance(hello, wire.Hello) and hello.sequence == 1
    first.close()
    time.sleep(0.2)  # a restart takes longer than our inbox needs to see the old connection end
    second = Dealer(raw, peer.backend.engine.endpoint, uuid=mover)
    second.send_msg(wire.Hello(1, new.endpoint, (), 0, "moved", {}))
    event, _ = wait_event(peer, zio.ENTER, mover)
    assert event.peer.nick == "moved" and peer.matchnick("moved") == [mover]


def test_a_peer_leaving_two_ways_at_once_does_not_break_the_engine(make_peer):
    """A stopping peer is news twice (its port-0 beacon, its closed connection): both in one poll."""
    a = make_peer("a")
    b = make_peer("b")
    wait_event(a, zio.ENTER, b.uuid)
    busy, go_on = threading.Event(), threading.Event()

    def hold(event):  # runs in a's engine thread: keeps it away from its sockets for a while
        if event.peer.nick == "c":
            busy.set()
            go_on.wait(5.0)

    a.add_listener(hold)
    make_peer("c")
    assert busy.wait(5.0)
    b.stop()  # says goodbye and closes its mailbox while a is not looking
    time.sleep(0.2)  # let a's I/O thread queue the disconnect for its monitor
    go_on.set()
    wait_event(a, zio.EXIT, b.uuid, timeout=3.0)
    d = make_peer("d")
    wait_event(a, zio.ENTER, d.uuid, timeout=5.0)
    assert a.backend.engine._thread.is_alive()


def test_own_beacons_are_dropped(make_peer, beacons, raw):
    fast = {"interval": 0.05, "evasive": 1.0, "expired": 2.0}
    peer = make_peer("alone", timing=fast)
    time.sleep(0.3)  # several of its own beacons went out and came back over loopback
    # a forged beacon with the peer's own UUID but another port must not make it meet itself
    decoy = Mailbox(raw)
    beacons.beacon(peer.uuid, decoy.port)
    sync_udp(peer, beacons, raw)
    assert peer.uuid not in peer.backend.engine.remotes
    assert not decoy.sock.poll(100)  # no HELLO went to the decoy
    assert peer.peers == {}
    assert all(e.peer.uuid != peer.uuid for e in peer.drain())
    decoy.close()


# ------------------------------------------------------------------------------------------
# 2. interop with pyre on loopback
#
# pyre runs in subprocesses: its zmq contexts are never terminated and, garbage-collected in
# this process, they could hang it (Context.__del__ -> term() with sockets pyre left open).


@pytest.fixture
def pyre_proc(beacon_port):
    """``pyre_proc(name, headers=None, mode="")``: a pyre node in a subprocess, and its Lines."""
    procs = []

    def factory(name, headers=None, mode=""):
        argv = python(PYRE, name, str(beacon_port), json.dumps(headers or {}), *([mode] if mode else []))
        proc = spawn(argv)
        procs.append(proc)
        lines = Lines(proc)
        lines.wait_for(10.0, event="ready")
        return proc, lines

    yield factory
    for proc in procs:
        try:
            finish(proc)
        finally:
            proc.kill()
            proc.wait()


def test_pyre_sees_a_zio_peer_enter_with_headers_and_exit(make_peer, pyre_proc):
    proc, lines = pyre_proc("pyre-watcher")
    headers = {"zio.port.out.address": "tcp://127.0.0.1:4567", "zio.port.out.socket": "PUB"}
    peer = make_peer("zio-node", **headers)
    enter = lines.wait_for(5.0, event="ENTER", nick="zio-node")
    assert enter["uuid"] == str(peer.uuid)
    assert enter["headers"] == headers  # pyre's ENTER event carries them as JSON
    assert enter["address"] == peer.backend.engine.endpoint
    wait_event(peer, zio.ENTER, nick="pyre-watcher")
    t0 = time.monotonic()
    peer.stop()
    leave = lines.wait_for(5.0, event="EXIT", nick="zio-node")
    print(f"\n[beacon] pyre saw the zio peer leave in {(leave['t'] - t0) * 1000:.1f} ms")
    assert leave["uuid"] == str(peer.uuid)


def test_zio_sees_a_pyre_node_with_headers_and_its_leaving(make_peer, pyre_proc):
    peer = make_peer("zio-watcher")
    proc, lines = pyre_proc("pyre-node", {"color": "blue", "answer": "42"})
    pyre_uuid = uuidlib.UUID(lines.seen[0]["uuid"])
    event, _ = wait_event(peer, zio.ENTER, nick="pyre-node")
    assert event.peer.uuid == pyre_uuid
    assert event.peer.headers == {"color": "blue", "answer": "42"}
    lines.wait_for(5.0, event="ENTER", nick="zio-watcher")
    proc.stdin.close()  # pyre stop()s: a port-0 beacon
    _, t1 = wait_event(peer, zio.EXIT, pyre_uuid, timeout=5.0)
    t0 = lines.wait_for(10.0, event="stopped")["t"]
    print(f"\n[beacon] zio saw pyre leave {(t1 - t0) * 1000:.1f} ms after pyre's stop() began")
    assert peer.peers == {}


def test_pings_both_ways_with_pyre(make_peer, pyre_proc):
    """pyre pings a peer it finds evasive and zio answers; zio pings pyre; the sequences agree."""
    proc, lines = pyre_proc("pyre-pinger", mode="ping-fast")
    # zio pings a peer silent for 0.4 s: pyre beacons each second, so it gets pinged too
    peer = make_peer("zio-pinged", timing={"interval": 0.2, "evasive": 0.4, "expired": 30.0})
    wait_event(peer, zio.ENTER, nick="pyre-pinger")
    counts = {PING: 0, PING_OK: 0}
    deadline = time.monotonic() + 8.0
    while counts[PING] < 2 or counts[PING_OK] < 2:
        line = lines.get(max(0.0, deadline - time.monotonic()))
        assert line is not None, f"pyre did not get two PING and two PING_OK from zio: {lines.seen}"
        assert line["event"] != "EXIT", "pyre dropped the zio peer (a sequence gap?)"
        if line["event"] == "zre" and line["sender"] == str(peer.uuid) and line["id"] in counts:
            counts[line["id"]] += 1
    print(f"\n[beacon] pyre got {counts[PING_OK]} PING_OK and {counts[PING]} PING from zio")
    # zio saw no gap in pyre's sequence either (pyre's pings and PING_OKs are numbered)
    assert [e for e in peer.drain() if e.kind == zio.EXIT] == []
    assert len(peer.matchnick("pyre-pinger")) == 1


# ------------------------------------------------------------------------------------------
# 3. liveness


def test_killed_peer_process_leaves_within_a_second(make_peer, beacon_port):
    observer = make_peer("observer")
    proc = spawn(python(PEER, "victim", '{"role": "victim"}'))
    try:
        lines = Lines(proc)
        victim = uuidlib.UUID(lines.wait_for(10.0, event="ready")["uuid"])
        event, _ = wait_event(observer, zio.ENTER, victim, timeout=5.0)
        assert event.peer.headers == {"role": "victim"}
        lines.wait_for(5.0, event=zio.ENTER, nick="observer")  # it is fully up
        t0 = time.monotonic()
        proc.kill()
        _, t1 = wait_event(observer, zio.EXIT, victim, timeout=10.0)
    finally:
        proc.kill()
        proc.wait()
    print(f"\n[beacon] SIGKILLed peer gone after {(t1 - t0) * 1000:.0f} ms; target <= 1 s")
    assert t1 - t0 < 3.0
    assert observer.peers == {}


def test_a_silent_peer_is_pinged_and_kept_while_it_answers(make_peer, raw):
    """No beacons, no traffic: pinged after ``evasive``, kept while it answers, gone ``expired`` after."""
    timing = {"interval": 0.1, "evasive": 0.3, "expired": 0.9}
    peer = make_peer("target", timing=timing)
    box = Mailbox(raw)
    dealer = Dealer(raw, peer.backend.engine.endpoint, uuid=box.uuid)
    dealer.send_msg(wire.Hello(1, box.endpoint, (), 0, "quiet", {}))
    wait_event(peer, zio.ENTER, box.uuid)
    assert isinstance(box.recv()[1], wire.Hello)
    sequence = 1
    t_enter = time.monotonic()
    pings = 0
    while time.monotonic() - t_enter < 2.0:  # more than twice ``expired``
        _, msg = box.recv(timeout=3.0)
        assert isinstance(msg, wire.Ping)
        pings += 1
        sequence += 1
        dealer.send_msg(wire.PingOk(sequence))
    assert box.uuid in peer.peers
    t_mute = time.monotonic()
    _, t_gone = wait_event(peer, zio.EXIT, box.uuid, timeout=5.0)
    print(f"\n[beacon] silent peer: {pings} pings answered in 2 s kept it; "
          f"gone {t_gone - t_mute:.2f} s after its last answer (expired = {timing['expired']} s)")
    assert pings >= 3
    box.close()
    dealer.close()


# ------------------------------------------------------------------------------------------
# 5. robustness


def test_udp_garbage_is_dropped(make_peer, beacons, raw):
    peer = make_peer("target")
    other = make_peer("friend")
    wait_event(peer, zio.ENTER, other.uuid)
    valid = wire.Beacon(uuidlib.uuid4(), 4242).encode()
    junk = [
        b"", b"ZRE", valid[:21], valid + b"\0", valid[:3] + b"\x02" + valid[4:],  # short, long, version 2
        b"ZRF" + valid[3:], b"\xff" * 22, b"ZRE\x01" + b"\0" * 50,  # bad signatures, 54 bytes
        b"ZRE\x03" + uuidlib.uuid4().bytes + struct.pack(">H", 4242) + b"K" * 32,  # a CURVE-like beacon
        b"ZRE\x01" + uuidlib.uuid4().bytes + struct.pack(">H", 4242) + b"K" * 32,  # 54 bytes, version 1
        valid * 100,  # larger than what the engine reads at once
    ]
    for data in junk:
        beacons.send(data)
        beacons.send(data, target="127.0.0.1")  # a unicast copy, for good measure

    @settings(max_examples=80, deadline=None, database=None)
    @given(st.one_of(st.binary(max_size=80), st.binary(min_size=18, max_size=30).map(lambda b: b"ZRE\x01" + b)))
    def fuzz(data):
        beacons.send(data)

    fuzz()
    sync_udp(peer, beacons, raw)
    assert peer.backend.engine._thread.is_alive()
    assert peer.peers == {other.uuid: zio.PeerInfo(other.uuid, "friend", {})}
    assert ready_remotes(peer) == {other.uuid}
    assert [e for e in peer.drain() if e.kind != zio.ENTER or e.peer.uuid != other.uuid] == []


def test_unanswered_beacons_are_forgotten_when_they_stop(make_peer, beacons, raw):
    short = {"interval": 0.2, "evasive": 0.4, "expired": 0.8}
    peer = make_peer("target", timing=short)
    ghosts = [uuidlib.uuid4() for _ in range(20)]
    for ghost in ghosts:
        beacons.beacon(ghost, 9)  # nobody listens on port 9 here: refused at once
    sync_udp(peer, beacons, raw)
    wait_until(lambda: not set(ghosts) & set(dict(peer.backend.engine.remotes)), timeout=5.0,
               what="ghosts whose mailbox refuses us forgotten")
    assert peer.peers == {} and peer.drain() == []


def test_mailbox_garbage_is_dropped(make_peer, raw):
    peer = make_peer("target")
    friend = make_peer("friend")
    wait_event(peer, zio.ENTER, friend.uuid)
    endpoint = peer.backend.engine.endpoint
    events = []
    boxes = []

    def flush(dealer):
        """Send a valid HELLO after the junk: its ENTER proves the junk before it was handled."""
        box = Mailbox(raw)
        boxes.append(box)
        dealer.send(hello_frame(name="flusher", endpoint=box.endpoint, sequence=1))
        wait_event(peer, zio.ENTER, dealer.uuid, timeout=5.0, others=events)
        return box

    # routing ids that are not 0x01 + UUID: no HELLO from them can count
    for rid in (b"\x02" + uuidlib.uuid4().bytes, b"\x01" + b"short", None):
        sock = raw.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if rid is not None:
            sock.setsockopt(zmq.ROUTING_ID, rid)
        sock.connect(endpoint)
        sock.send_multipart([hello_frame(endpoint="tcp://127.0.0.1:1")])
        sock.close(0)

    # truncated HELLOs, every length
    dealer = Dealer(raw, endpoint)
    full = hello_frame(name="truncated", headers={"k": "v" * 20}, groups=("g1", "g2"))
    for size in range(len(full)):
        dealer.send(full[:size])
    # huge counts and lengths that do not fit in the frame
    head = struct.pack(">HBBH", wire.SIGNATURE, wire.HELLO, 2, 1) + b"\x11tcp://127.0.0.1:1"
    for tail in (
        struct.pack(">I", 0xFFFFFFFF),  # groups count
        struct.pack(">II", 1, 0xFFFFFFFF) + b"g",  # a group's length
        struct.pack(">IB", 0, 0) + b"\x04name" + struct.pack(">I", 0x7FFFFFFF),  # headers count
        struct.pack(">IB", 0, 0) + b"\x04name" + struct.pack(">I", 1) + b"\x01k" + struct.pack(">I", 0xFFFFFFF0),
    ):
        dealer.send(head + tail)
    # bad UTF-8 in the name, a header key, a header value, the endpoint
    good = wire.encode_message(wire.Hello(1, "tcp://127.0.0.1:1", (), 0, "N", {"K": "V"}))[0]
    for old, new in ((b"\x01N", b"\x01\xff"), (b"\x01K", b"\x01\xc3"), (b"\x01V", b"\x01\xfe")):
        dealer.send(good.replace(old, new, 1))
    dealer.send(good.replace(b"tcp://127.0.0.1:1", b"tcp://127.0.0.1:\xff"))
    # an endpoint nobody can connect to, and messages that are not HELLO before any HELLO
    dealer.send(hello_frame(endpoint="not an endpoint"))
    for msg in (wire.Ping(1), wire.PingOk(2), wire.Join(3, "g", 1), wire.Whisper(4, (b"hi",)),
                wire.Shout(5, "g", (b"all",)), wire.Unknown(6, 9)):
        dealer.send_msg(msg)
    dealer.send(b"", b"")  # an empty frame1
    box = flush(dealer)
    assert peer.peers[dealer.uuid].nick == "flusher"
    # the endpoint of the HELLO is used: the zio peer says HELLO there
    sender, hello = box.recv()
    assert sender == peer.uuid and isinstance(hello, wire.Hello)

    # random frames, with and without a valid header
    header = st.sampled_from(range(0, 12)).map(lambda i: struct.pack(">HBBH", wire.SIGNATURE, i, 2, 1))
    frame1 = st.one_of(st.binary(max_size=64), st.tuples(header, st.binary(max_size=40)).map(b"".join))
    random_dealer = Dealer(raw, endpoint)

    @settings(max_examples=60, deadline=None, database=None)
    @given(st.tuples(frame1, st.lists(st.binary(max_size=16), max_size=3)))
    def fuzz(frames):
        first, rest = frames
        random_dealer.send(first, *rest)

    fuzz()
    flush(random_dealer)
    entered = {e.peer.uuid for e in events if e.kind == zio.ENTER}
    assert entered <= {random_dealer.uuid}  # only the random frames could possibly make a HELLO
    assert peer.backend.engine._thread.is_alive()
    for d in (dealer, random_dealer):
        d.close()
    # when their mailboxes close, the made-up peers are gone (the TCP connection is news)
    for b in boxes:
        b.close()
    wait_until(lambda: set(peer.peers) == {friend.uuid}, timeout=5.0, what="only real peers left")
    assert ready_remotes(peer) == {friend.uuid}
    # and a newcomer is still discovered
    newcomer = make_peer("newcomer")
    wait_event(peer, zio.ENTER, newcomer.uuid, timeout=5.0)


def test_sequence_gap_makes_the_peer_leave(make_peer, raw):
    peer = make_peer("target")
    box = Mailbox(raw)
    dealer = Dealer(raw, peer.backend.engine.endpoint, uuid=box.uuid)
    dealer.send_msg(wire.Hello(1, box.endpoint, ("group",), 1, "made-up", {"x": "y"}))
    event, _ = wait_event(peer, zio.ENTER, box.uuid)
    assert event.peer == zio.PeerInfo(box.uuid, "made-up", {"x": "y"})
    assert peer.backend.engine.groups_of(box.uuid) == {"group"}
    sender, hello = box.recv()
    assert (sender, hello.sequence) == (peer.uuid, 1)
    # a PING is answered, with the next sequence number of that direction
    dealer.send_msg(wire.Ping(2))
    sender, reply = box.recv()
    assert isinstance(reply, wire.PingOk) and reply.sequence == 2
    # an unknown message id (Zyre's ELECTION and friends) is skipped but counted
    dealer.send_msg(wire.Unknown(3, 9))
    dealer.send_msg(wire.Leave(4, "group", 2))
    dealer.send_msg(wire.Ping(5))
    _, reply = box.recv()
    assert isinstance(reply, wire.PingOk) and reply.sequence == 3
    assert peer.backend.engine.groups_of(box.uuid) == set()
    # sequence 6 never comes
    dealer.send_msg(wire.Ping(7))
    event, _ = wait_event(peer, zio.EXIT, box.uuid, timeout=3.0)
    assert event.peer.nick == "made-up"
    assert box.uuid not in peer.peers
    # and what it says next, short of a new HELLO, is ignored
    dealer.send_msg(wire.Ping(8))
    dealer.send_msg(wire.Hello(1, box.endpoint, (), 0, "made-up-again", {}))
    event, _ = wait_event(peer, zio.ENTER, box.uuid)
    assert event.peer.nick == "made-up-again"
    box.close()
    dealer.close()
    wait_event(peer, zio.EXIT, box.uuid, timeout=5.0)


@pytest.mark.parametrize("first", [65533, 65534], ids=["pyre-wraps-65534-to-0", "zyre-wraps-65535-to-0"])
def test_sequence_wrap_is_tolerated(make_peer, raw, first):
    peer = make_peer("target")
    box = Mailbox(raw)
    dealer = Dealer(raw, peer.backend.engine.endpoint, uuid=box.uuid)
    dealer.send_msg(wire.Hello(first, box.endpoint, (), 0, "wrapper", {}))
    wait_event(peer, zio.ENTER, box.uuid)
    box.recv()  # its HELLO
    for seq in (first + 1, 0, 1, 2):
        dealer.send_msg(wire.Ping(seq))
        _, reply = box.recv()
        assert isinstance(reply, wire.PingOk)
    assert box.uuid in peer.peers
    assert [e for e in peer.drain() if e.kind == zio.EXIT] == []
    box.close()
    dealer.close()


def test_a_peer_never_sees_itself_even_when_lured(make_peer, beacons, raw):
    """A forged beacon pointing at the peer's own mailbox, or a HELLO in its own name."""
    peer = make_peer("narcissus")
    engine = peer.backend.engine
    # a beacon of a made-up peer whose "mailbox" is the peer's own: it says HELLO to itself
    beacons.beacon(uuidlib.uuid4(), engine.mailbox_port)
    # a HELLO that claims to come from the peer itself
    impostor = Dealer(raw, engine.endpoint, uuid=peer.uuid)
    impostor.send(hello_frame(name="me-too", endpoint=engine.endpoint))
    sync_udp(peer, beacons, raw)
    flusher = Dealer(raw, engine.endpoint)
    box = Mailbox(raw)
    flusher.send(hello_frame(name="flusher", endpoint=box.endpoint))
    others = []
    wait_event(peer, zio.ENTER, flusher.uuid, others=others)
    time.sleep(0.2)  # a loop of HELLOs to itself, if any, shows by now
    others += peer.drain()
    assert [e for e in others if e.peer.uuid == peer.uuid] == []
    assert peer.uuid not in peer.peers and peer.uuid not in engine.remotes
    assert engine._thread.is_alive()
    box.close()


def test_repeated_hellos_restart_the_session_every_time(make_peer, raw):
    """A second HELLO means the peer restarted: it leaves and enters again, as often as it says so."""
    peer = make_peer("target")
    box = Mailbox(raw)
    dealer = Dealer(raw, peer.backend.engine.endpoint, uuid=box.uuid)
    rounds = 30
    for i in range(rounds):
        dealer.send_msg(wire.Hello(1, box.endpoint, (), 0, f"restarter{i}", {}))
    event, _ = wait_event(peer, zio.ENTER, box.uuid, nick=f"restarter{rounds - 1}", timeout=10.0)
    assert peer.backend.engine._thread.is_alive()
    assert peer.peers[box.uuid].nick == f"restarter{rounds - 1}"
    box.close()
    wait_event(peer, zio.EXIT, box.uuid, timeout=5.0)


def test_a_flood_of_made_up_peers_does_not_kill_discovery(make_peer, beacons, caplog, monkeypatch):
    """More made-up peers than the engine has sockets for: it must shrug, not die."""
    monkeypatch.setattr(engine_module, "MAX_SOCKETS", 1023)  # libzmq's default: reached quickly
    short = {"interval": 0.2, "evasive": 0.4, "expired": 0.8}
    peer = make_peer("target", timing=short)
    engine = peer.backend.engine
    # a mailbox that accepts connections and never speaks: made-up peers stay until silent
    mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    mute.bind(("127.0.0.1", 0))
    mute.listen(4096)
    mute_port = mute.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="zio_plugins.beacon.engine"):
        for i in range(800):
            beacons.beacon(uuidlib.uuid4(), mute_port)
            if i % 25 == 0:
                time.sleep(0.002)  # do not overflow the receive buffer of the UDP socket
        # beacon-only peers are capped (issue 15): newer ones wait (or evict the oldest once
        # those had their grace period to say HELLO)
        wait_until(lambda: engine.evicted + engine.refused > 0 and len(engine.remotes) == engine_module.MAX_PENDING,
                   timeout=5.0, what="the pending cap reached")
    print(f"\n[beacon] made-up peers held at the pending cap: {len(engine.remotes)}")
    assert len(engine.remotes) <= engine_module.MAX_PENDING
    assert engine._thread.is_alive()
    wait_until(lambda: len(engine.remotes) == 0, timeout=10.0, what="made-up peers forgotten")
    newcomer = make_peer("newcomer")
    wait_event(peer, zio.ENTER, newcomer.uuid, timeout=5.0)
    assert engine._thread.is_alive()
    mute.close()


def test_stop_never_hangs(make_peer):
    a = make_peer("a")
    b = make_peer("b")
    wait_event(a, zio.ENTER, b.uuid)
    # b too has met a (otherwise a stopping now may leave b nothing to report: a's HELLO
    # has not reached it, as seen once in CI)
    wait_event(b, zio.ENTER, a.uuid)
    thread = a.backend.engine._thread
    t0 = time.monotonic()
    a.stop()  # with a peer in its table
    took = time.monotonic() - t0
    a.stop()  # again: nothing happens
    a.backend.stop()
    print(f"\n[beacon] stop() with one peer known: {took * 1000:.1f} ms")
    assert took < 5.0
    assert not thread.is_alive()
    assert a.stopped and a.peers == {}  # the peers known leave with the stopped engine
    assert [e.peer.uuid for e in a.drain() if e.kind == zio.EXIT] == [b.uuid]
    assert a.poll(10) is None and a.waitfor("nobody", 10) == []
    wait_event(b, zio.EXIT, a.uuid, timeout=3.0)


def test_stop_from_a_listener_does_not_deadlock(make_peer):
    """An application may stop its peer from an event listener (the backend's own thread)."""
    a = make_peer("a")
    stopped = threading.Event()

    def on_event(event):
        a.stop()
        stopped.set()

    a.add_listener(on_event)
    b = make_peer("b")
    assert stopped.wait(5.0)
    wait_until(lambda: not a.backend.engine._thread.is_alive(), timeout=5.0, what="engine thread ended")
    # b may never hear a's HELLO (a stops at its first event, and its queued HELLO goes with
    # it: then b has nothing to report); if b reported a, it reports a's exit too
    entered = exited = False
    deadline = time.monotonic() + 5.0
    while not exited and time.monotonic() < deadline:
        event = b.poll(100)
        if event is not None and event.peer.uuid == a.uuid:
            entered = entered or event.kind == zio.ENTER
            exited = exited or (entered and event.kind == zio.EXIT)
    assert exited or not entered, "b reported a stopped peer and never its exit"
    assert a.uuid not in b.peers


def test_twenty_peers_in_one_process(make_peer):
    n = 20
    t0 = time.monotonic()
    peers = [make_peer(f"p{i:02d}", index=i) for i in range(n)]
    wait_until(lambda: all(len(p.peers) == n - 1 for p in peers), timeout=20.0, what="full mesh")
    converged = time.monotonic() - t0
    for p in peers:
        assert {info.nick for info in p.peers.values()} == {f"p{i:02d}" for i in range(n)} - {p.nickname}
        assert p.uuid not in p.peers
    threads = [p.backend.engine._thread for p in peers]
    t1 = time.monotonic()
    for p in peers:
        p.stop()
    stopping = time.monotonic() - t1
    print(f"\n[beacon] {n} peers in one process: full mesh in {converged:.2f} s, all stopped in {stopping:.2f} s")
    assert not any(t.is_alive() for t in threads)
    assert stopping < 20.0


# ------------------------------------------------------------------------------------------
# 6. nodes in separate processes, connected by name


def test_nodes_in_two_processes_resolve_each_other_by_name(beacon_port):
    server = spawn(python(ECHO_SERVER, "echo", "42"))
    client = spawn(python(ECHO_CLIENT, "echo", "3"))  # at once: its online() waits for "echo" by name
    try:
        address = Lines(server).wait_for(10.0, event="ready")["address"]
        done = Lines(client).wait_for(30.0, event="done")
        assert client.wait(10) == 0
    finally:
        finish(server)
        server.kill()
        client.kill()
        client.wait()
    assert done["connected"] == [address]
    assert done["replies"] == [[f"echo:hello {i}", 42] for i in range(3)]


def test_pub_sub_fan_out_by_name(beacon_port):
    publisher = spawn(python(PUBLISHER, "news"))
    # at once: their online() waits for "news" by name
    subscribers = [spawn(python(SUBSCRIBER, f"reader{i}", "news")) for i in range(3)]
    try:
        address = Lines(publisher).wait_for(10.0, event="ready")["address"]
        got = [Lines(s).wait_for(30.0, event="got") for s in subscribers]
    finally:
        finish(publisher)
        for s in subscribers:
            s.kill()
            s.wait()
    for i, line in enumerate(got):
        assert line["nick"] == f"reader{i}"
        assert line["connected"] == [address]
        assert line["label"] and line["label"].startswith("news ")
