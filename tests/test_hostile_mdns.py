"""Issue 15, mdns side: valid-looking input in volume must not break the mdns backend.

Every test multicasts on loopback inside the suite's private network namespace. Bounds are
counts (threads, fds, peers found, sockets dialled); the only times are the issue's own
"found within 5 s" bounds, used as generous timeouts.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
import time
import uuid as uuidlib

import pytest
import zmq

import zio
from zio_plugins.mdns import txt

zeroconf = pytest.importorskip("zeroconf")
from zio_plugins.mdns import liveness  # noqa: E402
from zio_plugins.mdns.backend import SERVICE_TYPE  # noqa: E402

pytestmark = [pytest.mark.needs_netns, pytest.mark.hostile]


def nick(base: str) -> str:
    """A nickname of this test's own."""
    return f"{base}-{uuidlib.uuid4().hex[:6]}"


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def loopback(monkeypatch):
    monkeypatch.setenv("ZIO_INTERFACE", "localhost")


@pytest.fixture
def attacker():
    """A zeroconf instance of the test's own that registers bogus services; closed at teardown."""
    zc = zeroconf.Zeroconf(interfaces=["127.0.0.1"], ip_version=zeroconf.IPVersion.V4Only)
    yield zc
    zc.close()


def register_bogus(zc, count: int, live: str = "tcp://127.0.0.1:9") -> None:
    """Register ``count`` well-formed zio services whose liveness socket never answers."""
    futures = []
    for i in range(count):
        label = f"bogus{i}-{uuidlib.uuid4().hex[:12]}"
        record = txt.PeerRecord(uuidlib.uuid4(), f"bogus{i}", live, {})
        info = zeroconf.ServiceInfo(
            SERVICE_TYPE, f"{label}.{SERVICE_TYPE}", port=9, properties=txt.encode_properties(record),
            server=f"{label}.local.", parsed_addresses=["127.0.0.1"],
        )
        coro = zc.async_register_service(info, cooperating_responders=True)
        futures.append(asyncio.run_coroutine_threadsafe(coro, zc.loop))
    for future in futures:
        future.result(10)


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# ------------------------------------------------------------------------------------------
# item 1: bogus services must not stop discovery


def test_360_bogus_services_do_not_stop_discovery(loopback, attacker):
    """Before: ~345 services filled the liveness context's 1023 sockets, ctx.socket() raised
    EMFILE in _dial and the engine thread died; nobody was seen any more."""
    observer = zio.Peer(nick("observer"), discovery="mdns")
    try:
        engine = observer.backend.engine
        register_bogus(attacker, 360)
        assert wait_for(lambda: len(engine.remotes) + len(engine.parked) >= 360, 10), (
            len(engine.remotes), len(engine.parked))
        assert engine._thread.is_alive()
        assert len(engine.remotes) <= engine.max_remotes
        with zio.Peer(nick("legit"), discovery="mdns") as legit:
            assert observer.waituntil(legit.uuid, 5000)
            assert legit.waituntil(observer.uuid, 5000)
        assert engine._thread.is_alive()
        assert set(observer.peers) <= {legit.uuid}  # no bogus service ever entered
    finally:
        observer.stop()


def test_bounded_remotes_give_way_to_a_fresh_peer(loopback, attacker):
    """With room for 16 remotes and 100 silent services, only 16 are dialled (fds bounded),
    the rest wait, and a fresh legit peer still takes a place at once."""
    before = fds()
    observer = zio.Peer(nick("observer"), discovery=zio.make_backend("mdns", max_peers=16))
    try:
        engine = observer.backend.engine
        assert engine.max_remotes == 16
        register_bogus(attacker, 100)
        # 16 dialled, the others wait (at most 4 x 16; the oldest waiting records are let go);
        # a generous bound: on a loaded 2-core machine answers for 100 services come slowly
        assert wait_for(lambda: len(engine.parked) >= 4 and len(engine.remotes) >= 12, 30), (
            len(engine.parked), len(engine.remotes))
        assert len(engine.remotes) <= 16
        assert len(engine.parked) <= 4 * 16
        # the Peer's own sockets plus at most FDS_PER_REMOTE for each of 16 remotes (once
        # libzmq's reaper has closed the sockets of services dialled, refused and let go)
        assert wait_for(lambda: fds() - before <= 40 + 16 * liveness.FDS_PER_REMOTE, 2), fds() - before
        with zio.Peer(nick("legit"), discovery="mdns") as legit:
            assert observer.waituntil(legit.uuid, 5000)
            assert len(engine.remotes) <= 16
            assert engine._thread.is_alive()
    finally:
        observer.stop()


