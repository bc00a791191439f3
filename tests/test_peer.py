"""zio.Peer over the test-only "memory" backend: the table, events, waits and life cycle."""
from __future__ import annotations

import gc
import threading
import time
import uuid
import weakref

import pytest
import zmq

import zio

pytestmark = pytest.mark.usefixtures("memory_plugin")


def test_table_events_and_matchnick():
    with zio.Peer("a", discovery="memory") as a:
        b = zio.Peer("b", discovery="memory", n=1)
        event = a.poll(1000)
        assert event.kind == zio.ENTER and event.peer.nick == "b"
        assert event.peer.headers == {"n": "1"}  # header values are advertised as strings
        assert a.matchnick("b") == [b.uuid]
        b.stop()
        event = a.poll(1000)
        assert event.kind == zio.EXIT and event.peer.uuid == b.uuid
        assert a.peers == {}
        assert a.poll(0) is None


def test_waitfor_waituntil_party_and_timeouts():
    with zio.Peer("a", discovery="memory") as a:
        assert a.waitfor("late", 50) == []
        assert a.waituntil(uuid.uuid4(), 50) is None
        late = []
        timer = threading.Timer(0.1, lambda: late.append(zio.Peer("late", discovery="memory")))
        timer.start()
        found = a.waitfor("late", 5000)
        timer.join()
        assert found == [late[0].uuid]
        assert a.waituntil(late[0].uuid, 0).nick == "late"
        with zio.Peer("other", discovery="memory"):
            seen = a.party(["late", "other"], 1000)
            assert {i.nick for i in seen.values()} == {"late", "other"}
        partial = a.party(["late", "missing"], 50)
        assert {i.nick for i in partial.values()} == {"late"}
        late[0].stop()


def test_listeners_and_event_iterator():
    got = []
    with zio.Peer("a", discovery="memory") as a:
        a.add_listener(got.append)
        with zio.Peer("b", discovery="memory"):
            pass
        kinds = [e.kind for e in a.events(timeout_ms=100)]
        assert kinds == [zio.ENTER, zio.EXIT]
        assert [e.kind for e in got] == [zio.ENTER, zio.EXIT]
        a.remove_listener(got.append)
        a.remove_listener(got.append)  # unknown listeners are ignored


def test_a_port_dropped_while_online_is_collected_and_stops_listening():
    """A Peer holds an online port's listener weakly: a port nobody holds any more is
    collected (its sockets with it) instead of living as long as the Peer, and the next
    event takes its listener off."""
    with zio.Peer("a", discovery="memory") as a:
        before = len(a._table.listeners)
        port = zio.Port("in", zmq.PULL)
        port.bind()
        port.online(a)
        assert len(a._table.listeners) == before + 1
        gone = weakref.ref(port)
        del port
        gc.collect()
        assert gone() is None
        with zio.Peer("b", discovery="memory"):
            assert a.waitfor("b", 1000)
        assert len(a._table.listeners) == before


def test_a_failing_listener_does_not_break_the_table(caplog):
    with zio.Peer("a", discovery="memory") as a:
        a.add_listener(lambda event: 1 / 0)
        with zio.Peer("b", discovery="memory"):
            assert a.waitfor("b", 1000)
        assert "listener" in caplog.text


def test_update_and_duplicate_reports():
    with zio.Peer("a", discovery="memory") as a:
        report = a._table.report
        info = zio.PeerInfo(uuid.uuid4(), "x", {"k": "1"})
        report(zio.PeerEvent(zio.ENTER, info))
        report(zio.PeerEvent(zio.ENTER, info))  # duplicate: no event
        report(zio.PeerEvent(zio.ENTER, info._replace(headers={"k": "2"})))
        report(zio.PeerEvent(zio.EXIT, info))
        report(zio.PeerEvent(zio.EXIT, info))  # already gone: no event
        assert [e.kind for e in a.drain()] == [zio.ENTER, zio.UPDATE, zio.EXIT]


