"""Liveness for mDNS peers over ZeroMQ: one thread owns every socket, fed through a queue.

Each peer binds a ROUTER "liveness" socket and advertises it in its TXT record. For every
zio record it sees, the observer connects a DEALER there with a socket monitor:

- when the ZMTP handshake succeeds, the DEALER asks ``?`` and the ROUTER answers with its
  16-byte UUID; only a matching answer makes the peer enter (a stale record whose port
  was reused by another process cannot bring a dead peer back);
- ``EVENT_DISCONNECTED`` makes the peer leave at once (a killed process closes its TCP
  connections; a stopped one closes its ROUTER);
- ZMTP heartbeats (PING every ``heartbeat`` s, disconnect after ``expired`` s without
  traffic) catch a host that went silent, within ``heartbeat + expired`` seconds;
- the DEALER keeps redialling (backing off up to 5 s) for as long as zeroconf keeps the
  record, so a peer whose host comes back enters again; a liveness socket that answers
  with another UUID (a stale record, its port reused) is hung up on until the record
  changes.

zeroconf's callbacks only put commands on the queue and wake the thread through a pipe:
no ZeroMQ socket is ever touched outside the engine's thread.

Bounded (a LAN can announce any number of services, and a hostile one will). At most
``Limits.max_remotes`` services are dialled at a time, and none once the process has fewer
than ``FD_RESERVE`` of its soft ``RLIMIT_NOFILE`` free: those fds are the application's.
Each watched remote costs ``FDS_PER_REMOTE`` fds and ``SOCKETS_PER_REMOTE`` ZeroMQ sockets
(the context's socket limit is raised to match). When the table is full, a new service
takes the place of the remote dialled longest ago that never answered (a peer that
answered is never pushed out); the records left over wait in a bounded queue
("parked") and take turns, every ``reconnect_max`` seconds, with the remotes that still
have not answered. Every message on a liveness socket is at most ``Limits.max_msg_size``
bytes (``ZMQ_MAXMSGSIZE``: libzmq drops a connection that sends more). No error from one
record, one socket or one resource shortage stops the thread: it is logged (at most once
per ``WARN_EVERY`` seconds per kind), the offending remote is dropped, and the loop goes on.
"""
from __future__ import annotations

import collections
import itertools
import logging
import os
import queue
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

import zmq
from zmq.utils.monitor import parse_monitor_message

from zio.discovery import ENTER, EXIT, STOPPED, PeerEvent, PeerInfo, Reporter
from zio.errors import DiscoveryError
from zio.security import KEY_HEADER, Security, release_zap

from .txt import PeerRecord

log = logging.getLogger(__name__)

ASK = b"?"
_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
#: Secure mode (issue 12): the liveness connection is a CURVE handshake with the key in the
#: peer's TXT, so it proves the key; a refused handshake (its ZAP does not trust us, yet)
#: is dialled again after a pause (libzmq does not), doubled up to the maximum (seconds).
_SECURE_EVENTS = _EVENTS | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
SECURE_RETRY_S = (0.25, 2.0)
#: ZMQ_MAXMSGSIZE of secure liveness sockets: room for CURVE's handshake commands.
SECURE_MSG_SIZE = 1024


#: Part of the soft RLIMIT_NOFILE kept free for the application: no remote is dialled
#: while fewer than this share of the limit is free (with the limit at 1024: 512 fds).
FD_RESERVE = 0.5
#: fds one watched remote costs: DEALER, libzmq's monitor PAIR and ours (one eventfd each)
#: and the TCP connection.
FDS_PER_REMOTE = 4
#: ZeroMQ sockets one watched remote costs (DEALER and the two monitor PAIRs).
SOCKETS_PER_REMOTE = 3
#: Ceiling of the default ``max_remotes`` (the fd budget usually decides first).
MAX_REMOTES = 1024
#: Default ``ZMQ_MAXMSGSIZE`` of liveness sockets: the protocol's messages are 1 and 16 bytes.
MAX_MSG_SIZE = 256
#: Parked records kept, as a multiple of ``max_remotes``.
PARKED_FACTOR = 4
#: Seconds between two warnings of one kind (a flood must not flood the log too).
WARN_EVERY = 10.0


