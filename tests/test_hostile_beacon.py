"""The beacon backend under hostile input (issue 15, items 2, 3, 4 and 7): counts, not timings.

Every test attacks a zio Peer in this process from raw sockets of the test, inside the suite's
private network namespace, and asserts on what can be counted: open file descriptors
(/proc/self/fd), the engine's sockets and remotes, events reported, messages handled.

- item 2: beacon floods are bounded (one socket per beacon-only peer, a cap, eviction first)
  and never take the fds of the application's reserve; a fresh peer is still found;
- item 3: reconnecting with one routing id many times leaks no fds;
- item 4: an entry is bound to the address and connection it was learned from;
- item 7: mailbox message size, HELLO header limits, connectable endpoints only.

Spoofed beacons "from another address" leave from 127.0.0.2 (all of 127/8 is on lo).
"""
from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time
import uuid as uuidlib

import pytest
import zmq

import zio
import test_beacon
from beacon_support import open_fds, rss_kb, wait_until
from test_beacon import Beacons, Dealer, Mailbox, wait_event
from zio_plugins.beacon import engine as engine_module
from zio_plugins.beacon import wire

# the fixtures of test_beacon.py, shared by name
beacon_port = test_beacon.beacon_port
beacons = test_beacon.beacons
make_peer = test_beacon.make_peer
raw = test_beacon.raw
sync_udp = test_beacon.sync_udp

pytestmark = [pytest.mark.needs_netns, pytest.mark.hostile]

SHORT = {"interval": 0.2, "evasive": 0.4, "expired": 0.8}
#: beacon-only peers held at once (the engine's cap; 256 when this file was written)
CAP = getattr(engine_module, "MAX_PENDING", 256)


@pytest.fixture
def mute():
    """A TCP port that accepts connections (into its backlog) and never speaks."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def fd_limit():
    """``fd_limit(extra)``: lower the soft RLIMIT_NOFILE to the fds open now plus ``extra``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def lower(extra: int) -> int:
        limit = open_fds() + extra
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
        return limit

    yield lower
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def spoofer(beacon_port):
    """Beacons sent from 127.0.0.2: another address than the peers' own."""
    sender = Beacons(beacon_port)
    sender.sock.bind(("127.0.0.2", 0))
    yield sender
    sender.close()


def flood(beacons: Beacons, count: int, port: int) -> None:
    for i in range(count):
        beacons.beacon(uuidlib.uuid4(), port)
        if i % 25 == 0:
            time.sleep(0.002)  # do not overflow the engine's UDP receive buffer


def settle(engine, what="the engine settled"):
    """Wait until the engine's remote count stops changing for 0.2 s."""
    last, since = -1, time.monotonic()
    deadline = since + 10.0
    while time.monotonic() - since < 0.2:
        now = len(engine.remotes)
        if now != last:
            last, since = now, time.monotonic()
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def greeted(make_peer, raw, nick="friend"):
    """A zio peer and a made-up peer (raw mailbox and dealer) it has met and reported."""
    peer = make_peer("target", timing=SHORT)
    box = Mailbox(raw)
    dealer = Dealer(raw, peer.backend.engine.endpoint, uuid=box.uuid)
    dealer.send_msg(wire.Hello(1, box.endpoint, (), 0, nick, {}))
    wait_event(peer, zio.ENTER, box.uuid)
    assert isinstance(box.recv()[1], wire.Hello)
    return peer, box, dealer


def keep_alive(box, dealer, stop: threading.Event, first_sequence: int = 2):
    """Make a made-up peer answer like a live one: PINGs from it keep it known."""
    seq = first_sequence
    while not stop.wait(0.1):
        dealer.send_msg(wire.Ping(seq))
        seq += 1
        with contextlib.suppress(AssertionError):
            while box.sock.poll(0):
                box.sock.recv_multipart()
    return seq


# ------------------------------------------------------------------------------------------
# item 2: beacon floods


