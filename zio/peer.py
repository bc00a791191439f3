"""zio.Peer: who is out there, as a thread-safe peer table fed by one discovery backend."""
from __future__ import annotations

import collections
import logging
import threading
import time
import uuid as uuidlib
import weakref
from typing import Any, Callable, Iterable, Iterator

from . import limits, plugins
from . import security as security_mod
from .discovery import ENTER, EXIT, STOPPED, UPDATE, Discovery, PeerEvent, PeerInfo
from .errors import ConfigurationError

log = logging.getLogger(__name__)

#: Events kept for poll()/events() when the application does not consume them.
EVENT_BACKLOG = 10000

Listener = Callable[[PeerEvent], None]


def _deadline(timeout_ms: float | None) -> float | None:
    """Monotonic deadline for a timeout in ms; None or a negative timeout means never."""
    if timeout_ms is None or timeout_ms < 0:
        return None
    return time.monotonic() + timeout_ms / 1000.0


def _ms(timeout_ms: float | None, timeout: float | None) -> float | None:
    """``timeout_ms``, unless given under ZIO's keyword ``timeout`` (also milliseconds)."""
    return timeout_ms if timeout is None else timeout


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def _stringify_headers(headers: dict[str, Any]) -> dict[str, str]:
    result = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not key:
            raise ConfigurationError(f"peer header keys must be non-empty strings, not {key!r}")
        result[key] = value if isinstance(value, str) else str(value)
    return result


class _Table:
    """The peer table and event queue shared between the backend's thread and the application."""

    def __init__(self) -> None:
        #: re-entrant: listeners run under it and may read the Peer's table
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        #: threads in :meth:`wait`: a report wakes them only if there are some (notify_all
        #: costs more than the rest of a report, and 1000 Peers of a process make a million)
        self.waiting = 0
        self.peers: dict[uuidlib.UUID, PeerInfo] = {}
        self.events: collections.deque[PeerEvent] = collections.deque(maxlen=EVENT_BACKLOG)
        self.listeners: list[Listener] = []
        #: set when the local Peer stops: exits reported from then on carry reason "stopped"
        self.stopping = False

    def wait(self, seconds: float | None) -> None:
        """Wait (holding ``cond``) until a report or a stop wakes this thread, or ``seconds`` pass."""
        self.waiting += 1
        try:
            self.cond.wait(seconds)
        finally:
            self.waiting -= 1

    def report(self, event: PeerEvent) -> None:
        """Apply one backend event; called from the backend's thread."""
        info = event.peer
        kind = event.kind
        with self.lock:
            peers = self.peers
            if kind == EXIT:
                known = peers.pop(info.uuid, None)
                if known is None:
                    return
                if known is not info or not event.reason:
                    event = PeerEvent(EXIT, known, event.reason or (STOPPED if self.stopping else ""))
            elif kind == ENTER or kind == UPDATE:
                count = len(peers)
                known = peers.setdefault(info.uuid, info)  # one look-up for a new peer
                if len(peers) == count:  # known before
                    if known == info:
                        return
                    peers[info.uuid] = info
                    event = PeerEvent(UPDATE, info)
                elif kind != ENTER or event.reason:
                    event = PeerEvent(ENTER, info)
            else:
                log.warning("ignoring peer event of unknown kind %r", event.kind)
                return
            if len(self.events) == self.events.maxlen:
                log.warning("peer event backlog full: dropping the oldest (poll() the Peer)")
            self.events.append(event)
            # listeners (ports following names among them) run before any waiter wakes up:
            # a program that saw a peer arrive finds its ports connected to it already
            for listener in list(self.listeners):
                try:
                    listener(event)
                except Exception:
                    log.exception("peer event listener %r failed", listener)
            if self.waiting:
                self.cond.notify_all()


def _stop_backend(table: _Table, backend: Discovery, gate: Any = None) -> None:
    """Stop ``backend`` (and the trust gate); the exits it reports on the way carry reason "stopped"."""
    table.stopping = True
    backend.stop()
    if gate is not None:
        gate.stop()


