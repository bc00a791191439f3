"""The short paths of Port.send/recv and the port's lock (issue 13): same results as the
general paths, for every shape of message, and one thread at a time on the socket."""
import threading
import time

import pytest
import zmq

import zio
from zio.port import ZERO_COPY_BYTES, _PortLock

SHAPES = {
    "no payload": [],
    "one small part": [b"x" * 100],
    "three parts": [b"a", b"", b"c" * 300],
    "one large part": [b"L" * (ZERO_COPY_BYTES + 7)],
    "large and small": [b"s", b"L" * (ZERO_COPY_BYTES * 2), b"t"],
    "bytearray and memoryview": [bytearray(b"ba"), memoryview(b"mv" * 40000)],
}


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


def test_port_lock_excludes_and_wakes():
    lock = _PortLock()
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
