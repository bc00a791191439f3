"""The ZRE peer engine: one thread that beacons, greets, pings and forgets peers.

Liveness is faster than Zyre's without more idle traffic:

- a peer process that dies closes its TCP connections; the socket monitor of our outbox
  to it sees the disconnect and the peer leaves at once (the monitor is made when the hub
  is next idle, at most ``hub.LATER_WAIT`` after the peer's HELLO);
- a peer whose host vanishes goes silent: every beacon or message refreshes it, after
  ``evasive`` seconds of silence it is pinged, after ``expired`` seconds it leaves
  (silence counted up to ``Hub.heard_at``: a busy hub does not mistake its own backlog
  for silence);
- a peer that stops says so with a port-0 beacon.

Bounded under hostile input (issue 15):

- a peer that has only beaconed is *pending*: one DEALER (two fds), no monitor; at most
  ``MAX_PENDING`` are held, and the oldest pending one is evicted first, to make room for a
  newer beacon (once it has had ``PENDING_GRACE`` to say HELLO) or for any peer that says
  HELLO;
- the engine never opens sockets for a peer when the process's open files would then reach
  the soft ``RLIMIT_NOFILE`` minus a reserve (``fd_reserve``, by default a quarter of the
  soft limit, at least 64): those fds are the application's;
- an entry is bound to the mailbox address and port it was learned from: a beacon from
  elsewhere neither refreshes nor moves it, a port-0 beacon counts only from its address,
  and a HELLO naming another mailbox for a live UUID is ignored;
- a forgotten peer's inbound connection is hung up, so that the new one it opens is heard
  (there is no ROUTER_HANDOVER, see Engine.__init__);
- the inbox drops messages over ``max_message`` bytes (ZMQ_MAXMSGSIZE) and HELLOs over the
  header limits of :mod:`.wire`, or whose mailbox cannot be connected.
"""
from __future__ import annotations

import itertools
import logging
import math
import os
import resource
import socket
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Mapping

import zmq
from zmq.utils.monitor import parse_monitor_message

from zio.discovery import ENTER, EXIT, LEFT, LOST, STOPPED, PeerEvent, PeerInfo, Reporter
from zio.errors import ConfigurationError, DiscoveryError, MalformedError
from zio.interfaces import Interface
from zio.security import KEY_HEADER, Security

from . import wire
from .hub import HUB_MAX_SOCKETS, Hub

log = logging.getLogger(__name__)


#: Outbox events that mean the peer's mailbox is gone: its connection closed (process
#: died or stopped), or connecting was refused (nobody listens there: e.g. a HELLO that
#: arrived after its sender's goodbye must not bring back a ghost).
_MAILBOX_GONE = zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED
#: In secure mode also a refused CURVE handshake (its ZAP does not trust us, yet): libzmq
#: does not dial again, the next beacon does.
_SECURE_GONE = _MAILBOX_GONE | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
#: Secure mode: a newcomer's beacon is answered at once (see Engine._beacon_early); at most
#: one such early beacon in this many beacon intervals.
EARLY_BEACON_GAP = 0.25

#: ZeroMQ sockets one engine may open (libzmq's default is 1023: about 340 peers).
MAX_SOCKETS = 8192
#: Peers that have only beaconed (no HELLO yet) held at once; the oldest goes first.
MAX_PENDING = 256
#: File descriptors a pending peer costs (its DEALER's mailbox and its TCP connection),
#: and a ready one (plus the monitor pair and its connection to our inbox).
PENDING_FDS = 2
READY_FDS = 5
#: Seconds a pending peer is kept from eviction by newer beacons (not by a HELLO).
PENDING_GRACE = 1.0
#: Ready peers' worth of fds that pending peers leave free for peers that say HELLO.
PENDING_HEADROOM = 64
#: A peer that beacons without a HELLO is met afresh after this many ``expired`` periods.
PENDING_PATIENCE = 4
#: Peers gone since the last high-water mark after which freed memory is given back.
TRIM_AFTER = 64
#: Seconds between closing the outbox of a restarted session and opening its new one.
REOPEN_DELAY = 0.2
#: Longest the engine waits for libzmq to close a connection it hung up (see _hang_up).
HANG_UP_WAIT = 0.05
#: Largest mailbox message accepted (ZMQ_MAXMSGSIZE); a bigger one closes that connection.
DEFAULT_MAX_MESSAGE = 256 * 1024