class Peer:
    """Advertise this program under a nickname with headers, and track the peers a backend finds.

    Timeouts are in milliseconds (None or -1: forever), given as ``timeout_ms`` or, as in
    ZIO, ``timeout``.

    ``discovery`` is a backend name (``"beacon"``, ``"mdns"``, a plugin's), a configured
    :class:`zio.Discovery` object, or None for ``$ZIO_DISCOVERY``, else ``"beacon"``.
    Header values are sent as strings. Use as a context manager, or call :meth:`stop`.

    When the Peer stops, every peer still in its table is reported as an "exit" whose
    ``reason`` is ``"stopped"`` (:data:`zio.STOPPED`): those peers may well be alive,
    this Peer just stopped watching them. Other exits say ``"left"`` (goodbye) or
    ``"lost"`` (connection closed, silence) where the backend knows.

    ``security`` (a :class:`zio.Security`; default ``$ZIO_CERT``/``$ZIO_TRUSTED``; False:
    off) admits only peers that prove a trusted key (see :mod:`zio.trust`).
    """

    def __init__(
        self,
        nickname: str,
        *,
        discovery: str | Discovery | None = None,
        security: security_mod.Security | bool | None = None,
        **headers: Any,
    ):
        if not isinstance(nickname, str) or not nickname:
            raise ConfigurationError(f"a peer nickname must be a non-empty string, not {nickname!r}")
        self.nickname = nickname
        self.uuid = uuidlib.uuid4()
        self.headers = _stringify_headers(headers)
        #: the CURVE trust in force (None: security off), see :class:`zio.Security`
        self.security = security_mod.resolve(security)
        self._table = _Table()
        self._backend = plugins.make_backend(discovery)
        # room for the backend's sockets and threads: raised if need be, else a clear error
        limits.ensure_open_files(limits.HEADROOM, f"peer {nickname!r}")
        report = self._table.report
        advertised = dict(self.headers)
        self._gate = None
        if self.security is not None:
            from .trust import TrustGate

            host = self._backend.bind_host or "127.0.0.1"
            # a backend that proves keys itself (beacon: Zyre's secure mode) says so here
            use_security = getattr(self._backend, "use_security", None)
            proves = bool(use_security(self.security)) if callable(use_security) else False
            self._gate = TrustGate(self.security, self.uuid, nickname, host, report, prove=not proves)
            advertised.update(self._gate.headers())
            report = self._gate.report
        #: when discovery started (time.monotonic())
        self.started = time.monotonic()
        try:
            self._backend.start(self.uuid, nickname, advertised, report)
        except BaseException:
            if self._gate is not None:
                self._gate.stop()
            raise
        # stop the backend even if the application forgets to (no hang at exit)
        self._finalizer = weakref.finalize(self, _stop_backend, self._table, self._backend, self._gate)
        log.info("peer %s (%s) started with %s", nickname, self.uuid, self._backend.describe())

    # -- the table -----------------------------------------------------------------
    @property
    def backend(self) -> Discovery:
        """The discovery backend this peer uses."""
        return self._backend

    @property
    def peers(self) -> dict[uuidlib.UUID, PeerInfo]:
        """A snapshot of the peers known now, by UUID."""
        with self._table.cond:
            return dict(self._table.peers)

    def matchnick(self, nick: str) -> list[uuidlib.UUID]:
        """Return the UUIDs of the known peers whose nickname is ``nick``."""
        with self._table.cond:
            return [u for u, info in self._table.peers.items() if info.nick == nick]

    def trust_status(self) -> list[tuple[PeerInfo, str]] | None:
        """With security on: every peer discovery reports (admitted or not) and its trust
        state ("trusted", "proving...", "refused: why"); None when security is off."""
        if self._gate is None:
            return None
        status = self._gate.status()
        refused = getattr(self._backend, "refused_peers", None)  # refused before any advert
        if callable(refused):
            known = {info.uuid for info, _ in status}
            for uuid, key, why in refused():
                if uuid not in known:
                    status.append((PeerInfo(uuid, "?", {security_mod.KEY_HEADER: key.decode()}), "refused: " + why))
        return status

    # -- events ----------------------------------------------------------------------
    def poll(self, timeout_ms: float | None = 0, *, timeout: float | None = None) -> PeerEvent | None:
        """Return the next peer event, waiting up to ``timeout_ms`` (None/-1: forever); None on timeout."""
        deadline = _deadline(_ms(timeout_ms, timeout))
        with self._table.cond:
            while not self._table.events:
                remaining = _remaining(deadline)
                if remaining == 0.0 or self._finalizer.alive is False:
                    return None
                self._table.wait(remaining)
            return self._table.events.popleft()

    def drain(self) -> list[PeerEvent]:
        """Return and forget every queued peer event without waiting."""
        with self._table.cond:
            events = list(self._table.events)
            self._table.events.clear()
            return events

    def events(self, timeout_ms: float | None = None) -> Iterator[PeerEvent]:
        """Iterate over peer events as they come; ends after ``timeout_ms`` without one."""
        while True:
            event = self.poll(timeout_ms)
            if event is None:
                return
            yield event

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every future event, from the backend's thread, before
        waiters (``poll``, ``waitfor``...) wake up; keep it short, and do not wait in it for
        another thread that uses this Peer."""
        with self._table.cond:
            self._table.listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``; unknown listeners are ignored."""
        with self._table.cond:
            if listener in self._table.listeners:
                self._table.listeners.remove(listener)

    # -- waiting ------------------------------------------------------------------------
    def _wait(self, ready: Callable[[], Any], timeout_ms: float | None) -> Any:
        deadline = _deadline(timeout_ms)
        with self._table.cond:
            while True:
                result = ready()
                if result:
                    return result
                remaining = _remaining(deadline)
                if remaining == 0.0 or not self._finalizer.alive:
                    return result
                self._table.wait(remaining)

    def waitfor(self, nick: str, timeout_ms: float | None = -1, *, timeout: float | None = None) -> list[uuidlib.UUID]:
        """Wait until at least one peer named ``nick`` is known; return their UUIDs ([] on timeout)."""
        return self._wait(lambda: self.matchnick(nick), _ms(timeout_ms, timeout))

    def waituntil(
        self, uuid: uuidlib.UUID, timeout_ms: float | None = -1, *, timeout: float | None = None
    ) -> PeerInfo | None:
        """Wait until the peer ``uuid`` is known; return its info, or None on timeout."""
        return self._wait(lambda: self._table.peers.get(uuid), _ms(timeout_ms, timeout))

    def party(
        self, nicks: Iterable[str], timeout_ms: float | None = -1, *, timeout: float | None = None
    ) -> dict[uuidlib.UUID, PeerInfo]:
        """Wait until every nickname in ``nicks`` is known; return the matching peers seen so far."""
        timeout_ms = _ms(timeout_ms, timeout)
        wanted = set(nicks)

        def matching() -> dict[uuidlib.UUID, PeerInfo]:
            return {u: i for u, i in self._table.peers.items() if i.nick in wanted}

        def complete() -> dict[uuidlib.UUID, PeerInfo] | None:
            seen = matching()
            return seen if {i.nick for i in seen.values()} >= wanted else None

        with self._table.cond:
            return self._wait(complete, timeout_ms) or matching()

    # -- life cycle -----------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` ran."""
        return not self._finalizer.alive

    def stop(self) -> None:
        """Leave the network and stop the backend; safe to call more than once."""
        if self._finalizer.alive:
            self._finalizer()
            with self._table.cond:
                self._table.cond.notify_all()

    def __enter__(self) -> "Peer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<zio.Peer {self.nickname!r} {self.uuid} peers={len(self.peers)}>"