def test_beacon_only_peers_cost_one_socket_each_and_are_capped(make_peer, beacons, raw, mute):
    peer = make_peer("target", timing=SHORT)
    engine = peer.backend.engine
    time.sleep(0.1)
    fds0, rss0 = open_fds(), rss_kb()
    flood(beacons, 3 * CAP, mute)
    settle(engine)
    fds1, rss1 = open_fds(), rss_kb()
    print(f"\n[hostile] {3 * CAP} made-up UUIDs: remotes {len(engine.remotes)}, fds +{fds1 - fds0}, "
          f"RSS {rss0 // 1024} -> {rss1 // 1024} MB")
    assert len(engine.remotes) <= CAP
    assert fds1 - fds0 <= 2 * CAP + 20  # a DEALER's mailbox and its connection: 2 fds each
    assert all(r.monitor is None for r in engine.remotes.values())  # one ZeroMQ socket each
    assert engine.sockets == 1 + len(engine.remotes)
    assert peer.peers == {} and peer.drain() == []  # none was reported
    # when the flood stops, they are forgotten and the fds come back
    wait_until(lambda: len(engine.remotes) == 0, timeout=10.0, what="made-up peers forgotten")
    wait_until(lambda: open_fds() <= fds0 + 4, timeout=5.0, what="fds back to the baseline")
    time.sleep(0.3)  # the tick after the last one is forgotten gives their memory back
    rss2 = rss_kb()
    print(f"[hostile] after the flood: fds +{open_fds() - fds0}, RSS {rss2 // 1024} MB")
    assert rss2 <= rss0 * 1.2
    assert engine._thread.is_alive()


def test_a_flood_leaves_the_fd_reserve_to_the_application(make_peer, beacons, raw, mute, fd_limit):
    peer = make_peer("target", timing={"interval": 0.5, "evasive": 2.0, "expired": 4.0})
    engine = peer.backend.engine
    limit = fd_limit(600)
    reserve = engine_module.default_fd_reserve(limit) if hasattr(engine_module, "default_fd_reserve") else 64
    flood(beacons, 1200, mute)
    settle(engine)
    print(f"\n[hostile] soft limit {limit}, reserve {reserve}: {open_fds()} fds open, "
          f"{len(engine.remotes)} remotes")
    assert open_fds() <= limit - reserve + 8
    # the application still gets its fds: plain sockets and a zio port
    mine = []
    try:
        for _ in range(reserve - 16):
            mine.append(socket.socket())
        port = zio.Port("out", zmq.PUB)
        port.bind()
        port.do_binds()
        assert port.bound
        port.close()
    finally:
        for sock in mine:
            sock.close()
    assert engine._thread.is_alive()


def test_a_fresh_peer_is_found_during_a_flood(make_peer, beacons, raw, mute, fd_limit):
    peer = make_peer("target")
    fd_limit(500)
    stop = threading.Event()
    sent = [0]

    def attack():  # about 2000 made-up UUIDs a second
        while not stop.is_set():
            flood(beacons, 50, mute)
            sent[0] += 50
            time.sleep(0.02)

    thread = threading.Thread(target=attack, daemon=True)
    thread.start()
    try:
        wait_until(lambda: sent[0] >= 1000, timeout=10.0, what="the flood under way")
        newcomer = make_peer("newcomer")
        wait_event(peer, zio.ENTER, newcomer.uuid, timeout=5.0)
        wait_event(newcomer, zio.ENTER, peer.uuid, timeout=5.0)
        assert len(peer.backend.engine.remotes) <= CAP + 1
    finally:
        stop.set()
        thread.join()
    print(f"\n[hostile] a newcomer was met during a flood of {sent[0]} made-up UUIDs")
    assert peer.matchnick("newcomer") == [newcomer.uuid]


# ------------------------------------------------------------------------------------------
# item 3: reconnects with one routing id


def test_a_thousand_reconnects_with_one_routing_id_leak_no_fds(make_peer, raw):
    """Each new connection under one routing id arrives while the previous one still talks.

    With ROUTER_HANDOVER=1 libzmq 4.3.5 hands the id over and leaves the previous connection
    deaf: once it has sent again it never reads its end of the stream, and its fd stays in
    CLOSE-WAIT for good (measured: 996 fds per 1000 reconnects).
    """
    peer, box, dealer = greeted(make_peer, raw)
    engine = peer.backend.engine
    time.sleep(0.2)
    fds0 = open_fds()
    prev = dealer
    for i in range(1000):
        again = Dealer(raw, engine.endpoint, uuid=box.uuid)
        again.send_msg(wire.Hello(1, box.endpoint, (), 0, f"again{i}", {}))
        time.sleep(0.001)
        prev.send_msg(wire.Ping(2))  # the previous connection speaks after the new one came
        time.sleep(0.001)
        prev.close()
        prev = again
        while box.sock.poll(0):
            box.sock.recv_multipart()
    prev.close()
    time.sleep(0.5)
    grown = open_fds() - fds0
    print(f"\n[hostile] 1000 overlapping reconnects with one routing id: fds +{grown}")
    assert grown <= 20
    # once its old connections are gone, the same identity is accepted again
    last = Dealer(raw, engine.endpoint, uuid=box.uuid)
    last.send_msg(wire.Hello(1, box.endpoint, (), 0, "last", {}))
    wait_event(peer, zio.ENTER, box.uuid, nick="last", timeout=5.0)
    box.close()
    last.close()


