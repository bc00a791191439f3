"""The short paths of Port.send/recv and the port's lock (issue 13): same results as the
general paths, for every shape of message, and one thread at a time on the socket. Every
test runs twice: on the short path as installed (compiled where it was built) and on the
same code run as Python (what an install without a C compiler, or ZIO_PURE_PYTHON=1, uses)."""
import threading
import time

import pytest
import zmq

import zio
import zio.port
from zio import _shortpath
from zio.port import ZERO_COPY_BYTES

SHAPES = {
    "no payload": [],
    "one small part": [b"x" * 100],
    "three parts": [b"a", b"", b"c" * 300],
    "one large part": [b"L" * (ZERO_COPY_BYTES + 7)],
    "large and small": [b"s", b"L" * (ZERO_COPY_BYTES * 2), b"t"],
    "bytearray and memoryview": [bytearray(b"ba"), memoryview(b"mv" * 40000)],
}


@pytest.fixture(autouse=True, params=["as built", "as Python"])
def short_path(request, monkeypatch):
    """The short path's module the ports of a test use."""
    module = _shortpath.chosen() if request.param == "as built" else _shortpath.as_python()
    monkeypatch.setattr(zio.port, "_short", module)
    monkeypatch.setattr(zio.port.Port, "send", module.send)
    monkeypatch.setattr(zio.port.Port, "recv", module.recv)
    return module


@pytest.fixture
def pair_of(request):
    made = []

    def make(sender: int, receiver: int):
        rx = zio.Port("rx", receiver)
        rx.bind()
        address = rx.do_binds()["zio.port.rx.address"]
        rx.online()
        tx = zio.Port("tx", sender)
        tx.connect(address)
        tx.online()
        made.extend([tx, rx])
        return tx, rx

    yield make
    for port in made:
        port.close()


