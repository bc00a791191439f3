"""One engine thread, ZeroMQ context and UDP beacon socket for the beacon Peers of a process.

Before this module every beacon Peer had a context (two libzmq threads), an engine thread,
two UDP sockets and, for every other Peer of the same process, a TCP session with its
monitor (five fds on each side). 25 Peers per process spent most of their time in 25 engine
threads fighting for the GIL, each reading the same beacons; 1000 Peers in one process
needed millions of fds. A :class:`Hub` serves every Peer of one process that beacons on the
same interface and port:

- one thread runs every engine's loop (beacons, ticks, mailboxes, monitors) in turn;
- one context holds every engine's sockets;
- one UDP socket hears each beacon once and hands it to every engine;
- Peers of the process meet in-process: the hub reports each to the others (ENTER with
  its name and headers, EXIT when it stops) and their engines never open TCP to each
  other; each engine ignores beacons and mail that claim a local Peer's UUID.

Each Peer keeps its UUID, its mailbox (a ROUTER of its own: other processes meet it over
ZRE as before) and its headers. A Peer that stops leaves the hub; the others notice only
its EXIT (reason "left"). The hub's thread ends, and its context and sockets close, when
its last Peer stops. Secure (CURVE) engines get a hub of their own: their ZAP handler
belongs to their context.

Listeners of every Peer of the hub run on its one thread: a listener that blocks delays
the others' discovery (as it delayed its own Peer's before).
"""
from __future__ import annotations

import collections
import logging
import math
import os
import select
import socket
import threading
import time
import uuid as uuidlib
from typing import TYPE_CHECKING, Callable, cast

import zmq

from zio.errors import DiscoveryError
from zio.interfaces import Interface
from zio.security import release_zap

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine

log = logging.getLogger(__name__)

#: ZeroMQ sockets one hub's context may hold (every engine's; each engine has its own
#: budget too, engine.MAX_SOCKETS).
HUB_MAX_SOCKETS = 65536
#: Beacons read from the UDP socket per wake-up before other sockets get a turn.
UDP_BATCH = 64
#: Messages taken from one mailbox or monitor before other sockets get a turn.
DISPATCH_BATCH = 32

#: Work put off until the hub is idle (Hub.later) waits at most this many seconds.
LATER_WAIT = 1.0
#: Seconds of put-off work done per idle moment, before the hub looks at its sockets again.
LATER_SLICE = 0.005
#: ZMQ_EVENTS' readable bit, as an int (the enum's & builds an enum: 2 us a call)
_POLLIN = int(zmq.POLLIN)

#: Engines' beacons and ticks fall due on a grid of this many seconds, so that one wake-up
#: of the hub serves many engines: with 1000 engines each on its own schedule the hub woke
#: 5000 times a second, and each wake-up polls every socket (O(engines)).
SLOT = 0.02

#: Seconds a stopped local Peer's beacons are ignored (those still queued when it stopped).
GONE_FOR = 2.0

_REGISTRY: dict[tuple, "Hub"] = {}


def _slot(t: float) -> float:
    """The first grid time at or after ``t`` (see SLOT)."""
    return math.ceil(t / SLOT) * SLOT
_REGISTRY_LOCK = threading.Lock()


def open_udp(interface: Interface, port: int) -> tuple[socket.socket, socket.socket]:
    """The (receive, send) UDP sockets for beacons on ``interface`` and ``port``."""
    target = interface.beacon_target
    recv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        recv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        recv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # binding to the broadcast (or group) address receives only beacons, only there
        recv.bind((target, port))
        if interface.loopback:
            mreq = socket.inet_aton(target) + socket.inet_aton(interface.address)
            recv.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface.address))
            send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        else:
            send.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            send.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.name.encode())
        send.bind((interface.address, 0))
        recv.setblocking(False)
        send.setblocking(False)
    except OSError:
        recv.close()
        send.close()
        raise
    return recv, send