def test_a_forgotten_peer_s_silent_connection_is_hung_up(make_peer, raw):
    """A peer whose host went silent keeps its TCP connection open here (no FIN ever came).

    Without ROUTER_HANDOVER that connection would hold the peer's routing id, and the new
    connection it opens when it comes back would be parked behind it for good. When the peer
    is forgotten its connection is hung up, so its next HELLO is heard.
    """
    peer = make_peer("target", timing=SHORT)
    box = Mailbox(raw)
    dealer = Dealer.__new__(Dealer)  # a host that vanishes never reconnects either
    dealer.uuid, dealer.sock = box.uuid, raw.socket(zmq.DEALER)
    dealer.sock.setsockopt(zmq.LINGER, 0)
    dealer.sock.setsockopt(zmq.RECONNECT_IVL, -1)
    dealer.sock.setsockopt(zmq.ROUTING_ID, wire.routing_id_for(box.uuid))
    dealer.sock.connect(peer.backend.engine.endpoint)
    dealer.send_msg(wire.Hello(1, box.endpoint, (), 0, "wanderer", {}))
    wait_event(peer, zio.ENTER, box.uuid)
    wait_event(peer, zio.EXIT, box.uuid, timeout=5.0)  # it never answers the pings
    back = Dealer(raw, peer.backend.engine.endpoint, uuid=box.uuid)
    back.send_msg(wire.Hello(1, box.endpoint, (), 0, "wanderer", {}))
    wait_event(peer, zio.ENTER, box.uuid, nick="wanderer", timeout=5.0)
    for s in (box, dealer, back):
        s.close()


def test_a_restart_answered_by_a_restart_is_not_a_ping_pong(make_peer, raw):
    """A peer restarts its session; zio greets it again on a new outbox; the peer, treating
    that HELLO as a restart of ours, greets again on a new connection. zio takes that as the
    answer: one HELLO to the peer's mailbox per restart, not an endless exchange."""
    peer, box, dealer = greeted(make_peer, raw, nick="twin")
    dealer.close()
    time.sleep(0.2)  # as a real peer does: its old connection is seen closing first
    restart = Dealer(raw, peer.backend.engine.endpoint, uuid=box.uuid)
    restart.send_msg(wire.Hello(1, box.endpoint, (), 0, "twin", {}))
    wait_event(peer, zio.EXIT, box.uuid)
    wait_event(peer, zio.ENTER, box.uuid)
    assert isinstance(box.recv()[1], wire.Hello)  # zio greets the restarted session
    restart.close()
    time.sleep(0.2)
    answer = Dealer(raw, peer.backend.engine.endpoint, uuid=box.uuid)
    answer.send_msg(wire.Hello(1, box.endpoint, (), 0, "twin", {}))
    answer.send_msg(wire.Ping(2))
    seen = []
    while not any(isinstance(m, wire.PingOk) for m in seen):  # (zio pings silent peers too)
        seen.append(box.recv()[1])  # the PING is answered on the session as it stands
    deadline = time.monotonic() + 0.3
    while (left := deadline - time.monotonic()) > 0 and box.sock.poll(left * 1000):
        seen.append(box.recv()[1])
    assert not any(isinstance(m, wire.Hello) for m in seen)  # zio did not restart again
    assert peer.drain() == []  # nor another EXIT/ENTER
    assert peer.peers[box.uuid].nick == "twin"
    for s in (box, answer):
        s.close()


