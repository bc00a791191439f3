"""zio.Peer over the test-only "memory" backend: the table, events, waits and life cycle."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

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