@pytest.mark.parametrize("kinds", [(zmq.PUSH, zmq.PULL), (zmq.PAIR, zmq.PAIR)], ids=["PUSH", "PAIR"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_arrives_intact(pair_of, kinds, shape):
    tx, rx = pair_of(*kinds)
    sent = zio.Message(level=4, form="SHAP", label=shape, origin=5, seqno=9, payload=SHAPES[shape])
    tx.send(sent)
    got = rx.recv(5000)
    assert got == sent
    assert [bytes(p) for p in got.payload] == [bytes(p) for p in SHAPES[shape]]
    big = [p for p in got.payload if len(p) >= ZERO_COPY_BYTES]
    assert all(isinstance(p, memoryview) for p in big)


def test_recv_without_a_peer_waits_for_a_message_sent_later(pair_of):
    tx, rx = pair_of(zmq.PUSH, zmq.PULL)
    assert rx.recv(50) is None  # with a timeout: still bounded
    timer = threading.Timer(0.2, lambda: tx.send(zio.Message(form="LATE")))
    timer.start()
    started = time.monotonic()
    got = rx.recv()  # no timeout, no peer: waits in ZeroMQ
    assert got.form == "LATE" and 0.15 < time.monotonic() - started < 5
    timer.join()


def test_a_second_thread_waits_for_the_port_and_then_gets_it(pair_of):
    tx, rx = pair_of(zmq.PUSH, zmq.PULL)
    results = []
    reader = threading.Thread(target=lambda: results.append(rx.recv(2000)))
    reader.start()
    time.sleep(0.1)  # the reader holds the port's lock while it waits
    other = threading.Thread(target=lambda: results.append(rx.recv(10)))
    other.start()
    time.sleep(0.1)
    assert rx._lock.waiters == 1 and not results  # waiting for the port, not reading
    tx.send(zio.Message(form="ONE"))
    reader.join(5)
    other.join(5)
    assert [m.form if m else None for m in results] == ["ONE ", None]
    assert not rx._lock.locked() and rx._lock.waiters == 0


def test_port_lock_excludes_and_wakes(short_path):
    lock = short_path.PortLock()
    assert lock.acquire(False) and not lock.acquire(False) and lock.locked()
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    counter = [0]

    def work():
        for _ in range(2000):
            lock.acquire()
            value = counter[0]
            time.sleep(0)  # hand the GIL over while holding the lock
            counter[0] = value + 1
            lock.release()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert counter[0] == 8000 and not lock.locked() and lock.waiters == 0


# The short recv path makes a message itself when the prefix is one seen valid before and
# the coord is 24 bytes; every other shape goes through the full checks. Each malformed
# message raises MalformedError with the frames as received, and the next message is intact.
# The tests wait until the message is there, so that recv() reads it on its short path
# (its first read does not wait) rather than after a poll.


def _recv_arrived(port: zio.Port) -> zio.Message | None:
    assert port.sock.poll(5000)
    return port.recv(5000)

_KNOWN = zio.Message(level=4, form="KNOW", label="seen").toparts()[0]
_BIG = ZERO_COPY_BYTES + 3
MALFORMED = {
    "one frame": [b"just one"],
    "empty prefix": [b"", bytes(24), b"p"],
    "empty prefix and coord": [b"", b""],
    "known prefix alone": [_KNOWN],
    "known prefix, short coord": [_KNOWN, b"c" * 23, b"payload"],
    "known prefix, long coord": [_KNOWN, b"c" * 25],
    "known prefix, huge coord": [_KNOWN, b"c" * _BIG, b"p"],
    "not a prefix": [b"ZIP4FORMlabel", bytes(24), b"p"],
    "bad level digit": [b"ZIO9FORM", bytes(24)],
    "label not UTF-8": [b"ZIO4FORM\xff\xfe", bytes(24)],
    "huge bad prefix": [b"XIO4FORM" + b"x" * _BIG, bytes(24)],
    "huge label not UTF-8": [b"ZIO4FORM" + b"\xff" * _BIG, bytes(24), b"p"],
}


@pytest.mark.parametrize("frames", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_messages_raise_with_their_frames(pair_of, frames):
    _, rx = pair_of(zmq.PUSH, zmq.PULL)
    zio.Message(parts=[_KNOWN, bytes(24)])  # the prefix is known valid (cached) before
    raw = zmq.Context.instance().socket(zmq.PUSH)
    try:
        raw.connect(rx.bound[0])
        raw.send_multipart(frames)
        good = zio.Message(level=4, form="KNOW", label="seen", seqno=3, payload=[b"a", b"b"])
        raw.send_multipart(good.toparts())
        with pytest.raises(zio.MalformedError) as caught:
            _recv_arrived(rx)
        got = caught.value.frames
        assert [bytes(f) for f in got] == frames
        # frames of ZERO_COPY_BYTES or more come as memoryviews, smaller ones as bytes
        assert [type(f) for f in got] == [memoryview if len(f) >= ZERO_COPY_BYTES else bytes for f in frames]
        assert _recv_arrived(rx) == good
    finally:
        raw.close(0)


VALID = {
    "new prefix": [b"ZIO2NEW1first time seen", bytes(range(24)), b"p"],
    "known prefix, no payload": [_KNOWN, bytes(range(24))],
    "known prefix, four parts": [_KNOWN, bytes(range(24)), b"", b"b" * 300, b"L" * _BIG, b"z"],
    "long label (never cached)": [b"ZIO3LONG" + "é".encode() * 400, bytes(range(24)), b"p"],
    "huge label": [b"ZIO3HUGE" + b"h" * _BIG, bytes(range(24)), b"p"],
}


@pytest.mark.parametrize("frames", list(VALID.values()), ids=list(VALID))
def test_valid_messages_from_raw_frames(pair_of, frames):
    _, rx = pair_of(zmq.PUSH, zmq.PULL)
    zio.Message(parts=[_KNOWN, bytes(24)])
    raw = zmq.Context.instance().socket(zmq.PUSH)
    try:
        raw.connect(rx.bound[0])
        for _ in range(2):  # the second time, the prefix may be a cached one
            raw.send_multipart(frames)
            got = _recv_arrived(rx)
            assert got == zio.Message(parts=frames)
            assert [bytes(p) for p in got.toparts()] == frames
            assert got.coord.astuple() == zio.CoordHeader(frames[1]).astuple()
            assert got.routing_id == 0
            assert [type(p) for p in got.payload] == [
                memoryview if len(p) >= ZERO_COPY_BYTES else bytes for p in frames[2:]]
    finally:
        raw.close(0)


def test_a_message_with_a_slot_unset_is_refused_and_the_port_goes_on(pair_of):
    """A Message made without __init__ (or with a slot deleted) has no value there: the
    compiled short path reads slots as C fields, so it must leave such a message to the
    general path (which raises as Python does) rather than read an empty field."""
    tx, rx = pair_of(zmq.PUSH, zmq.PULL)
    half_made = object.__new__(zio.Message)
    no_prefix = zio.Message(form="GONE")
    del no_prefix._p
    for bad in (half_made, no_prefix):
        with pytest.raises(AttributeError):
            tx.send(bad, 1000)
    tx.send(zio.Message(form="AFTR", payload=b"ok"))
    got = rx.recv(5000)
    assert got is not None and got.form == "AFTR" and got.payload == [b"ok"]


def test_received_message_has_every_slot_set(pair_of):
    """The short recv path fills Message's slots itself: a new slot must be filled there."""
    assert zio.Message.__slots__ == ("_p", "_c", "_payload", "_routing_id")
    tx, rx = pair_of(zmq.PUSH, zmq.PULL)
    tx.send(zio.Message(form="SLOT", payload=b"x"))
    got = rx.recv(5000)
    assert all(hasattr(got, name) for name in zio.Message.__slots__)
    assert "SLOT" in repr(got)


def test_backlog_is_read_before_the_socket_then_the_short_path_resumes(pair_of):
    """Messages kept from a socket (as before a departed peer's disconnect) come first, in
    order; recv() takes its short path again once they are read."""
    tx, rx = pair_of(zmq.PUSH, zmq.PULL)
    for seqno in range(3):
        tx.send(zio.Message(form="KEPT", seqno=seqno))
    assert rx.sock.poll(5000)
    time.sleep(0.05)  # the three arrive together
    with rx._lock:
        rx._keep_unread()
    assert len(rx._backlog) == 3 and rx._fast.recv_ready is None
    for seqno in range(3, 6):
        tx.send(zio.Message(form="SOCK", seqno=seqno))
    got = [rx.recv(5000) for _ in range(6)]
    assert [(m.form, m.seqno) for m in got] == [
        ("KEPT", 0), ("KEPT", 1), ("KEPT", 2), ("SOCK", 3), ("SOCK", 4), ("SOCK", 5)]
    assert rx._fast.recv_ready is not None  # the backlog is empty: the short path again


def test_a_discovery_change_turns_the_short_paths_off_until_applied(pair_of):
    """A change announced by a discovery thread (here: called directly while the ports are
    busy) sets _dirty and turns both short paths off; the next calls apply it first, then
    take the short paths again."""
    tx, rx = pair_of(zmq.PUSH, zmq.PULL)
    tx.send(zio.Message(form="ONE"))
    assert rx.recv(5000).form == "ONE "
    assert tx._fast.send_ready is not None and rx._fast.recv_ready is not None
    with tx._lock, rx._lock:  # busy: the change is left for the port's next call
        tx._on_peer_event(None)
        rx._on_peer_event(None)
    assert tx._dirty and rx._dirty
    assert tx._fast.send_ready is None and rx._fast.recv_ready is None
    for form in ("TWO", "THRE"):
        tx.send(zio.Message(form=form))
        assert rx.recv(5000).form == form.ljust(4)
        assert not tx._dirty and not rx._dirty
    assert tx._fast.send_ready is not None and rx._fast.recv_ready is not None