class Hub:
    """The thread, context and beacon sockets engines share; see the module docstring."""

    def __init__(self, interface: Interface, port: int, secure: bool, key: tuple | None) -> None:
        self.interface = interface
        self.port = port
        self.secure = secure
        self._key = key  # registry key; None: private
        self.ctx = zmq.Context()
        self.ctx.max_sockets = HUB_MAX_SOCKETS
        try:
            self.recv_udp, self.send_udp = open_udp(interface, port)
        except OSError as err:
            self.ctx.term()
            raise DiscoveryError(f"beacon discovery cannot start on {interface}: {err}") from err
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self.thread = threading.Thread(target=self._run, name=f"zio-beacon-{port}", daemon=True)
        self.users = 0  # engines made on this hub and not yet released
        self.sockets = 0  # ZeroMQ sockets every engine of the hub holds
        self.engines: list[Engine] = []  # attached (started) engines, in start order
        self.local: dict[uuidlib.UUID, Engine] = {}
        #: engines detached lately (uuid -> when): their beacons still queued on the UDP
        #: socket must not look like a remote's (measured: 300 stopped Peers of 600 made the
        #: others open 124 000 outboxes to them)
        self.gone: dict[uuidlib.UUID, float] = {}
        self._owners: dict[zmq.Socket, Engine] = {}  # watched socket -> its engine
        #: epoll over the sockets' ZMQ_FDs: a wake-up costs what is ready, not every socket
        #: (zmq_poll over the 1900 sockets of 25 engines meeting 75 remotes took 2 ms a call)
        self._epoll = select.epoll()
        self._by_fd: dict[int, zmq.Socket] = {}
        self._fd_of: dict[zmq.Socket, int] = {}
        self._check: set[zmq.Socket] = set()  # sockets to look at without waiting
        self._due = math.inf  # the earliest beacon or tick of any engine
        self._beacon_due = math.inf  # the earliest beacon of any engine
        #: the last time the UDP socket was seen empty: every beacon that came before has
        #: been handled. Silences are measured up to it, not up to now, so that a hub kept
        #: busy for seconds (a burst of newcomers on a loaded machine) does not take the
        #: beacons still queued for it as silence and forget live peers (measured: 100 nodes
        #: in 4 processes under two busy loops forgot each other 85 times, and never met)
        self.heard_at = time.monotonic()
        self._commands: collections.deque[Callable[[], None]] = collections.deque()
        #: (when asked, job): work put off until nothing else waits (see later())
        self._later: collections.deque[tuple[float, Callable[[], None]]] = collections.deque()
        self._detach_due: list[Engine] = []
        self._exit = False
        self._closed = False
        self._start_lock = threading.Lock()

    # -- who uses the hub -----------------------------------------------------------------
    @classmethod
    def acquire(cls, interface: Interface, port: int, share: bool = True, secure: bool = False) -> "Hub":
        """The process's hub for ``interface`` and ``port`` (a new one if none runs, or if
        not ``share`` or ``secure``); the caller must :meth:`release` it once."""
        key = (interface.name, interface.address, interface.beacon_target, port)
        with _REGISTRY_LOCK:
            hub = _REGISTRY.get(key) if share and not secure else None
            if hub is None:
                hub = cls(interface, port, secure, key if share and not secure else None)
                if hub._key is not None:
                    _REGISTRY[key] = hub
            hub.users += 1
            return hub

    def release(self) -> None:
        """One engine is done with the hub; the last one ends its thread and closes it."""
        with _REGISTRY_LOCK:
            self.users -= 1
            if self.users > 0:
                return
            if self._key is not None and _REGISTRY.get(self._key) is self:
                del _REGISTRY[self._key]
        if self.thread.is_alive():
            self._exit = True
            self._wake()
        else:
            with self._start_lock:
                self._exit = True  # a thread that never started never will
            self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.recv_udp.close()
        self.send_udp.close()
        self._epoll.close()
        release_zap(self.ctx)
        # destroy, not term: a socket left open by mistake must not hang stop() forever
        self.ctx.destroy(linger=0)
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- commands from other threads --------------------------------------------------------
    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def call(self, fn: Callable[[], None], timeout: float = 5.0) -> bool:
        """Run ``fn`` on the hub's thread (starting it if need be) and wait; False on timeout."""
        done = threading.Event()

        def command() -> None:
            try:
                fn()
            finally:
                done.set()

        if threading.current_thread() is self.thread:
            command()
            return True
        with self._start_lock:
            if self.thread.ident is None and not self._exit:
                self._commands.append(command)
                self.thread.start()
                return done.wait(timeout)
        if not self.thread.is_alive():
            command()  # the thread failed and closed everything: nothing left to wait for
            return True
        self._commands.append(command)
        self._wake()
        return done.wait(timeout)

    def later(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the hub's thread once nothing else waits, or after ``LATER_WAIT``
        seconds at the latest (on the hub's thread)."""
        self._later.append((time.monotonic(), job))

    def _run_later(self, idle: bool) -> None:
        """Put-off jobs: for up to ``LATER_SLICE`` seconds if ``idle``, else the overdue ones."""
        now = time.monotonic()
        until = now + LATER_SLICE
        while self._later:
            asked, job = self._later[0]
            if not (idle and now < until) and now - asked < LATER_WAIT:
                return
            self._later.popleft()
            try:
                job()
            except Exception:
                log.exception("beacon hub job failed")
            self._detach_stopped()
            now = time.monotonic()

    def due(self, when: float) -> None:
        """An engine's beacon or tick moved forward to ``when`` (on the hub's thread)."""
        self._due = min(self._due, when)
        self._beacon_due = min(self._beacon_due, when)

    def join(self, timeout: float) -> None:
        """Wait for the thread to end, if it is ending (its last engine left)."""
        if self._exit and self.thread.ident is not None and threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    # -- engines (on the hub's thread) -------------------------------------------------------
    def attach(self, engine: "Engine") -> None:
        """Serve ``engine``: poll its inbox, beacon for it, meet it with the local engines."""
        now = time.monotonic()
        engine.next_beacon = engine.beacon_at = now
        engine.next_tick = now + engine.timing.tick
        self.due(now)
        self.watch(engine.inbox, engine)
        others = list(self.engines)
        self.engines.append(engine)
        self.local[engine.uuid] = engine
        if not self.secure:
            for other in others:
                other._local_enter(engine)
                engine._local_enter(other)

    def detach(self, engine: "Engine") -> None:
        """Stop serving ``engine``: its goodbye beacon, its sockets closed, its exit reported."""
        if engine not in self.engines:
            return
        self.engines.remove(engine)
        self.local.pop(engine.uuid, None)
        now = time.monotonic()
        self.gone[engine.uuid] = now
        if len(self.gone) > 64:
            # a beacon lingers in the socket's queue a moment; a while after it is a restart
            for uuid, when in list(self.gone.items()):
                if now - when > GONE_FOR:
                    del self.gone[uuid]
        try:
            engine._beacon(0)
            engine._close()
        except Exception:
            log.exception("beacon engine of %s failed to close", engine.nickname)
        for other in list(self.engines):
            other._local_exit(engine)
        for sock in [s for s, e in self._owners.items() if e is engine]:
            self.unwatch(sock)

    def detach_soon(self, engine: "Engine") -> None:
        """Detach ``engine`` once the event being handled is done (a stop from a listener)."""
        self._detach_due.append(engine)

    def watch(self, sock: zmq.Socket, engine: "Engine") -> None:
        """Dispatch what ``sock`` receives to ``engine`` (call before anything may arrive on it)."""
        fd = int(sock.getsockopt(zmq.FD))  # ZMQ_FD is an int option
        self._owners[sock] = engine
        self._by_fd[fd] = sock
        self._fd_of[sock] = fd
        self._epoll.register(fd, select.EPOLLIN)
        self._check.add(sock)  # something may be queued already: ZMQ_FD signals changes only

    def unwatch(self, sock: zmq.Socket) -> None:
        """Stop watching ``sock``; call before it is closed."""
        if self._owners.pop(sock, None) is None:
            return
        self._check.discard(sock)
        fd = self._fd_of.pop(sock)
        if self._by_fd.get(fd) is sock:
            del self._by_fd[fd]
        try:
            self._epoll.unregister(fd)
        except (OSError, ValueError):
            pass

    def _serve(self, sock: zmq.Socket) -> None:
        """Hand what ``sock`` holds to its engine: up to DISPATCH_BATCH messages, then the
        other sockets get a turn (it is looked at again without waiting)."""
        for _ in range(DISPATCH_BATCH):
            engine = self._owners.get(sock)
            if engine is None or engine._stopped or sock.closed:
                return  # e.g. the monitor of a peer forgotten earlier in this round
            if not cast(int, sock.getsockopt(zmq.EVENTS)) & _POLLIN:  # an int option
                return
            engine._dispatch(sock)
            self._detach_stopped()
            self._beacon_on_time()
        self._check.add(sock)

    def _beacon(self, engine: "Engine", now: float) -> None:
        engine._beacon(engine.mailbox_port)
        # one interval after the last one's due time (not after now), on the grid at or
        # before it: beacons keep their period, never late (a listener that looks for 1 s
        # after a peer started hears it)
        engine.beacon_at = max(engine.beacon_at + engine.timing.interval, now - SLOT)
        engine.next_beacon = _slot(engine.beacon_at) - SLOT

    def _beacon_on_time(self) -> None:
        """Send the beacons that fell due while a batch of work was handled.

        A burst of newcomers costs every engine sockets and connections; handled in one go
        on a loaded machine, it kept beacons back for 2 to 6 s (measured: 100 nodes in 4
        processes under two busy loops), longer than ``expired``: the others forgot live
        peers. So the hub looks at the clock between messages and datagrams as well.
        """
        now = time.monotonic()
        if now < self._beacon_due:
            return
        due = math.inf
        for engine in list(self.engines):
            if engine._stopped:
                continue
            if now >= engine.next_beacon:
                self._beacon(engine, now)
            due = min(due, engine.next_beacon)
        self._beacon_due = due

    # -- the loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        udp = self.recv_udp.fileno()
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._epoll.register(udp, select.EPOLLIN)
        try:
            while True:
                self._run_commands()
                if self._exit:
                    break
                now = time.monotonic()
                if now >= self._due:
                    self._due = self._beacon_due = math.inf
                    for engine in list(self.engines):
                        if engine._stopped:
                            continue
                        if now >= engine.next_beacon:
                            self._beacon(engine, now)
                        if now >= engine.next_tick:
                            try:
                                engine._check_silences(now)
                            except Exception:
                                log.exception("beacon engine of %s failed a tick", engine.nickname)
                            engine.next_tick = _slot(now + engine.timing.tick)
                            self._detach_stopped()
                        self._due = min(self._due, engine.next_beacon, engine.next_tick)
                        self._beacon_due = min(self._beacon_due, engine.next_beacon)
                if self._check or self._commands or self._later:
                    timeout = 0.0
                elif self._due == math.inf:
                    timeout = -1.0
                else:
                    timeout = max(0.0, self._due - time.monotonic())
                ready = [fd for fd, _ in self._epoll.poll(timeout)]
                if udp not in ready:
                    self.heard_at = time.monotonic()  # nothing queued: every beacon is heard
                check, self._check = self._check, set()
                for fd in ready:
                    if fd == self._wake_r:
                        try:
                            os.read(self._wake_r, 4096)
                        except BlockingIOError:
                            pass
                    elif fd == udp:
                        self._on_udp()
                    else:
                        sock = self._by_fd.get(fd)
                        if sock is not None:
                            check.add(sock)
                for sock in check:
                    self._serve(sock)
                    self._beacon_on_time()
                if self._later:
                    self._run_later(idle=not ready and not check)
        except Exception:
            log.exception("beacon hub on port %d failed; its peers leave the network", self.port)
        finally:
            self._run_commands()
            for engine in list(self.engines):
                self.detach(engine)
            self._close()

    def _run_commands(self) -> None:
        while self._commands:
            command = self._commands.popleft()
            try:
                command()
            except Exception:
                log.exception("beacon hub command failed")
            self._detach_stopped()

    def _detach_stopped(self) -> None:
        while self._detach_due:
            engine = self._detach_due.pop(0)
            self.detach(engine)
            self.release()

    def _on_udp(self) -> None:
        from . import wire
        from zio.errors import MalformedError

        for _ in range(UDP_BATCH):  # drain what is queued, but let other sockets have a turn
            try:
                data, (ip, _port) = self.recv_udp.recvfrom(64)
            except (BlockingIOError, InterruptedError):
                self.heard_at = time.monotonic()
                return
            beacon = None
            if not self.secure:
                try:
                    beacon = wire.Beacon.decode(data)
                except MalformedError as err:
                    log.debug("dropped beacon from %s: %s", ip, err)
                    continue
                if beacon.uuid in self.local:
                    continue  # our own engines meet in-process
                if beacon.uuid in self.gone:
                    if time.monotonic() - self.gone[beacon.uuid] < GONE_FOR:
                        continue  # one of ours that stopped a moment ago: a stale beacon
                    del self.gone[beacon.uuid]
            for engine in list(self.engines):
                if not engine._stopped:
                    engine._on_datagram(data, ip, beacon)
            self._detach_stopped()
            self._beacon_on_time()
            # a Peer starting or stopping waits for the hub: its turn comes between beacons
            # (a burst of new remotes costs every engine a socket each: 25 engines meeting 64
            # newcomers kept the 25th Peer of a process from starting for seconds)
            self._run_commands()


__all__ = ["Hub", "open_udp"]