def test_default_bound_keeps_an_fd_reserve():
    """The default bound leaves FD_RESERVE of the soft limit to the application."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    bound = liveness.default_max_remotes()
    assert 1 <= bound <= liveness.MAX_REMOTES
    assert bound * liveness.FDS_PER_REMOTE <= soft * (1 - liveness.FD_RESERVE)


def test_a_resource_error_drops_one_service_not_the_thread(loopback, attacker, monkeypatch, caplog):
    """Any error while dialling one service is logged, that service waits, the thread goes on."""
    caplog.set_level(logging.WARNING, logger="zio_plugins.mdns")
    observer = zio.Peer(nick("observer"), discovery="mdns")
    try:
        engine = observer.backend.engine
        real = liveness.Engine._heartbeats
        failed = []

        def heartbeats(self, sock):  # the first dial after this point fails as under EMFILE
            if not failed:
                failed.append(True)
                raise zmq.ZMQError(errno.EMFILE)
            real(self, sock)

        monkeypatch.setattr(liveness.Engine, "_heartbeats", heartbeats)
        before = fds()
        register_bogus(attacker, 1)
        assert wait_for(lambda: failed and len(engine.parked) == 1, 5)
        assert engine._thread.is_alive()
        assert fds() <= before + 1  # the half-opened sockets were closed
        assert any("cannot watch" in r.getMessage() for r in caplog.records)
        assert engine.max_remotes >= 1
        with zio.Peer(nick("legit"), discovery="mdns") as legit:
            assert observer.waituntil(legit.uuid, 5000)
    finally:
        observer.stop()


# ------------------------------------------------------------------------------------------
# item 7 (mdns side): ZMQ_MAXMSGSIZE on the liveness sockets


def test_liveness_socket_drops_oversized_messages(loopback):
    """A 1 MB message to the liveness ROUTER costs the sender its connection; the socket
    keeps answering others."""
    peer = zio.Peer(nick("target"), discovery="mdns")
    ctx = zmq.Context()
    try:
        endpoint = peer.backend.engine.endpoint
        big = ctx.socket(zmq.DEALER)
        big.setsockopt(zmq.LINGER, 0)
        big.monitor("inproc://big-mon", zmq.EVENT_DISCONNECTED)
        mon = ctx.socket(zmq.PAIR)
        mon.connect("inproc://big-mon")
        big.connect(endpoint)
        big.send(b"x" * 1_000_000)
        assert mon.poll(5000), "the ROUTER kept a connection that sent 1 MB"
        ask = ctx.socket(zmq.DEALER)
        ask.setsockopt(zmq.LINGER, 0)
        ask.connect(endpoint)
        ask.send(liveness.ASK)
        assert ask.poll(5000) and ask.recv() == peer.uuid.bytes
        for sock in (big, mon, ask):
            sock.close(0)
    finally:
        ctx.term()
        peer.stop()


# ------------------------------------------------------------------------------------------
# item 5: stop() leaks nothing and logs nothing


def test_create_stop_cycles_leave_no_threads(loopback, caplog):
    """Before: each stopped Peer left its ServiceBrowser thread (100 cycles, 100 threads)."""
    caplog.set_level(logging.WARNING)
    other = zio.Peer(nick("other"), discovery="mdns")  # someone to resolve while stopping
    try:
        threads, tasks, before = len(threading.enumerate()), len(os.listdir("/proc/self/task")), fds()
        for i in range(100):
            peer = zio.Peer(nick(f"cycle{i}"), discovery="mdns")
            peer.stop()
        assert wait_for(lambda: len(threading.enumerate()) <= threads + 2, 5), [
            t.name for t in threading.enumerate()]
        assert len(os.listdir("/proc/self/task")) <= tasks + 2  # libzmq's threads too
        assert fds() <= before + 10
    finally:
        other.stop()
    noisy = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not noisy, noisy


def test_stop_mid_resolve_is_quiet(loopback, attacker, caplog):
    """Peers stopped while resolves are in flight: no 'loop must be running', no
    NotRunningException, no pending task destroyed, no thread left."""
    caplog.set_level(logging.DEBUG, logger="asyncio")
    caplog.set_level(logging.WARNING)
    threads = len(threading.enumerate())
    # services with PTR and TXT but no SRV: every observer must resolve them on the network
    for i in range(20):
        label = f"half{i}-{uuidlib.uuid4().hex[:12]}"
        record = txt.PeerRecord(uuidlib.uuid4(), "half", "tcp://127.0.0.1:9", {})
        info = zeroconf.ServiceInfo(SERVICE_TYPE, f"{label}.{SERVICE_TYPE}", port=9,
                                    properties=txt.encode_properties(record), server=f"{label}.local.")
        asyncio.run_coroutine_threadsafe(
            attacker.async_register_service(info, cooperating_responders=True), attacker.loop).result(5)
    resolving = 0
    for i in range(10):
        peer = zio.Peer(nick(f"midresolve{i}"), discovery="mdns")
        wait_for(lambda: peer.backend.listener._resolving > 0, 0.5)
        resolving += peer.backend.listener._resolving
        peer.stop()
    import gc

    gc.collect()
    assert resolving > 0  # the stops did come mid-resolve
    assert wait_for(lambda: len(threading.enumerate()) <= threads + 2, 5)
    noisy = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not noisy, noisy


# ------------------------------------------------------------------------------------------
# item 6: oversized TXT records are refused cheaply


def test_oversized_txt_is_refused_before_parsing(loopback, attacker, caplog):
    """Records over MAX_TXT_BYTES (no zio peer sends one) are dropped unparsed, and legit
    peers are still found at once while 20 of them are around."""
    caplog.set_level(logging.WARNING, logger="zio_plugins.mdns")
    observer = zio.Peer(nick("observer"), discovery="mdns")
    try:
        engine = observer.backend.engine
        decoded = []
        real_decode = txt.decode

        def counting_decode(properties):
            decoded.append(len(properties))
            return real_decode(properties)

        import zio_plugins.mdns.backend as backend_module

        backend_module.txt.decode = counting_decode
        try:
            futures = []
            for i in range(20):
                label = f"fat{i}-{uuidlib.uuid4().hex[:12]}"
                props = {b"zio": b"1", b"uuid": uuidlib.uuid4().hex.encode(), b"nick": b"fat",
                         b"live": b"tcp://127.0.0.1:9"}
                for j in range(35):  # 35 strings of ~250 bytes: ~8.8 kB, one packet, over the limit
                    props[b"h:k%d" % j] = b"x" * 240
                info = zeroconf.ServiceInfo(SERVICE_TYPE, f"{label}.{SERVICE_TYPE}", port=9, properties=props,
                                            server=f"{label}.local.", parsed_addresses=["127.0.0.1"])
                assert len(info.text) > txt.MAX_TXT_BYTES
                futures.append(asyncio.run_coroutine_threadsafe(
                    attacker.async_register_service(info, cooperating_responders=True), attacker.loop))
            for future in futures:
                future.result(5)
            assert wait_for(lambda: sum("more than" in r.getMessage() for r in caplog.records) >= 20, 5)
            with zio.Peer(nick("legit"), discovery="mdns") as legit:
                assert observer.waituntil(legit.uuid, 1000)
                assert legit.waituntil(observer.uuid, 1000)
        finally:
            backend_module.txt.decode = real_decode
        assert all(n < 30 for n in decoded), decoded  # none of the fat records was parsed
        assert not engine.remotes.keys() - {n for n in engine.remotes if "fat" not in n}
        assert not any("fat" in name for name in list(engine.remotes) + list(engine.parked))
    finally:
        observer.stop()