def test_stop_is_idempotent_and_wakes_waiters():
    peer = zio.Peer("a", discovery="memory")
    results = []
    waiter = threading.Thread(target=lambda: results.append(peer.waitfor("never", -1)))
    waiter.start()
    time.sleep(0.05)
    peer.stop()
    peer.stop()
    waiter.join(5)
    assert not waiter.is_alive() and results == [[]]
    assert peer.stopped


@pytest.mark.parametrize("nick", ["", None, 3])
def test_bad_nicknames(nick):
    with pytest.raises(zio.ConfigurationError):
        zio.Peer(nick, discovery="memory")


def test_bad_header_keys():
    with pytest.raises(zio.ConfigurationError):
        zio.Peer("a", discovery="memory", **{"": "x"})


def test_zio_timeout_keyword_is_accepted():
    with zio.Peer("a", discovery="memory") as a:
        assert a.poll(timeout=10) is None
        assert a.waitfor("nobody", timeout=10) == []
        assert a.waituntil(uuid.uuid4(), timeout=10) is None
        assert a.party(["nobody"], timeout=10) == {}


def test_peer_event_reason_defaults_to_empty():
    info = zio.PeerInfo(uuid.uuid4(), "x", {})
    event = zio.PeerEvent(zio.EXIT, info)  # how third-party backends build events
    assert event.reason == "" and event == (zio.EXIT, info, "")
    assert zio.PeerEvent(zio.EXIT, info, zio.LOST).reason == "lost"


class _StopReporter(zio.Discovery):
    """A backend that knows one peer and reports its exit, without a reason, when it stops."""

    name = "stop-reporter"

    def __init__(self, reason=""):
        self.reason = reason
        self.info = zio.PeerInfo(uuid.uuid4(), "other", {})

    def start(self, uuid, nickname, headers, report):
        self.report = report
        report(zio.PeerEvent(zio.ENTER, self.info))

    def leave(self):
        self.report(zio.PeerEvent(zio.EXIT, self.info, self.reason))

    def stop(self):
        self.report(zio.PeerEvent(zio.EXIT, self.info, self.reason))


def test_exits_reported_while_the_peer_stops_say_stopped():
    got = []
    peer = zio.Peer("a", discovery=_StopReporter())
    peer.add_listener(got.append)
    assert peer.waitfor("other", 0)
    peer.stop()
    assert [(e.kind, e.reason) for e in got] == [(zio.EXIT, zio.STOPPED)]
    assert peer.drain()[-1].reason == zio.STOPPED


def test_exits_before_the_stop_keep_the_backends_reason():
    backend = _StopReporter(reason=zio.LEFT)
    with zio.Peer("a", discovery=backend) as peer:
        peer.drain()
        backend.leave()
        assert [(e.kind, e.reason) for e in peer.drain()] == [(zio.EXIT, zio.LEFT)]
    backend = _StopReporter()
    with zio.Peer("a", discovery=backend) as peer:
        peer.drain()
        backend.leave()
        assert [(e.kind, e.reason) for e in peer.drain()] == [(zio.EXIT, "")]


@pytest.mark.needs_netns
def test_builtin_backends_say_why_a_peer_exits(discovery):
    """The other peer leaving is not "stopped"; our own stop reports the live ones as "stopped"."""
    with zio.Peer("watcher") as watcher:
        leaver = zio.Peer("leaver")
        stayer = zio.Peer("stayer")
        try:
            assert watcher.party(["leaver", "stayer"], 10000)
            watcher.drain()
            leaver.stop()
            event = watcher.poll(5000)
            while event is not None and event.kind != zio.EXIT:
                event = watcher.poll(5000)
            assert event is not None and event.peer.nick == "leaver"
            assert event.reason != zio.STOPPED
            if discovery == "beacon":
                assert event.reason == zio.LEFT  # a port-0 beacon: it said goodbye
            got = []
            watcher.add_listener(got.append)
            watcher.stop()
            assert [(e.kind, e.peer.nick, e.reason) for e in got] == [(zio.EXIT, "stayer", zio.STOPPED)]
        finally:
            stayer.stop()
            leaver.stop()