def test_pyre_restarting_its_session_with_the_same_identity_is_met_again(make_peer, beacons, raw, beacon_port):
    """pyre restarts its session (new outbox, same routing id) whenever zio greets it again."""
    from beacon_support import PYRE, Lines, finish, python, spawn

    peer = make_peer("zio", timing=SHORT)
    # (pyre beacons every 0.1 s: each meeting again waited up to its 1 s interval)
    proc = spawn(python(PYRE, "pyre-node", str(beacon_port), "{}", "beacon-fast"))
    try:
        lines = Lines(proc)
        pyre_uuid = uuidlib.UUID(lines.wait_for(10.0, event="ready")["uuid"])
        wait_event(peer, zio.ENTER, pyre_uuid, timeout=5.0)
        met = 0
        for _ in range(3):
            beacons.beacon(pyre_uuid, 0)  # "pyre leaves", from pyre's own address
            wait_event(peer, zio.EXIT, pyre_uuid, timeout=3.0)
            # zio meets it again at its next beacon, says HELLO; pyre reopens its outbox
            wait_event(peer, zio.ENTER, pyre_uuid, timeout=5.0)
            met += 1
        assert met == 3
    finally:
        finish(proc)


# ------------------------------------------------------------------------------------------
# item 4: spoofing


def test_beacons_from_another_address_neither_refresh_nor_move_a_peer(make_peer, raw, beacons, spoofer):
    peer, box, dealer = greeted(make_peer, raw)
    engine = peer.backend.engine
    seen = engine.remotes[box.uuid].last_seen
    other = Mailbox(raw)
    for _ in range(10):
        spoofer.beacon(box.uuid, box.port)  # same port, another address
        beacons.beacon(box.uuid, other.port)  # same address, another port
    spoofer.beacon(box.uuid, 0)  # "it is leaving", from another address
    sync_udp(peer, beacons, raw)
    remote = engine.remotes[box.uuid]
    assert remote.last_seen == seen  # not refreshed
    assert remote.endpoint == box.endpoint
    assert [e for e in peer.drain() if e.peer.uuid == box.uuid] == []
    assert not other.sock.poll(100)  # nobody greeted the spoofer's mailbox
    # and with nothing real from it, the peer is forgotten on time
    wait_event(peer, zio.EXIT, box.uuid, timeout=3.0)
    for b in (box, other):
        b.close()
    dealer.close()


def test_a_second_hello_for_a_live_uuid_does_not_replace_it(make_peer, raw):
    peer, box, dealer = greeted(make_peer, raw, nick="owner")
    engine = peer.backend.engine
    stop = threading.Event()
    thread = threading.Thread(target=keep_alive, args=(box, dealer, stop), daemon=True)
    thread.start()
    fake = Mailbox(raw)
    impostor = Dealer(raw, engine.endpoint, uuid=box.uuid)
    impostor.send_msg(wire.Hello(1, fake.endpoint, (), 0, "impostor", {}))
    marker = Mailbox(raw)
    flusher = Dealer(raw, engine.endpoint, uuid=marker.uuid)
    flusher.send_msg(wire.Hello(1, marker.endpoint, (), 0, "flusher", {}))
    others = []
    wait_event(peer, zio.ENTER, marker.uuid, others=others)
    time.sleep(0.3)
    others += peer.drain()
    stop.set()
    thread.join()
    assert [e for e in others if e.peer.uuid == box.uuid] == []  # no EXIT, no second ENTER
    assert peer.peers[box.uuid].nick == "owner"
    assert engine.remotes[box.uuid].endpoint == box.endpoint
    assert not fake.sock.poll(100)  # the impostor's mailbox was never greeted
    for s in (box, fake, marker, impostor, flusher, dealer):
        s.close()


def test_a_sequence_error_from_another_connection_does_not_evict(make_peer, raw):
    peer, box, dealer = greeted(make_peer, raw)
    engine = peer.backend.engine
    impostor = Dealer(raw, engine.endpoint, uuid=box.uuid)
    for seq in (500, 900, 1300):
        impostor.send_msg(wire.Ping(seq))
    time.sleep(0.3)
    impostor.close()
    # the real peer goes on with its next sequence number: answered, never evicted
    answers = 0
    for seq in (2, 3, 4):
        dealer.send_msg(wire.Ping(seq))
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            _, msg = box.recv(timeout=3.0)
            if isinstance(msg, wire.PingOk):
                answers += 1
                break
    assert answers == 3
    assert [e for e in peer.drain() if e.peer.uuid == box.uuid] == []
    assert box.uuid in peer.peers
    box.close()
    dealer.close()


