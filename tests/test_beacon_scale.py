"""Beacon Peers of one process share one hub (zio_plugins/beacon/hub.py), up to 1000 of them.

The Peers of a process share one engine thread, one ZeroMQ context and one UDP beacon
socket; they meet each other in-process (no TCP between them) while each keeps its UUID,
mailbox and headers, and Peers elsewhere (here: a Peer with ``share=False``, which behaves
as one in another process) still meet each of them over ZRE.
"""
from __future__ import annotations

import gc
import threading
import time

import zio
from beacon_support import open_fds, rss_kb, wait_until
from zio_plugins.beacon import hub as hub_module


def shared_peer(nick, port, **headers):
    return zio.Peer(nick, discovery=zio.make_backend("beacon", interface="localhost", port=port), **headers)


def test_peers_of_a_process_share_one_hub_and_meet_in_process(beacon_port):
    fds0, threads0 = open_fds(), threading.active_count()
    a = shared_peer("a", beacon_port, role="first")
    b = shared_peer("b", beacon_port, role="second")
    c = shared_peer("c", beacon_port)
    try:
        engines = [p.backend.engine for p in (a, b, c)]
        assert engines[0].hub is engines[1].hub is engines[2].hub
        assert engines[0].ctx is engines[2].ctx
        assert len({e.endpoint for e in engines}) == 3  # a mailbox each, for other processes
        # met at start, in-process: no outbox, no TCP between them
        assert {i.nick: i.headers for i in a.peers.values()} == {"b": {"role": "second"}, "c": {}}
        assert {i.nick for i in c.peers.values()} == {"a", "b"}
        assert all(e.remotes == {} for e in engines)
        # one engine thread (and libzmq's two) for the three
        assert [t.name for t in threading.enumerate()].count(f"zio-beacon-{beacon_port}") == 1
        # a stop of one: the others see it leave, and go on
        b.stop()
        assert set(a.peers) == {c.uuid} and set(c.peers) == {a.uuid}
        exits = [e for e in a.drain() if e.kind == zio.EXIT]
        assert [(e.peer.uuid, e.reason) for e in exits] == [(b.uuid, zio.LEFT)]
        assert engines[0].running and not engines[1].running
        d = shared_peer("d", beacon_port)
        assert {i.nick for i in a.peers.values()} == {"c", "d"}
        d.stop()
    finally:
        for p in (a, b, c):
            p.stop()
    wait_until(lambda: threading.active_count() <= threads0, what="the hub's thread ended with its last Peer")
    assert open_fds() <= fds0


def test_a_peer_elsewhere_meets_every_shared_peer_over_zre(beacon_port):
    """A Peer with share=False (as in another process) meets the shared ones over ZRE, both ways."""
    a = shared_peer("a", beacon_port)
    b = shared_peer("b", beacon_port)
    other = zio.Peer("other", discovery=zio.make_backend("beacon", interface="localhost", port=beacon_port,
                                                          share=False), where="elsewhere")
    try:
        assert other.backend.engine.hub is not a.backend.engine.hub
        wait_until(lambda: {i.nick for i in other.peers.values()} == {"a", "b"}, what="other sees a and b")
        wait_until(lambda: all(other.uuid in p.peers for p in (a, b)), what="a and b see other")
        assert a.peers[other.uuid].headers == {"where": "elsewhere"}
        assert set(a.backend.engine.remotes) == {other.uuid}  # over TCP: the only remote
        b.stop()  # says goodbye: other sees b leave, a stays
        wait_until(lambda: b.uuid not in other.peers, what="other saw b leave")
        assert a.uuid in other.peers and other.uuid in a.peers
    finally:
        for p in (a, b, other):
            p.stop()


def test_stop_of_a_shared_peer_from_its_listener(beacon_port):
    """A listener runs on the hub's thread: stopping its Peer there must not deadlock the others."""
    a = shared_peer("a", beacon_port)
    stopped = threading.Event()

    def on_event(event):
        a.stop()
        stopped.set()

    a.add_listener(on_event)
    b = shared_peer("b", beacon_port)
    try:
        assert stopped.wait(5.0)
        wait_until(lambda: a.uuid not in b.peers, what="b saw a leave")
        c = shared_peer("c", beacon_port)  # the hub still serves b and newcomers
        assert set(b.peers) == {c.uuid}
        c.stop()
    finally:
        b.stop()
        a.stop()


def _round(port: int, n: int, churn: int, cycles: int) -> dict:
    """``n`` Peers up (each sees the n-1 others), ``cycles`` of ``churn`` leaving and as many
    new ones joining, then all stopped; returns timings."""
    t0 = time.monotonic()
    peers = [shared_peer(f"p{i}", port) for i in range(n)]
    created = time.monotonic() - t0
    assert all(len(p.peers) == n - 1 for p in peers)
    assert len({p.backend.engine.hub for p in peers}) == 1
    assert all(not p.backend.engine.remotes for p in peers[:10])  # no TCP inside the process
    t1 = time.monotonic()
    leaving: list = []
    for cycle in range(cycles):
        leaving, peers = peers[:churn], peers[churn:]
        for p in leaving:
            p.stop()
        assert all(len(p.peers) == n - churn - 1 for p in peers[:50])
        peers += [shared_peer(f"c{cycle}-{i}", port) for i in range(churn)]
        assert all(len(p.peers) == n - 1 for p in peers)
    churned = time.monotonic() - t1
    t2 = time.monotonic()
    for p in peers:
        p.stop()
    stopped = time.monotonic() - t2
    del peers, leaving
    gc.collect()
    return {"created": created, "churn": churned, "stopped": stopped}


def test_a_thousand_peers_in_one_process_soak(beacon_port):
    """1000 mutually visible Peers in one process, join/leave cycles, then nothing left behind."""
    n = 1000
    fds0, threads0 = open_fds(), threading.active_count()
    # (<=: threads and fds of earlier tests may still be on their way out)
    first = _round(beacon_port, n, churn=50, cycles=2)
    wait_until(lambda: threading.active_count() <= threads0, what="hub thread ended")
    fds1, rss1 = open_fds(), rss_kb() / 1024
    second = _round(beacon_port, n // 5, churn=50, cycles=0)  # (n/5: the suite's time)
    wait_until(lambda: threading.active_count() <= threads0, what="hub thread ended")
    fds2, rss2 = open_fds(), rss_kb() / 1024
    print(f"\n[beacon] {n} Peers in one process: made in {first['created']:.1f} s (then {n // 5} in {second['created']:.1f} s), "
          f"2 x 50 left and joined in {first['churn']:.1f} s, "
          f"stopped in {first['stopped']:.1f} / {second['stopped']:.1f} s; after: fds {fds0} -> {fds1} -> {fds2}, "
          f"RSS {rss1:.0f} -> {rss2:.0f} MB")
    assert fds1 <= fds0 and fds2 <= fds1
    # nothing of this test's port is left (a test that failed earlier may have left its own)
    assert [key for key in hub_module._REGISTRY if key[3] == beacon_port] == []
    from zio_plugins.beacon.engine import Engine

    kept = [o for o in gc.get_objects()
            if (isinstance(o, hub_module.Hub) and o.port == beacon_port)
            or (isinstance(o, Engine) and o.hub.port == beacon_port)]
    assert not kept, "engines or hubs kept alive"
    # the allocator keeps the first round's high-water mark; a second round must not add to it
    assert rss2 <= rss1 * 1.1 + 16, f"memory grew from {rss1:.0f} to {rss2:.0f} MB"