def default_fd_reserve(soft_limit: int) -> int:
    """File descriptors discovery leaves to the application: a quarter of the soft limit, at least 64."""
    return max(64, soft_limit // 4)


def _soft_fd_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft


def _open_fds() -> int:
    """Open file descriptors of this process (/proc/self/fd), or 0 where that is unknown."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


class _FdLedger:
    """The process's open fds as the engines see them: measured at most every
    ``MEASURE_EVERY`` seconds, plus every engine's openings and closings since. Shared, so
    that two engines in one process do not both spend the same spare fds between two
    measurements. (libzmq closes a socket's fds a moment later, in its reaper thread:
    the measurement catches up with that.)"""

    MEASURE_EVERY = 0.25
    #: at most this share of one core goes to listing /proc/self/fd (18 ms for 7000 fds)
    MEASURE_SHARE = 0.02

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._measured = _open_fds()
        self._measured_at = time.monotonic()
        self._since = 0
        self._every = self.MEASURE_EVERY

    def count(self) -> int:
        with self._lock:
            return self._measured + self._since

    def add(self, fds: int) -> None:
        with self._lock:
            self._since += fds

    def measure(self, now: float) -> None:
        """Count the open fds again, at most every MEASURE_EVERY s for the whole process:
        listing /proc/self/fd costs milliseconds when thousands are open, and every engine
        ticks (25 engines listing 10 k fds each tick slowed 100 nodes' convergence)."""
        with self._lock:
            if now - self._measured_at < self._every:
                return
            self._measured_at = now
        fds = _open_fds()
        took = time.monotonic() - now
        with self._lock:
            self._every = max(self.MEASURE_EVERY, took / self.MEASURE_SHARE)
            if fds:
                self._measured, self._since = fds, 0


_LEDGER = _FdLedger()
#: the PING and PING-OK the engine sends (wire.with_sequence numbers them)
(_PING,) = wire.encode_message(wire.Ping(0))
(_PING_OK,) = wire.encode_message(wire.PingOk(0))
#: makes every monitor's inproc address new, across the engines of the process
_MONITOR_IDS = itertools.count()


def _far_end(fd: int) -> tuple[str, int] | None:
    """The remote (ip, port) of the TCP connection libzmq holds on ``fd``; None if unknown."""
    if fd < 0:
        return None
    try:
        with socket.socket(fileno=os.dup(fd)) as conn:
            return conn.getpeername()[:2]
    except OSError:
        return None


def _hang_up(router: zmq.Socket, fd: int, far_end: tuple[str, int] | None) -> None:
    """Shut down the inbound connection ``router`` holds on ``fd``, if it still goes to
    ``far_end``, and let libzmq finish closing it.

    libzmq has no call to drop one connection of a ROUTER. Shutting the socket down (through
    a duplicate of its fd: the same socket, and ours to close) makes libzmq read its end and
    close it, which frees the peer's routing id for the connection it opens next. The far
    end is checked first, on the duplicate, so an fd number reused since is left alone.

    The routing id is freed only when the router's own thread has processed the close, a
    round trip through libzmq's I/O thread. A connection under the same id whose handshake
    ends before that is parked for good, and its first message taken for its routing id
    (measured in a pyzmq-only reproduction: a reconnect right after the hang-up was lost 35
    times in 50 without the wait below, and 0 in 50 with it, also with three busy loops
    taking the CPU). So the router's commands are processed (ZMQ_EVENTS does) until libzmq
    has closed the fd, then for a few rounds more, for the acknowledgement to come back:
    about two milliseconds, at most ``HANG_UP_WAIT`` plus 1.5 ms.
    """
    if fd < 0 or far_end is None:
        return
    try:
        with socket.socket(fileno=os.dup(fd)) as conn:
            if conn.getpeername()[:2] != far_end:
                return
            conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        return  # already closed by libzmq (or not a socket any more): nothing to hang up
    deadline = time.monotonic() + HANG_UP_WAIT
    while _far_end(fd) == far_end and time.monotonic() < deadline:
        router.getsockopt(zmq.EVENTS)
        time.sleep(0.0002)
    for _ in range(3):
        time.sleep(0.0005)
        router.getsockopt(zmq.EVENTS)


def _trim_memory() -> None:
    """Give freed heap back to the system (glibc's malloc_trim; a no-op elsewhere).

    After a flood the sockets of thousands of made-up peers are freed, but glibc keeps the
    pages in its arenas (measured: RSS stayed at 43 MB after a 29 MB start); trimmed, it
    returns to 31 MB.
    """
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class Timing:
    """The engine's clock settings, in seconds."""

    interval: float = 1.0  # between beacons
    evasive: float = 2.0  # silence after which a peer is pinged
    expired: float = 4.0  # silence after which a peer is gone
    tick: float = 0.25  # how often silences are checked


@dataclass(frozen=True)
class Limits:
    """What the engine lets remote input cost (see the module docstring)."""

    max_message: int = DEFAULT_MAX_MESSAGE  # bytes; ZMQ_MAXMSGSIZE of the inbox
    fd_reserve: int | None = None  # fds left to the application; None: default_fd_reserve()
    max_pending: int = MAX_PENDING


@dataclass
class _Remote:
    """What the engine tracks of one remote peer."""

    uuid: uuidlib.UUID
    endpoint: str
    address: tuple[str, int]  # (ip, port) of the mailbox it was learned at: binds the entry
    outbox: zmq.Socket | None  # None between a session restart and the next tick
    monitor: zmq.Socket | None  # None while pending (only beaconed), and until the hub is idle
    last_seen: float
    name: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)
    ready: bool = False  # its HELLO arrived and its ENTER was reported
    sent_sequence: int = 0
    want_sequence: int = 0
    pinged_at: float = 0.0
    conn: int = -1  # our fd of the TCP connection its HELLO came on (ZMQ_SRCFD)
    conn_peer: tuple[str, int] | None = None  # that connection's far end, to know the fd again
    met_at: float = field(default_factory=time.monotonic)
    reopen_at: float = 0.0  # its session restarted: a new outbox is opened then (0: no)
    restarted_at: float = -math.inf  # when its session last restarted
    server_key: bytes = b""  # secure mode: the Z85 key its mailbox proved (as CURVE server)
    watched: bool = False  # said HELLO: its monitor is made (or comes when the hub is idle)


class Engine:
    """A ZRE node without a public API of its own: it feeds a Reporter."""

    def __init__(
        self,
        uuid: uuidlib.UUID,
        nickname: str,
        headers: Mapping[str, str],
        report: Reporter,
        interface: Interface,
        beacon_port: int,
        timing: Timing,
        limits: Limits | None = None,
        security: Security | None = None,
        share: bool = True,
    ):
        self.uuid = uuid
        #: Zyre's draft secure mode when set: version 3 beacons with our key, mailboxes over CURVE
        self.security = security
        self._warned: set[tuple[uuidlib.UUID, str]] = set()
        #: secure mode: peers whose beacons or HELLOs were refused: uuid -> (key, why, when)
        self.refused_keys: dict[uuidlib.UUID, tuple[bytes, str, float]] = {}
        self._refused_lock = threading.Lock()
        self._gone_events = _MAILBOX_GONE if security is None else _SECURE_GONE
        self.nickname = nickname
        self.headers = dict(headers)
        #: what the other Peers of the process are told of this one (one object for all)
        self.info = PeerInfo(uuid, nickname, dict(headers))
        # what the other engines of a hub report of this one: one object each, shared by all
        # their tables (1000 Peers of a process hold a million such events)
        self.enter_event = PeerEvent(ENTER, self.info)
        self.exit_events = {reason: PeerEvent(EXIT, self.info, reason) for reason in (LEFT, STOPPED)}
        self.report = report
        self.interface = interface
        self.beacon_port = beacon_port
        self.timing = timing
        self.limits = limits or Limits()
        self.remotes: dict[uuidlib.UUID, _Remote] = {}
        self.pending: dict[uuidlib.UUID, _Remote] = {}  # only beaconed, oldest first
        #: the other engines of this process's hub that this one reported (met in-process)
        self.locals: dict[uuidlib.UUID, Engine] = {}
        self._sockets = 0  # ZeroMQ sockets open: the inbox, then 1 per pending and 3 per ready peer
        self.evicted = 0  # pending peers evicted to make room (for tests and tools)
        self.refused = 0  # peers not met for want of fds or sockets
        self._high = 0  # most remotes held since memory was last trimmed
        self._trims_due = 0  # ticks at which memory is still to be trimmed
        # validate our own HELLO before anything is opened, so bad names or headers fail in
        # start() and leave no socket behind (the endpoint is not known yet: any will do)
        own = wire.Hello(1, "tcp://0.0.0.0:0", (), 0, nickname, self.headers)
        wire.encode_message(own)
        problem = wire.hello_problem(own)
        if problem:
            raise ConfigurationError(f"beacon headers of {nickname!r} over the limit: {problem}")
        self._stopped = False
        self._attached = False
        self.hub = Hub.acquire(interface, beacon_port, share=share, secure=security is not None)
        self.ctx = self.hub.ctx
        try:
            self.inbox = self.ctx.socket(zmq.ROUTER)
        except zmq.ZMQError as err:
            self.hub.release()
            raise DiscoveryError(f"beacon discovery cannot open its mailbox: {err}") from err
        self.sockets = 1
        self.inbox.setsockopt(zmq.LINGER, 0)
        # No ROUTER_HANDOVER (Zyre sets it): with it, one connection under a live peer's
        # routing id takes the id over and the peer's own connection goes deaf (measured:
        # its PINGs vanish until it expires), and libzmq 4.3.5 was reported leaking the
        # replaced connections. Without it the live connection keeps its id and a second
        # one is parked by libzmq. The price: a peer that reopens its outbox before its old
        # connection's end is seen here is parked too; it then beacons without a HELLO,
        # and is met afresh after ``expired`` (_check_silences): our new HELLO makes it
        # restart its session, on a new connection. zio itself opens the new outbox of a
        # restarted session a tick later, when the old connection's end has been seen.
        # Messages are bound to the connection the HELLO came on (ZMQ_SRCFD), and a peer
        # that is forgotten has that connection hung up (_hang_up): one whose far end
        # vanished without a word (a cut cable) would otherwise hold the routing id, and
        # park the peer's new connection, until TCP gave up on it. This costs no traffic
        # on an idle LAN, unlike TCP keepalive (measured: 1.0 -> 10 packets/s/node).
        self.inbox.setsockopt(zmq.ROUTER_HANDOVER, 0)
        self.inbox.setsockopt(zmq.MAXMSGSIZE, self.limits.max_message)
        try:
            if security is not None:
                security.apply_server(self.inbox)  # CURVE server behind the ZAP allow-list
            self.inbox.bind(f"tcp://{interface.address}:*")
        except (zmq.ZMQError, OSError) as err:
            self.inbox.close(0)
            self.sockets -= 1
            self.hub.release()
            raise DiscoveryError(f"beacon discovery cannot start on {interface}: {err}") from err
        self.endpoint = self.inbox.getsockopt_string(zmq.LAST_ENDPOINT)
        (self._hello_frame,) = wire.encode_message(self._hello(0))
        self.mailbox_port = int(self.endpoint.rsplit(":", 1)[1])
        self._stop_lock = threading.Lock()
        self.next_beacon = self.next_tick = 0.0  # the hub's schedule for this engine
        self.beacon_at = 0.0  # when the next beacon is due (off the hub's grid)
        self.early_sent = -math.inf  # when the last early beacon was due (secure mode)

    @property
    def sockets(self) -> int:
        """ZeroMQ sockets this engine holds (the hub keeps the sum for its context's limit)."""
        return self._sockets

    @sockets.setter
    def sockets(self, value: int) -> None:
        self.hub.sockets += value - self._sockets
        self._sockets = value

    @property
    def _thread(self) -> threading.Thread:
        """The thread that runs this engine: its hub's (shared by the Peers of the process)."""
        return self.hub.thread

    @property
    def running(self) -> bool:
        """True while the hub serves this engine (started, not stopped)."""
        return self._attached and not self._stopped and self.hub.thread.is_alive()

    # -- sockets ---------------------------------------------------------------------
    def _beacon(self, port: int) -> None:
        key = zmq.utils.z85.decode(self.security.public_key) if self.security is not None else b""
        data = wire.Beacon(self.uuid, port, key).encode()
        try:
            self.hub.send_udp.sendto(data, (self.interface.beacon_target, self.beacon_port))
        except OSError as err:
            log.warning("beacon to %s:%d failed: %s", self.interface.beacon_target, self.beacon_port, err)

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> None:
        """Join the hub: the first beacon leaves at once, local Peers are met at once."""
        self._attached = True
        if not self.hub.call(lambda: self.hub.attach(self)):
            log.warning("beacon engine of %s: its hub was slow to take it on", self.nickname)

    def stop(self, timeout: float = 5.0) -> None:
        """Say goodbye, close this engine's sockets and leave the hub; idempotent.

        Called from the hub's thread (a peer-event listener that stops its Peer, or another
        Peer of the process), it cannot wait: it only asks, and the hub detaches this
        engine as soon as the current event has been handled. The other engines of the
        hub go on; the hub's thread ends with its last engine.
        """
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        hub = self.hub
        if not self._attached:
            self.inbox.close(0)
            self.sockets -= 1
            hub.release()
            return
        if threading.current_thread() is hub.thread:
            hub.detach_soon(self)
            return

        def leave() -> None:
            hub.detach(self)
            hub.release()

        if not hub.call(leave, timeout):
            log.error("beacon engine of %s did not stop within %.1f s", self.nickname, timeout)
            return
        hub.join(timeout)

    def _close(self) -> None:
        # every peer we reported leaves with us, so that nobody keeps connecting to it
        for remote in list(self.remotes.values()):
            self._forget(remote, "this engine stopped", STOPPED)
        for other in list(self.locals.values()):
            self._local_exit(other, STOPPED)
        self.hub.unwatch(self.inbox)
        self.inbox.close(0)
        self.sockets -= 1

    # -- Peers of the same process ---------------------------------------------------------
    def _local_enter(self, other: "Engine") -> None:
        """Another engine of the hub: met in-process (its HELLO's content, no TCP)."""
        if other is self:
            return
        uuid = other.uuid
        locals_ = self.locals
        count = len(locals_)
        locals_.setdefault(uuid, other)
        if len(locals_) == count:
            return  # met already
        if self.remotes:
            stale = self.remotes.get(uuid)
            if stale is not None:
                self._forget(stale, "it lives in this process")
        self.report(other.enter_event)

    def _local_exit(self, other: "Engine", reason: str = LEFT) -> None:
        """An engine of the hub stopped (``LEFT``), or this one did (``STOPPED``)."""
        if self.locals.pop(other.uuid, None) is not None:
            self.report(other.exit_events[reason])

    def _dispatch(self, sock: object) -> None:
        """Handle one ready socket; network input never raises out of here."""
        try:
            if sock is self.inbox:
                frames = self.inbox.recv_multipart(zmq.NOBLOCK, copy=False)
                conn = frames[-1].get(zmq.SRCFD)
                user = str(frames[-1].get("User-Id")) if self.security is not None else None
                self._on_mail([frame.bytes for frame in frames], int(conn), user)
            elif isinstance(sock, zmq.Socket):
                self._on_monitor(sock)
        except zmq.Again:
            pass
        except MalformedError as err:
            log.info("dropped malformed input: %s", err)
        except Exception:  # a bug must cost one input, not the whole discovery
            log.exception("%s: unexpected error handling network input; dropped it", self.nickname)

    # -- beacons ---------------------------------------------------------------------
    def _on_datagram(self, data: bytes, ip: str, beacon: wire.Beacon | None = None) -> None:
        """One UDP datagram from ``ip``, heard by the hub (``beacon``: already decoded);
        network input never raises out of here."""
        try:
            self._on_beacon(data, ip, beacon)
        except MalformedError as err:
            log.info("dropped malformed input: %s", err)
        except Exception:  # a bug must cost one input, not the whole discovery
            log.exception("%s: unexpected error handling a beacon; dropped it", self.nickname)

    def _on_beacon(self, data: bytes, ip: str, beacon: wire.Beacon | None) -> None:
        if beacon is None:
            try:
                beacon = wire.Beacon.decode(data, secure=self.security is not None)
            except MalformedError as err:
                log.debug("dropped beacon from %s: %s", ip, err)
                if self.security is not None:
                    self._downgrade(data)
                return
        server_key = b""
        if beacon.public_key:
            server_key = zmq.utils.z85.encode(beacon.public_key)
            if not beacon.is_leaving and beacon.uuid != self.uuid and not self._trusts(beacon.uuid, server_key):
                return
        if beacon.uuid == self.uuid or beacon.uuid in self.hub.local:
            return  # ourselves, or a Peer of this process: met in-process
        if ip == "0.0.0.0":
            # pyre's beacons on loopback arrive so: only this host can send them
            ip = self.interface.address
        remote = self.remotes.get(beacon.uuid)
        if beacon.is_leaving:
            # only from the address it was learned at: anyone else may not say it goes
            if remote is not None and remote.address[0] == ip:
                self._forget(remote, "said goodbye", LEFT)
            return
        if remote is None:
            met = self._meet(beacon.uuid, f"tcp://{ip}:{beacon.port}", (ip, beacon.port), server_key=server_key)
            if met is not None and self.security is not None:
                self._beacon_early()
        elif remote.address == (ip, beacon.port) and remote.server_key == server_key:
            remote.last_seen = time.monotonic()
        else:
            # not where we met it: a spoofer, or a restart elsewhere whose old mailbox
            # still lives (when it dies, the monitor says so and the next beacon meets it)
            log.debug("beacon for %s from %s:%d ignored: it lives at %s", beacon.uuid, ip, beacon.port, remote.endpoint)

    def _beacon_early(self) -> None:
        """Secure mode: answer a newcomer's beacon with ours now, so that it connects to us
        while we connect to it. Each connection costs a CURVE handshake and a ZAP decision
        (a CURVE handshake alone took 1.2-1.8 ms on loopback here); without this the newcomer learns of us only from our
        HELLO, after the first handshake, and the two run one after the other. The schedule
        moves (the next beacon comes an interval after this one), and at most one early
        beacon leaves per ``EARLY_BEACON_GAP`` intervals: a stream of newcomers (or of forged
        beacons carrying a trusted key) raises our rate to at most 1 / EARLY_BEACON_GAP
        beacons per interval."""
        now = time.monotonic()
        if now - self.early_sent < self.timing.interval * EARLY_BEACON_GAP:
            return
        self.early_sent = now
        self.beacon_at = self.next_beacon = now
        self.hub.due(now)

    # -- remotes -------------------------------------------------------------------------
    def _room(self, fds: int, sockets: int, pending: bool) -> bool:
        """Whether ``fds`` more file descriptors and ``sockets`` more ZeroMQ sockets fit.

        Pending peers may not take the last ``PENDING_HEADROOM`` peers' worth of what
        discovery may use (at most a quarter of it): that stays for peers that say HELLO, so
        that an engine whose neighbour in the process is full of pending peers can still
        meet a real one. (A quarter outright starved 100 real nodes in 4 processes: each
        process needs 12 k fds of its 15 k budget, and new ones were refused past 11 k.)
        """
        soft = _soft_fd_limit()
        reserve = self.limits.fd_reserve if self.limits.fd_reserve is not None else default_fd_reserve(soft)
        budget = soft - reserve
        if pending:
            budget -= min(budget // 4, PENDING_HEADROOM * READY_FDS)
        return (
            _LEDGER.count() + fds <= budget
            and self.sockets + sockets <= MAX_SOCKETS - 8
            and self.hub.sockets + sockets <= HUB_MAX_SOCKETS - 8
        )

    def _make_room(self, fds: int, sockets: int, pending: bool = False) -> bool:
        """Evict pending peers, oldest first, until ``fds``/``sockets`` fit; False if they never do."""
        while not self._room(fds, sockets, pending):
            if not self.pending:
                return False
            self._forget(next(iter(self.pending.values())), "evicted: room was needed")
            self.evicted += 1
        return True

    def _meet(
        self, uuid: uuidlib.UUID, endpoint: str, address: tuple[str, int], greeted: bool = False, server_key: bytes = b""
    ) -> _Remote | None:
        """Open a pending outbox to a peer that beaconed and greet it; None if there is no room.

        A pending peer costs one ZeroMQ socket and two fds. Past ``max_pending`` of them, or
        when the fds would eat into the application's reserve, the oldest pending peer is
        evicted (a peer that matters says HELLO, and is met again then). Never fatal.
        ``greeted``: the peer said HELLO and the caller made room for a ready peer.
        """
        if not greeted and len(self.pending) >= self.limits.max_pending:
            oldest = next(iter(self.pending.values()))
            if time.monotonic() - oldest.met_at < PENDING_GRACE:
                # all had less than a second to say HELLO: this beacon waits (a real peer
                # says HELLO to us anyway). Bounds the churn of a flood to max_pending per
                # PENDING_GRACE: at 10 k/s churn, libzmq's reaper fell behind the closes
                self._refuse(uuid, f"{len(self.pending)} peers already wait for a HELLO")
                return None
            self._forget(oldest, "evicted by a newer beacon")
            self.evicted += 1
        if not greeted and not self._make_room(PENDING_FDS, 1, pending=True):
            self._refuse(uuid, "no file descriptors to spare")
            return None
        outbox = self._outbox(uuid)
        if outbox is None:
            return None
        try:
            if self.security is not None:
                self.security.apply_client(outbox, server_key)
            outbox.connect(endpoint)
        except zmq.ZMQError as err:
            log.info("cannot reach peer %s at %s: %s", uuid, endpoint, err)
            outbox.close(0)
            self.sockets -= 1
            raise MalformedError(f"unusable endpoint {endpoint!r}") from err
        remote = _Remote(uuid, endpoint, address, outbox, None, time.monotonic(), server_key=server_key)
        self.remotes[uuid] = remote
        self.pending[uuid] = remote
        _LEDGER.add(PENDING_FDS)
        self._send(remote, self._hello_frame)
        log.debug("%s meets %s at %s", self.nickname, uuid, endpoint)
        return remote

    def _refuse(self, uuid: uuidlib.UUID, why: str) -> None:
        self.refused += 1
        if self.refused == 1 or self.refused % 1000 == 0:
            log.warning("%s cannot open a mailbox to peer %s now (%s; %d refused so far)", self.nickname, uuid, why, self.refused)

    def _outbox(self, uuid: uuidlib.UUID) -> zmq.Socket | None:
        try:
            outbox = self.ctx.socket(zmq.DEALER)
        except zmq.ZMQError as err:
            self._refuse(uuid, str(err))
            return None
        self.sockets += 1
        outbox.setsockopt(zmq.LINGER, 0)
        outbox.setsockopt(zmq.ROUTING_ID, wire.routing_id_for(self.uuid))
        outbox.setsockopt(zmq.SNDHWM, 1000)
        return outbox

    def _watch(self, remote: _Remote) -> None:
        """A peer said HELLO: it is ready, and gets its outbox monitor when the hub is idle.

        The monitor (two more sockets and an inproc connection, measured at about 0.5 ms)
        is what sees the peer's death at once; until it comes, silence does. Made at once,
        the monitors of a burst of newcomers were about a third of the hub's work while 100
        nodes met; so the hub makes them once it has nothing else to do (Hub.later), and
        peers are reported as soon as they said HELLO.
        """
        assert remote.outbox is not None  # a pending or reopened peer has its outbox
        remote.watched = True
        _LEDGER.add(READY_FDS - PENDING_FDS)
        self.pending.pop(remote.uuid, None)
        self.hub.later(lambda: self._add_monitor(remote))

    def _add_monitor(self, remote: _Remote) -> None:
        """Give a peer that said HELLO its outbox monitor; forget it if there is no room."""
        if (
            self._stopped
            or self.remotes.get(remote.uuid) is not remote
            or not remote.watched
            or remote.monitor is not None
            or remote.outbox is None
        ):
            return  # forgotten, restarted or stopped meanwhile: a new watch was asked for
        monitor = None
        try:
            # a new address every time: the one of a monitor just closed may still be bound,
            # and the engines of a hub share one context (inproc addresses are per context)
            monitor_address = f"inproc://zio-monitor-{remote.uuid.hex}-{next(_MONITOR_IDS)}"
            remote.outbox.monitor(monitor_address, self._gone_events)
            monitor = self.ctx.socket(zmq.PAIR)
            monitor.setsockopt(zmq.LINGER, 0)
            monitor.connect(monitor_address)
        except zmq.ZMQError as err:
            self._refuse(remote.uuid, str(err))
            try:
                remote.outbox.disable_monitor()
            except zmq.ZMQError:
                pass
            if monitor is not None:
                monitor.close(0)
            self._forget(remote, "no room for its monitor")
            return
        self.sockets += 2
        remote.monitor = monitor
        self.hub.watch(monitor, self)

    def _hello(self, sequence: int) -> wire.Hello:
        return wire.Hello(sequence, self.endpoint, (), 0, self.nickname, self.headers)

    def _send(self, remote: _Remote, frame: bytes) -> None:
        """Send one of the engine's messages (``self._hello_frame``, ``_PING``, ``_PING_OK``)
        with the next sequence number for ``remote``; never blocks.

        The frames are encoded once and only their sequence number changes: encoding a HELLO
        for each of 1875 remotes was an eighth of a hub's work while 100 nodes met.
        """
        if remote.outbox is None:
            return  # reopening: the HELLO on the new outbox starts the count again
        remote.sent_sequence = wire.next_sequence(remote.sent_sequence)
        try:
            remote.outbox.send(wire.with_sequence(frame, remote.sent_sequence), zmq.NOBLOCK)
        except zmq.ZMQError as err:
            log.debug("send to %s dropped: %s", remote.uuid, err)

    def _drop_sockets(self, remote: _Remote) -> None:
        if remote.outbox is None:
            return
        if remote.monitor is not None:
            self.hub.unwatch(remote.monitor)
            try:
                remote.outbox.disable_monitor()
            except zmq.ZMQError:
                pass
            remote.monitor.close(0)
            self.sockets -= 2
        if remote.watched:
            _LEDGER.add(PENDING_FDS - READY_FDS)
        remote.outbox.close(0)
        self.sockets -= 1
        _LEDGER.add(-PENDING_FDS)
        remote.outbox = remote.monitor = None
        remote.watched = False

    def _reopen(self, remote: _Remote) -> None:
        """Open a new outbox to a peer whose session restarted, and say HELLO on it."""
        remote.reopen_at = 0.0
        if not self._make_room(READY_FDS, 3):
            self._refuse(remote.uuid, "no file descriptors to spare")
            self._forget(remote, "no room to greet it again")
            return
        outbox = self._outbox(remote.uuid)
        if outbox is None:
            self._forget(remote, "no room to greet it again")
            return
        try:
            if self.security is not None:
                self.security.apply_client(outbox, remote.server_key)
            outbox.connect(remote.endpoint)
        except zmq.ZMQError:
            outbox.close(0)
            self.sockets -= 1
            self._forget(remote, "its endpoint became unusable")
            return
        remote.outbox = outbox
        _LEDGER.add(PENDING_FDS)
        self._watch(remote)
        remote.sent_sequence = 0
        self._send(remote, self._hello_frame)

    def _forget(self, remote: _Remote, why: str, reason: str = LOST) -> None:
        """Remove a peer; report its exit (with ``reason``) if its entry was reported."""
        if self.remotes.pop(remote.uuid, None) is None:
            return
        self.pending.pop(remote.uuid, None)
        self._drop_sockets(remote)
        if reason != STOPPED:
            _hang_up(self.inbox, remote.conn, remote.conn_peer)
        log.debug("%s forgets %s (%s): %s", self.nickname, remote.name, remote.uuid, why)
        if remote.ready:
            self.report(PeerEvent(EXIT, PeerInfo(remote.uuid, remote.name, dict(remote.headers)), reason))

    def _on_monitor(self, monitor: zmq.Socket) -> None:
        event = parse_monitor_message(monitor.recv_multipart(zmq.NOBLOCK))
        if not event["event"] & self._gone_events:
            return
        why = "its connection closed" if event["event"] == zmq.EVENT_DISCONNECTED else "its mailbox refused us"
        for remote in list(self.remotes.values()):
            if remote.monitor is monitor:
                self._forget(remote, why)

    def _check_silences(self, now: float) -> None:
        _LEDGER.measure(now)
        self._high = max(self._high, len(self.remotes))
        if self._high - len(self.remotes) >= TRIM_AFTER:
            # many peers went (a flood ended): give their memory back, now and at the next
            # ticks too (libzmq frees a closed socket's memory later, in its reaper thread)
            self._trims_due = 3
            self._high = len(self.remotes)
        if self._trims_due:
            self._trims_due -= 1
            _trim_memory()
        # silence is counted up to when the hub last had every queued beacon handled (see
        # Hub.heard_at), and so is a pending peer's patience
        heard = min(now, self.hub.heard_at)
        for remote in list(self.remotes.values()):
            if self.security is not None and not self.security.is_trusted(remote.server_key):
                self._forget(remote, "its key is no longer trusted")
                continue
            if remote.reopen_at and now >= remote.reopen_at:
                self._reopen(remote)
            if remote.uuid not in self.remotes:
                continue
            silent = heard - remote.last_seen
            if silent >= self.timing.expired:
                self._forget(remote, f"silent for {silent:.1f} s")
            elif not remote.ready and heard - remote.met_at >= PENDING_PATIENCE * self.timing.expired:
                # it beacons but never says HELLO: a spoofer, or a peer whose new connection
                # libzmq parked behind its old one (no ROUTER_HANDOVER); meet it afresh. Not
                # sooner: under load a real HELLO takes seconds, and meeting afresh too early
                # parks our own new connection behind the old one (measured: 100 nodes in 4
                # processes never converged with a patience of 1 x expired; 6.3 s without it)
                self._forget(remote, "beacons without a HELLO")
            elif silent >= self.timing.evasive and now - remote.pinged_at >= self.timing.evasive:
                remote.pinged_at = now
                self._send(remote, _PING)

    # -- mail ---------------------------------------------------------------------------
    def _on_mail(self, frames: list[bytes], conn: int = -1, user: str | None = None) -> None:
        """One message on our mailbox, from connection ``conn``; in secure mode ``user`` is
        the Z85 key that connection proved."""
        if len(frames) < 2:
            raise MalformedError(f"mailbox message of {len(frames)} frame(s)")
        sender = wire.uuid_from_routing_id(frames[0])
        if sender == self.uuid:
            # only an impostor, or our own outbox lured to our inbox, writes in our name
            raise MalformedError("mail in our own name: a peer never meets itself")
        if sender in self.hub.local:
            # Peers of this process meet in-process, never over TCP: an impostor
            raise MalformedError(f"mail in the name of {sender}, a Peer of this process")
        msg = wire.decode_message(frames[1:])
        remote = self.remotes.get(sender)
        if isinstance(msg, wire.Hello):
            key = b""
            if self.security is not None:
                claimed = msg.headers.get(KEY_HEADER, "")
                if not user or claimed != user:
                    raise MalformedError(f"HELLO from {sender} claims key {claimed!r}, its connection proved {user!r}")
                key = claimed.encode()
                if not self._trusts(sender, key, msg.name):
                    return
                if remote is not None and remote.server_key != key:
                    if remote.ready:
                        log.info("ignored HELLO for live peer %s with another key", sender)
                        return
                    self._forget(remote, "its HELLO has another key than its beacon")
                    remote = None
            self._on_hello(sender, msg, remote, conn, key)
            return
        if remote is None or not remote.ready:
            log.debug("ignored %s from a peer that has not said HELLO: %s", type(msg).__name__, sender)
            return
        in_sequence = wire.sequence_follows(wire.next_sequence(remote.want_sequence), msg.sequence)
        if conn != remote.conn:
            # not the connection its HELLO came on: the peer's outbox reconnected (then it
            # goes on with the next sequence number, and we follow it there), or someone
            # else uses its routing id: that is dropped, and evicts nothing
            if not in_sequence:
                log.info("dropped %s for %s from another connection (sequence %d)", type(msg).__name__, sender, msg.sequence)
                return
            remote.conn, remote.conn_peer = conn, _far_end(conn)
        if not in_sequence:
            self._forget(remote, f"lost messages (sequence {msg.sequence})")
            return
        remote.want_sequence = msg.sequence
        remote.last_seen = time.monotonic()
        if isinstance(msg, wire.Ping):
            self._send(remote, _PING_OK)
        elif isinstance(msg, wire.Join):
            remote.groups.add(msg.group)
        elif isinstance(msg, wire.Leave):
            remote.groups.discard(msg.group)
        elif isinstance(msg, (wire.Whisper, wire.Shout)):
            log.debug("%s from %s not delivered: zio does not expose ZRE groups yet", type(msg).__name__, remote.name)

    def _on_hello(
        self, sender: uuidlib.UUID, hello: wire.Hello, remote: _Remote | None, conn: int = -1, key: bytes = b""
    ) -> None:
        address = wire.tcp_endpoint(hello.endpoint)  # MalformedError if it cannot be connected
        problem = wire.hello_problem(hello)
        if problem:
            raise MalformedError(f"HELLO from {sender} over the limits: {problem}")
        if remote is not None and remote.address != address:
            if remote.ready:
                # a second identity claim for a live peer, naming another mailbox: the first stands
                log.info("ignored HELLO for live peer %s naming %s: it lives at %s", sender, hello.endpoint, remote.endpoint)
                return
            self._forget(remote, f"said HELLO from {hello.endpoint}")  # a pending guess, replaced
            remote = None
        if (
            remote is not None
            and remote.ready
            and time.monotonic() - remote.restarted_at < self.timing.expired
            and (hello.name, dict(hello.headers)) == (remote.name, remote.headers)
        ):
            # the same peer answering our own restart of this session (its new connection's
            # HELLO): taken as the session's HELLO; restarting again would start a ping-pong
            # (measured: 83 restarts in a row while 100 nodes met)
            log.debug("%s: %s (%s) answered our restart", self.nickname, remote.name, sender)
            remote.conn, remote.conn_peer = conn, _far_end(conn)
            remote.want_sequence = hello.sequence
            remote.last_seen = time.monotonic()
            return
        elif remote is not None and remote.ready:
            # a second HELLO: the peer restarted its session; start over with it on a new
            # outbox (a new connection clears one of ours its ROUTER may have parked), opened
            # at the first tick REOPEN_DELAY later, once the peer's ROUTER has seen our old
            # connection end (a new one that came first would be parked there)
            log.debug("%s: %s (%s) said HELLO again", self.nickname, remote.name, sender)
            self.report(PeerEvent(EXIT, PeerInfo(remote.uuid, remote.name, dict(remote.headers)), LOST))
            self._drop_sockets(remote)
            remote.reopen_at = time.monotonic() + REOPEN_DELAY
            remote.restarted_at = time.monotonic()
        elif remote is None:
            self.pending.pop(sender, None)
            if not self._make_room(READY_FDS, 3):
                self._refuse(sender, "no file descriptors to spare")
                return
            remote = self._meet(sender, hello.endpoint, address, greeted=True, server_key=key)
            if remote is None:
                return
        if not remote.reopen_at and not remote.watched:
            self._watch(remote)
        remote.name = hello.name
        remote.headers = dict(hello.headers)
        remote.groups = set(hello.groups)
        remote.want_sequence = hello.sequence
        remote.last_seen = time.monotonic()
        remote.ready = True
        remote.conn, remote.conn_peer = conn, _far_end(conn)
        self.report(PeerEvent(ENTER, PeerInfo(sender, hello.name, dict(hello.headers))))

    # -- secure mode ----------------------------------------------------------------------
    def _trusts(self, uuid: uuidlib.UUID, key: bytes, nick: str | None = None) -> bool:
        """Secure mode: True if ``key`` is trusted (and may be ``nick``); else log once."""
        assert self.security is not None
        why: str | None
        if not key:
            why = "sends beacons without a key: its security is off"
        elif nick is not None:
            why = self.security.refusal(key, nick)
        else:
            why = None if self.security.is_trusted(key) else f"advertises key {key.decode()}, which is not trusted"
        with self._refused_lock:
            if why is None:
                self.refused_keys.pop(uuid, None)
                return True
            if len(self.refused_keys) >= 1000:
                self.refused_keys.clear()  # bounded, whatever a noisy network sends
            self.refused_keys[uuid] = (key, why, time.monotonic())
        if (uuid, why) not in self._warned:
            if len(self._warned) >= 1000:
                self._warned.clear()
            self._warned.add((uuid, why))
            log.warning("secure beacon %s: ignoring peer %s: it %s", self.nickname, uuid, why)
        return False

    def _downgrade(self, data: bytes) -> None:
        """Secure mode: a plain beacon is tossed (no downgrade); say so once per peer."""
        try:
            plain = wire.Beacon.decode(data)
        except MalformedError:
            return
        if not plain.is_leaving and plain.uuid != self.uuid:
            self._trusts(plain.uuid, b"")

    def refused_peers(self) -> list[tuple[uuidlib.UUID, bytes, str]]:
        """Secure mode: peers refused within the last ``expired`` seconds (uuid, key, why)."""
        now = time.monotonic()
        with self._refused_lock:
            return [(u, k, why) for u, (k, why, when) in self.refused_keys.items() if now - when < self.timing.expired]

    def groups_of(self, uuid: uuidlib.UUID) -> set[str]:
        """The ZRE groups a peer has joined (for tests and tools; zio has no group API yet)."""
        remote = self.remotes.get(uuid)
        return set(remote.groups) if remote else set()


__all__ = ["Engine", "Timing"]