# ------------------------------------------------------------------------------------------
# item 7: size limits and endpoints


def count_mail(engine):
    """Count the mailbox messages the engine handles, per sender routing id."""
    counts: dict[bytes, int] = {}
    original = engine._on_mail

    def spy(frames, *args):
        counts[frames[0]] = counts.get(frames[0], 0) + 1
        return original(frames, *args)

    engine._on_mail = spy
    return counts


@pytest.mark.parametrize("max_message", [None, 4 << 20], ids=["default", "configured-4MB"])
def test_mailbox_messages_over_the_size_limit_are_dropped(beacon_port, raw, max_message):
    options = {} if max_message is None else {"max_message": max_message}
    backend = zio.make_backend("beacon", interface="localhost", port=beacon_port, **options)
    peer = zio.Peer("target", discovery=backend)
    try:
        engine = peer.backend.engine
        counts = count_mail(engine)
        big = Dealer(raw, engine.endpoint)
        big.send(wire.encode_message(wire.Whisper(1))[0], b"x" * (2 << 20))  # 2 MB
        marker = Mailbox(raw)
        flusher = Dealer(raw, engine.endpoint, uuid=marker.uuid)
        time.sleep(0.2)
        flusher.send_msg(wire.Hello(1, marker.endpoint, (), 0, "flusher", {}))
        wait_event(peer, zio.ENTER, marker.uuid)
        handled = counts.get(wire.routing_id_for(big.uuid), 0)
        print(f"\n[hostile] max_message {max_message}: 2 MB messages handled: {handled}")
        assert handled == (0 if max_message is None else 1)
        for s in (big, flusher, marker):
            s.close()
    finally:
        peer.stop()


@pytest.mark.parametrize(
    "headers",
    [{f"k{i}": "v" for i in range(wire.__dict__.get("MAX_HEADERS", 256) + 1)}, {"big": "x" * 9000}],
    ids=["too-many-headers", "too-many-header-bytes"],
)
def test_hellos_over_the_header_limits_are_not_peers(make_peer, raw, headers):
    peer = make_peer("target")
    engine = peer.backend.engine
    box = Mailbox(raw)
    dealer = Dealer(raw, engine.endpoint, uuid=box.uuid)
    dealer.send_msg(wire.Hello(1, box.endpoint, (), 0, "fat", headers))
    marker = Mailbox(raw)
    flusher = Dealer(raw, engine.endpoint, uuid=marker.uuid)
    flusher.send_msg(wire.Hello(1, marker.endpoint, (), 0, "flusher", {}))
    others = []
    wait_event(peer, zio.ENTER, marker.uuid, others=others)
    others += peer.drain()
    assert [e for e in others if e.peer.uuid == box.uuid] == []
    assert box.uuid not in peer.peers
    # our own headers over the same limits fail at start
    with pytest.raises(zio.ConfigurationError):
        make_peer("fat", **headers)
    for s in (box, dealer, marker, flusher):
        s.close()


def test_hellos_with_unconnectable_mailboxes_are_not_peers(make_peer, raw):
    peer = make_peer("target")
    engine = peer.backend.engine
    bad = [
        "ipc:///tmp/zio-hostile-mailbox",
        "inproc://zio-hostile-mailbox",
        "tcp://127.0.0.1:0",
        "tcp://no-such-host.invalid:5670",
        "tcp://0.0.0.0:5670",
        "tcp://225.25.25.25:5670",
    ]
    dealers = []
    for endpoint in bad:
        d = Dealer(raw, engine.endpoint)
        d.send_msg(wire.Hello(1, endpoint, (), 0, "ghost", {}))
        dealers.append(d)
    marker = Mailbox(raw)
    flusher = Dealer(raw, engine.endpoint, uuid=marker.uuid)
    time.sleep(0.2)
    flusher.send_msg(wire.Hello(1, marker.endpoint, (), 0, "flusher", {}))
    others = []
    wait_event(peer, zio.ENTER, marker.uuid, others=others)
    time.sleep(0.2)
    others += peer.drain()
    ghosts = [e for e in others if e.peer.nick == "ghost"]
    assert ghosts == []
    assert peer.matchnick("ghost") == []
    assert {d.uuid for d in dealers} & set(engine.remotes) == set()
    for s in (*dealers, marker, flusher):
        s.close()