def fd_limit() -> int | None:
    """The soft RLIMIT_NOFILE of the process, or None where there is none."""
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def open_fds() -> int | None:
    """How many fds the process has open (Linux: /proc/self/fd), or None when unknown."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def default_max_remotes() -> int:
    """What the fd budget allows: the soft limit less the reserve, FDS_PER_REMOTE per remote."""
    soft = fd_limit()
    if soft is None:
        return MAX_REMOTES
    return max(1, min(MAX_REMOTES, int(soft * (1 - FD_RESERVE)) // FDS_PER_REMOTE))


#: Numbers that make each monitor's inproc address unique in the process.
_MONITOR_IDS = itertools.count()

@dataclass(frozen=True)
class Limits:
    """Resource bounds of the liveness engine (defaults: see the module constants)."""

    max_remotes: int = 0  # 0: default_max_remotes()
    max_msg_size: int = MAX_MSG_SIZE  # bytes, ZMQ_MAXMSGSIZE of every liveness socket

    def remotes(self) -> int:
        """The effective bound on dialled remotes."""
        return self.max_remotes if self.max_remotes > 0 else default_max_remotes()


@dataclass(frozen=True)
class Timing:
    """Liveness settings, in seconds."""

    heartbeat: float = 1.0  # ZMTP PING interval
    expired: float = 3.0  # silence after a PING before the connection is dropped
    reconnect_max: float = 5.0  # longest pause between redials


@dataclass
class _Remote:
    """One observed service: its record, the DEALER watching it, and whether it is in."""

    name: str
    record: PeerRecord
    dealer: zmq.Socket
    monitor: zmq.Socket
    alive: bool = False
    since: float = 0.0  # monotonic time of the dial

    def info(self) -> PeerInfo:
        """The PeerInfo reported for this remote."""
        return PeerInfo(self.record.uuid, self.record.nick, dict(self.record.headers))


class Engine:
    """The liveness thread: a ROUTER of our own plus one watched DEALER per remote peer."""

    def __init__(
        self,
        uuid: uuidlib.UUID,
        nickname: str,
        address: str,
        report: Reporter,
        timing: Timing,
        limits: Limits | None = None,
        security: Security | None = None,
    ):
        self.uuid = uuid
        self.security = security
        #: secure mode: records refused (untrusted key, pin, none): name -> (record, why)
        self.refused: dict[str, tuple[PeerRecord, str]] = {}
        self._refused_warned: set[tuple[uuidlib.UUID, str]] = set()
        self._retry: dict[str, tuple[PeerRecord, float, float]] = {}  # name -> record, when, pause
        self.nickname = nickname
        self.report = report
        self.timing = timing
        self.limits = limits or Limits()
        self.max_remotes = self._max_configured = self.limits.remotes()
        self.remotes: dict[str, _Remote] = {}
        # records waiting for a free place, oldest first
        self.parked: collections.OrderedDict[str, PeerRecord] = collections.OrderedDict()
        self._owners: dict[zmq.Socket, _Remote] = {}  # DEALER or monitor -> its remote
        self._warned_at: dict[str, float] = {}
        self._next_turn = 0.0  # when parked records next take turns
        soft = fd_limit()
        self._fd_ceiling = None if soft is None else soft - int(soft * FD_RESERVE)
        self.ctx = zmq.Context()
        # twice the sockets watched: a closed socket counts until libzmq's reaper has freed
        # it, and under churn (services dialled, refused, let go) the cap was hit with only
        # a few remotes open, which shrank max_remotes (the fd ceiling still bounds fds)
        self.ctx.set(zmq.MAX_SOCKETS, 2 * SOCKETS_PER_REMOTE * self.max_remotes + 16)
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, self._max_msg_size)
        if security is not None:
            security.apply_server(self.router)  # CURVE server behind the ZAP allow-list
        # no heartbeats of its own: each observer's PINGs carry a TTL after which the ROUTER
        # drops a silent observer's connection, so idle traffic is one PING/PONG per watch
        try:
            self.router.bind(f"tcp://{address}:*")
        except zmq.ZMQError as err:
            self.router.close(0)
            release_zap(self.ctx)
            self.ctx.term()
            raise DiscoveryError(f"mdns liveness socket cannot bind on {address}: {err}") from err
        self.endpoint: str = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        self._commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._poller = zmq.Poller()
        self._thread = threading.Thread(target=self._run, name=f"zio-mdns-{nickname}", daemon=True)
        self._lock = threading.Lock()
        self._stopped = False
        self._closed = False  # _close() ran (it holds _lock while it decides)

    # -- commands (any thread) ----------------------------------------------------------
    def _post(self, command: str, arg: Any) -> None:
        with self._lock:
            if self._stopped:
                return
            self._commands.put((command, arg))
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already

    def see(self, name: str, record: PeerRecord) -> None:
        """zeroconf reports the record of service ``name`` (new or refreshed)."""
        self._post("see", (name, record))

    def lose(self, name: str) -> None:
        """zeroconf reports that service ``name`` is gone (goodbye, expiry, or bad record)."""
        self._post("lose", name)

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close every socket (peers see our ROUTER go) and report every remote's exit; idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._commands.put(("stop", None))
            if not self._closed:
                try:
                    os.write(self._wake_w, b"x")
                except BlockingIOError:
                    pass
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("mdns liveness engine of %s did not stop within %.1f s", self.nickname, timeout)
                return
        if not self._thread.is_alive():
            self._close()
        # else: stop() was called from a report listener; the thread closes on its way out

    def _close(self) -> None:
        """Close everything, once: the engine's thread and stop() may both get here, and a
        second close of the wake-up pipe would close fds another object got since."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for remote in list(self.remotes.values()):
            self._forget(remote, "we stopped", reason=STOPPED)
        self.router.close(0)
        release_zap(self.ctx)
        self.ctx.term()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- the loop -------------------------------------------------------------------------
    def _run(self) -> None:
        poller = self._poller
        poller.register(self.router, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        try:
            while True:
                try:
                    ready = poller.poll(self._poll_timeout())
                except zmq.ZMQError as err:  # EINTR and the like: poll again
                    self._warn("poll", "mdns liveness poll failed: %s", err)
                    time.sleep(0.01)
                    continue
                for sock, _ in ready:
                    if sock == self._wake_r:
                        os.read(self._wake_r, 4096)
                        if not self._run_commands():
                            return
                    else:
                        self._dispatch(sock)
                self._take_turns()
                self._retry_due()
        except Exception:  # a bug, not an input: the loop itself catches what inputs raise
            log.exception("mdns liveness engine of %s failed; peers are no longer watched", self.nickname)
        finally:
            if self._stopped:
                self._close()

    def _warn(self, kind: str, message: str, *args: Any) -> None:
        """Log a warning of ``kind`` at most once per WARN_EVERY seconds."""
        now = time.monotonic()
        if now - self._warned_at.get(kind, -WARN_EVERY) >= WARN_EVERY:
            self._warned_at[kind] = now
            log.warning(message, *args)

    def _run_commands(self) -> bool:
        """Apply queued commands; False once "stop" is among them. A failing command is logged."""
        while True:
            try:
                command, arg = self._commands.get_nowait()
            except queue.Empty:
                return True
            if command == "stop":
                return False
            name = arg[0] if command == "see" else arg
            try:
                if command == "see":
                    self._see(*arg)
                elif command == "retrust":
                    self._retrust()
                elif command == "lose":
                    self.refused.pop(arg, None)
                    self._retry.pop(arg, None)
                    self.parked.pop(arg, None)
                    remote = self.remotes.get(arg)
                    if remote is not None:
                        self._forget(remote, "its record went away")
            except Exception as err:  # noqa: BLE001 - one record must not stop the engine
                self._warn("command", "mdns: dropped %r after an error: %r", name, err)
                self._drop(name)

    def _drop(self, name: str) -> None:
        """Forget service ``name`` after an error, quietly unless closing fails too."""
        self.parked.pop(name, None)
        remote = self.remotes.get(name)
        if remote is not None:
            try:
                self._forget(remote, "an error")
            except Exception:  # noqa: BLE001
                self.remotes.pop(name, None)
                log.exception("mdns: could not close the sockets of %r", name)

    def _dispatch(self, sock: Any) -> None:
        """Handle one ready socket; nothing from the network raises out of here."""
        remote = None
        try:
            if sock is self.router:
                self._answer()
                return
            remote = self._owners.get(sock)
            if remote is None:
                return
            if sock is remote.monitor:
                self._on_monitor(remote)
            else:
                self._on_reply(remote)
        except zmq.Again:
            pass
        except Exception as err:  # noqa: BLE001 - one socket must not stop the engine
            if remote is None:
                self._warn("router", "mdns: liveness socket error: %r", err)
            else:
                self._warn("remote", "mdns: dropped %r after an error: %r", remote.name, err)
                self._drop(remote.name)

    # -- our own liveness socket --------------------------------------------------------
    def _answer(self) -> None:
        for _ in range(64):
            frames = self.router.recv_multipart(zmq.NOBLOCK)
            if len(frames) == 2 and frames[1] == ASK:
                try:
                    self.router.send_multipart([frames[0], self.uuid.bytes], zmq.NOBLOCK)
                except zmq.ZMQError as err:
                    log.debug("liveness answer dropped: %s", err)

    # -- remotes ------------------------------------------------------------------------
    def _heartbeats(self, sock: zmq.Socket) -> None:
        sock.setsockopt(zmq.HEARTBEAT_IVL, int(self.timing.heartbeat * 1000))
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(self.timing.expired * 1000))
        sock.setsockopt(zmq.HEARTBEAT_TTL, int((self.timing.heartbeat + self.timing.expired) * 1000))

    @property
    def _max_msg_size(self) -> int:
        if self.security is None:
            return self.limits.max_msg_size
        return max(self.limits.max_msg_size, SECURE_MSG_SIZE)

    # -- secure mode --------------------------------------------------------------------
    def on_trust_change(self, added: frozenset, removed: frozenset) -> None:
        """The trusted directory changed (watcher thread): decide again in the engine's thread."""
        self._post("retrust", None)

    def _refusal(self, record: PeerRecord) -> str | None:
        """Secure mode: why ``record`` is not dialled (logged once per peer and reason), or None."""
        if self.security is None:
            return None
        why = self.security.refusal(record.headers.get(KEY_HEADER, ""), record.nick)
        if why is not None and (record.uuid, why) not in self._refused_warned:
            if len(self._refused_warned) >= 1000:
                self._refused_warned.clear()
            self._refused_warned.add((record.uuid, why))
            log.warning("secure mdns %s: ignoring peer %r (%s): it %s", self.nickname, record.nick, record.uuid, why)
        return why

    def _retrust(self) -> None:
        """Drop remotes whose key is no longer trusted; dial refused records that are now."""
        self._refused_warned.clear()
        for remote in list(self.remotes.values()):
            why = self._refusal(remote.record)
            if why is not None:
                self._forget(remote, f"it {why}")
                self.refused[remote.name] = (remote.record, why)
        for name, (record, _) in list(self.refused.items()):
            if self._refusal(record) is None:
                del self.refused[name]
                self._see(name, record)

    def _refused_handshake(self, remote: _Remote) -> None:
        """Its ZAP refused our key (or the key is not its own): dial again later."""
        _, _, pause = self._retry.get(remote.name, (None, 0.0, 0.0))
        low, high = SECURE_RETRY_S
        pause = min(high, pause * 2) if pause else low
        self._forget(remote, "its CURVE handshake failed")
        self._retry[remote.name] = (remote.record, time.monotonic() + pause, pause)

    def _retry_due(self) -> None:
        now = time.monotonic()
        for name, (record, when, pause) in list(self._retry.items()):
            if when <= now and name not in self.remotes:
                self._see(name, record)
                if name in self._retry:  # keep the pause for the next refusal
                    self._retry[name] = (record, float("inf"), pause)

    def refused_peers(self) -> list[tuple[uuidlib.UUID, bytes, str]]:
        """Secure mode: the peers whose records were refused (uuid, Z85 key, why), for ``zio peers``."""
        return [(r.uuid, r.headers.get(KEY_HEADER, "").encode(), why) for r, why in list(self.refused.values())]

    def _see(self, name: str, record: PeerRecord) -> None:
        if record.uuid == self.uuid:
            return
        if self.security is not None:
            why = self._refusal(record)
            if why is not None:
                remote = self.remotes.get(name)
                if remote is not None:
                    self._forget(remote, f"it {why}")
                if len(self.refused) >= 1000:
                    self.refused.clear()  # bounded, whatever a noisy network sends
                self.refused[name] = (record, why)
                return
            self.refused.pop(name, None)
        remote = self.remotes.get(name)
        if remote is not None and (remote.record.uuid != record.uuid or remote.record.live != record.live):
            self._forget(remote, f"its record changed to {record.uuid} at {record.live}")
            remote = None
        if remote is None:
            for other in self.remotes.values():
                if other.record.uuid == record.uuid:
                    self._warn("uuid", "mdns: service %r claims the UUID of %r; ignored", name, other.name)
                    return
            if name in self.parked:
                self.parked[name] = record  # waits its turn, with the latest record
                return
            self._admit(name, record)
            return
        if remote.dealer.closed:  # hung up on (wrong UUID); the record is back, try again
            self._forget(remote, "redialling", report=False)
            self._admit(name, record)
            return
        old = remote.info()
        remote.record = record
        if remote.alive and remote.info() != old:
            self.report(PeerEvent(ENTER, remote.info()))  # the peer table turns it into "update"

    # -- bounds -------------------------------------------------------------------------
    def _fds_left(self) -> bool:
        """True while dialling one more remote keeps the application's fd reserve free."""
        if self._fd_ceiling is None:
            return True
        used = open_fds()
        return used is None or used + FDS_PER_REMOTE <= self._fd_ceiling

    def _oldest_silent(self) -> _Remote | None:
        """The remote dialled longest ago that never answered (None if all answered)."""
        silent = [r for r in self.remotes.values() if not r.alive]
        return min(silent, key=lambda r: r.since) if silent else None

    def _park(self, name: str, record: PeerRecord) -> None:
        """Let ``name`` wait for a free place (the oldest parked record goes when there is none)."""
        self.parked.pop(name, None)
        self.parked[name] = record
        while len(self.parked) > PARKED_FACTOR * self.max_remotes:
            self.parked.popitem(last=False)
        if not self._next_turn:
            self._next_turn = time.monotonic() + self.timing.reconnect_max

    def _unseat(self, remote: _Remote) -> None:
        """Close a silent remote's sockets and park its record."""
        self._forget(remote, "its place went to another service", report=False)
        self._park(remote.name, remote.record)

    def _admit(self, name: str, record: PeerRecord) -> None:
        """Dial ``name`` if the bounds allow, pushing out the oldest silent remote when full."""
        if len(self.remotes) >= self.max_remotes:
            victim = self._oldest_silent()
            if victim is None:
                self._warn(
                    "full", "mdns: %d peers watched, the most allowed; %r waits", self.max_remotes, name,
                )
                self._park(name, record)
                return
            self._unseat(victim)
        if not self._fds_left():
            self._warn(
                "fds", "mdns: fewer than %d%% of the fd limit free (kept for the application); %r waits",
                int(100 * FD_RESERVE), name,
            )
            self._park(name, record)
            return
        self._dial(name, record)

    def _poll_timeout(self) -> int | None:
        """ms until parked records take turns or a refused handshake is tried again; None (forever)."""
        due = [when for _, when, _ in self._retry.values() if when != float("inf")]
        if self.parked:
            due.append(self._next_turn)
        else:
            self._next_turn = 0.0
        if not due:
            return None
        return max(0, int(1000 * (min(due) - time.monotonic())) + 1)

    def _take_turns(self) -> None:
        """Every ``reconnect_max`` s, parked records take the places of silent remotes."""
        if not self.parked or time.monotonic() < self._next_turn:
            return
        now = time.monotonic()
        self._next_turn = now + self.timing.reconnect_max
        self.max_remotes = self._max_configured  # a resource shortage is tried again
        stale = sorted(
            (r for r in self.remotes.values() if not r.alive and now - r.since >= self.timing.reconnect_max),
            key=lambda r: r.since,
        )
        for _ in range(len(self.parked)):
            if len(self.remotes) >= self.max_remotes:
                if not stale:
                    break
                self._unseat(stale.pop(0))
            if not self._fds_left():
                break
            name, record = self.parked.popitem(last=False)
            self._dial(name, record)

    def _dial(self, name: str, record: PeerRecord) -> None:
        """Open and connect the DEALER and monitor for ``name``; a failure is logged and the record parked."""
        opened: list[zmq.Socket] = []
        try:
            self._open(name, record, opened)
        except zmq.ZMQError as err:
            for sock in opened:
                try:
                    sock.close(0)
                except Exception:  # noqa: BLE001
                    pass
            # out of sockets or fds after all: watch no more than now (new services then
            # take the places of silent ones) and let this one wait its turn
            self.max_remotes = max(1, len(self.remotes))
            self._warn(
                "dial", "mdns: cannot watch %r (%s): %s; at most %d peers watched from now on",
                name, record.live, err, self.max_remotes,
            )
            self._park(name, record)

    def _open(self, name: str, record: PeerRecord, opened: list[zmq.Socket]) -> None:
        dealer = self.ctx.socket(zmq.DEALER)
        opened.append(dealer)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.MAXMSGSIZE, self._max_msg_size)
        dealer.setsockopt(zmq.RECONNECT_IVL, 100)
        dealer.setsockopt(zmq.RECONNECT_IVL_MAX, int(self.timing.reconnect_max * 1000))
        dealer.setsockopt(zmq.CONNECT_TIMEOUT, int((self.timing.heartbeat + self.timing.expired) * 1000))
        self._heartbeats(dealer)
        # a new address every time: id() comes back once an object is gone, and the monitor
        # endpoint of a closed dealer may still be bound (EADDRINUSE, taken for "out of sockets")
        address = f"inproc://zio-mdns-monitor-{id(dealer):x}-{next(_MONITOR_IDS)}"
        dealer.monitor(address, _EVENTS if self.security is None else _SECURE_EVENTS)
        monitor = self.ctx.socket(zmq.PAIR)
        opened.insert(0, monitor)
        monitor.setsockopt(zmq.LINGER, 0)
        monitor.connect(address)
        remote = _Remote(name, record, dealer, monitor, since=time.monotonic())
        try:
            if self.security is not None:
                self.security.apply_client(dealer, record.headers.get(KEY_HEADER, ""))
            dealer.connect(record.live)
        except zmq.ZMQError as err:
            log.info("mdns: cannot dial %s (%s) at %s: %s", record.nick, record.uuid, record.live, err)
            self._close_sockets(remote)
            return
        self.remotes[name] = remote
        for sock in (monitor, dealer):
            self._owners[sock] = remote
            self._poller.register(sock, zmq.POLLIN)
        log.debug("%s dials %s (%s) at %s", self.nickname, record.nick, record.uuid, record.live)

    def _on_monitor(self, remote: _Remote) -> None:
        event = parse_monitor_message(remote.monitor.recv_multipart(zmq.NOBLOCK))["event"]
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            try:
                remote.dealer.send(ASK, zmq.NOBLOCK)
            except zmq.ZMQError as err:
                log.debug("liveness question to %s dropped: %s", remote.record.nick, err)
        elif event & (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
            self._refused_handshake(remote)
        elif event == zmq.EVENT_DISCONNECTED and remote.alive:
            remote.alive = False
            log.debug("%s lost %s (%s): connection closed", self.nickname, remote.record.nick, remote.record.uuid)
            self.report(PeerEvent(EXIT, remote.info()))

    def _on_reply(self, remote: _Remote) -> None:
        for _ in range(16):
            reply = remote.dealer.recv(zmq.NOBLOCK)
            if reply != remote.record.uuid.bytes:
                log.warning(
                    "mdns: %s at %s answered %r, not UUID %s; hung up until its record changes",
                    remote.name, remote.record.live, reply[:32], remote.record.uuid,
                )
                if remote.alive:
                    remote.alive = False
                    self.report(PeerEvent(EXIT, remote.info()))
                self._close_sockets(remote)
                return
            if not remote.alive:
                remote.alive = True
                self._retry.pop(remote.name, None)
                self.report(PeerEvent(ENTER, remote.info()))

    def _close_sockets(self, remote: _Remote) -> None:
        for sock in (remote.monitor, remote.dealer):
            self._owners.pop(sock, None)
            try:
                self._poller.unregister(sock)
            except KeyError:
                pass
        if not remote.dealer.closed:
            try:
                remote.dealer.disable_monitor()
            except zmq.ZMQError:
                pass
        remote.monitor.close(0)
        remote.dealer.close(0)

    def _forget(self, remote: _Remote, why: str, report: bool = True, reason: str = "") -> None:
        if self.remotes.pop(remote.name, None) is None:
            return
        self._close_sockets(remote)
        log.debug("%s forgets %s (%s): %s", self.nickname, remote.record.nick, remote.record.uuid, why)
        if remote.alive and report:
            self.report(PeerEvent(EXIT, remote.info(), reason))


__all__ = ["Engine", "Timing", "Limits", "ASK", "FD_RESERVE", "FDS_PER_REMOTE", "MAX_MSG_SIZE"]
