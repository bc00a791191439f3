"""zio for asyncio programs: the same Node, Peer and Port, with coroutines (as zmq.asyncio is to zmq).

::

    import asyncio, zmq, zio
    import zio.asyncio as zioa

    async def main() -> None:
        async with zioa.Node("client") as node:
            port = node.port("ask", zmq.CLIENT)
            port.connect("server", "answer")
            await node.online()
            await port.send(zio.Message(form="TEXT", label="hi"))
            reply = await port.recv(1000)       # None on timeout

The classes take the same arguments as their :mod:`zio` counterparts, use the same
discovery backends and speak the same wire. They are thin: each wraps the synchronous
object (``.sync``), which keeps the one implementation of framing, resolution and headers;
this module only replaces its blocking waits by awaits:

- a port waits for its socket through the event loop (``add_reader`` on the ZeroMQ socket's
  file descriptor), never in a blocking poll, and never holds the port's lock across an
  await;
- discovery threads reach the loop through ``loop.call_soon_threadsafe``: a port follows
  peers coming, going and moving while a coroutine awaits (applied in the loop's thread,
  the one thread that touches the port's socket);
- a node starts its Peer (tens of milliseconds: sockets, threads, the first beacon) in a
  worker thread.

Cancelling a pending :meth:`Port.recv` or :meth:`Port.send` leaves the port usable and
loses nothing: a message is taken from the socket only in the step that returns it (no
await in between), and a send hands the message to ZeroMQ only in its last step, so a
cancelled send sent nothing.

Everything of a port, node or peer is used from one event loop (the one running when it
first awaits); using it from two is a :class:`zio.PortError`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
import uuid as uuidlib
from typing import Any, AsyncIterator, Callable, Generator, Iterable, Mapping, TypeVar, cast

import zmq

from . import config
from . import node as _node
from . import peer as _peer
from . import port as _port
from .discovery import Discovery, PeerEvent, PeerInfo
from .errors import PortError, PortTimeout
from .message import Message
from .security import Security

log = logging.getLogger(__name__)
_T = TypeVar("_T")

__all__ = ["Node", "Peer", "Port"]


def _deadline(timeout_ms: float | None) -> float | None:
    """Monotonic deadline of a timeout in ms; None or negative: none."""
    return None if timeout_ms is None or timeout_ms < 0 else time.monotonic() + timeout_ms / 1000.0


def _events(sock: zmq.Socket) -> int:
    """The socket's ready events (reading them also has it take in what its I/O thread did)."""
    return cast(int, sock.getsockopt(zmq.EVENTS))  # an int option


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _until(fut: asyncio.Future[None], deadline: float | None) -> None:
    """Await ``fut`` until ``deadline`` (monotonic; None: no limit); a timeout just returns."""
    if deadline is None:
        await fut
        return
    loop = asyncio.get_running_loop()
    timer = loop.call_later(max(0.0, deadline - time.monotonic()), _settle, fut)
    try:
        await fut
    finally:
        timer.cancel()


def _off_loop(fn: Callable[[], _T]) -> _T:
    """``fn()``, run in a thread of its own when called from a running event loop's thread
    (and waited for there): python-zeroconf, under the mdns backend, refuses its blocking
    calls (registration, goodbyes) from an event loop's thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="zio-off-loop") as pool:
        return pool.submit(fn).result()


class _Signal:
    """Wakes the coroutines of one event loop that wait for a change, from any thread."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.loop: asyncio.AbstractEventLoop | None = None
        self.futures: set[asyncio.Future[None]] = set()
        self.scheduled = False  # a notify() is on its way to the loop already

    def bind(self) -> asyncio.AbstractEventLoop:
        """The running loop, which must be the one this signal (and its object) belongs to."""
        loop = asyncio.get_running_loop()
        if self.loop is None or self.loop.is_closed():
            self.loop = loop
        elif self.loop is not loop:
            raise PortError(f"{self.what} is used from a second event loop")
        return loop

    def future(self) -> asyncio.Future[None]:
        """A future set by the next :meth:`notify`; make it *before* looking at the state."""
        fut = self.bind().create_future()
        self.futures.add(fut)
        return fut

    def notify(self) -> None:
        """Wake every waiter (in the loop's thread)."""
        self.scheduled = False
        futures, self.futures = self.futures, set()
        for fut in futures:
            _settle(fut)

    def notify_threadsafe(self) -> None:
        """Wake every waiter, from any thread (nothing to do when nobody waits: a waiter
        registers its future before it looks at the state it waits for). A burst of
        changes costs the loop one wake-up, not one per change."""
        loop = self.loop
        if not self.futures or loop is None or self.scheduled:
            return
        self.scheduled = True
        try:
            loop.call_soon_threadsafe(self.notify)
        except RuntimeError:  # the loop is closed: nobody is waiting in it any more
            self.scheduled = False

    async def wait(self, fut: asyncio.Future[None], deadline: float | None) -> None:
        try:
            await _until(fut, deadline)
        finally:
            self.futures.discard(fut)


# -- Peer ------------------------------------------------------------------------------
class Peer:
    """:class:`zio.Peer` for asyncio: the same table and events, with awaitable waits.

    Constructing one starts the backend as :class:`zio.Peer` does, and waits for it: tens
    of milliseconds (70 ms measured for beacon and mdns on loopback) during which the loop
    does nothing else; ``await Peer.start(...)`` starts it in a worker thread instead, as
    :class:`Node` does. Timeouts are in milliseconds (None or -1: forever), as in :mod:`zio`.
    """

    def __init__(
        self,
        nickname: str,
        *,
        discovery: str | Discovery | None = None,
        security: Security | bool | None = None,
        **headers: Any,
    ):
        self._attach(_off_loop(functools.partial(_peer.Peer, nickname, discovery=discovery, security=security, **headers)))

    @classmethod
    async def start(
        cls,
        nickname: str,
        *,
        discovery: str | Discovery | None = None,
        security: Security | bool | None = None,
        **headers: Any,
    ) -> "Peer":
        """A new Peer, its backend started in a worker thread (the loop runs on meanwhile)."""
        make = functools.partial(_peer.Peer, nickname, discovery=discovery, security=security, **headers)
        return cls.wrap(await asyncio.get_running_loop().run_in_executor(None, make))

    @classmethod
    def wrap(cls, sync: _peer.Peer) -> "Peer":
        """An asyncio view of the running :class:`zio.Peer` ``sync``."""
        self = cls.__new__(cls)
        self._attach(sync)
        return self

    def _attach(self, sync: _peer.Peer) -> None:
        #: the synchronous :class:`zio.Peer` this one wraps
        self.sync = sync
        self._signal = _Signal(f"peer {sync.nickname!r}")
        sync.add_listener(self._on_event)

    def _on_event(self, event: PeerEvent) -> None:
        """In the discovery thread: wake the coroutines waiting for a change."""
        self._signal.notify_threadsafe()

    # -- the table, as zio.Peer ------------------------------------------------------
    @property
    def nickname(self) -> str:
        """As :attr:`zio.Peer.nickname`."""
        return self.sync.nickname

    @property
    def uuid(self) -> uuidlib.UUID:
        """As :attr:`zio.Peer.uuid`."""
        return self.sync.uuid

    @property
    def headers(self) -> dict[str, str]:
        """As :attr:`zio.Peer.headers`."""
        return self.sync.headers

    @property
    def backend(self) -> Discovery:
        """The discovery backend this peer uses."""
        return self.sync.backend

    @property
    def peers(self) -> dict[uuidlib.UUID, PeerInfo]:
        """A snapshot of the peers known now, by UUID."""
        return self.sync.peers

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` ran."""
        return self.sync.stopped

    def matchnick(self, nick: str) -> list[uuidlib.UUID]:
        """Return the UUIDs of the known peers whose nickname is ``nick``."""
        return self.sync.matchnick(nick)

    def drain(self) -> list[PeerEvent]:
        """Return and forget every queued peer event without waiting."""
        return self.sync.drain()

    def add_listener(self, listener: Callable[[PeerEvent], None]) -> None:
        """As :meth:`zio.Peer.add_listener`: ``listener`` runs in the discovery thread."""
        self.sync.add_listener(listener)

    def remove_listener(self, listener: Callable[[PeerEvent], None]) -> None:
        """Stop calling ``listener``; unknown listeners are ignored."""
        self.sync.remove_listener(listener)

    # -- waiting -----------------------------------------------------------------------
    async def _wait(self, ready: Callable[[], Any], timeout_ms: float | None) -> Any:
        """Await until ``ready()`` returns something true (returned), the timeout passes or
        the Peer stops (then its last result is returned)."""
        deadline = _deadline(timeout_ms)
        while True:
            fut = self._signal.future()
            result = ready()
            if result or self.sync.stopped or (deadline is not None and time.monotonic() >= deadline):
                self._signal.futures.discard(fut)
                return result
            await self._signal.wait(fut, deadline)

    async def poll(self, timeout_ms: float | None = 0) -> PeerEvent | None:
        """The next peer event, awaiting up to ``timeout_ms`` (None/-1: forever); None on timeout."""
        return await self._wait(functools.partial(self.sync.poll, 0), timeout_ms)

    async def events(self, timeout_ms: float | None = None) -> AsyncIterator[PeerEvent]:
        """``async for event in peer.events()``: peer events as they come; ends after
        ``timeout_ms`` without one (None: never) or when the Peer stops."""
        while True:
            event = await self.poll(timeout_ms)
            if event is None:
                return
            yield event

    async def waitfor(self, nick: str, timeout_ms: float | None = -1) -> list[uuidlib.UUID]:
        """Await until at least one peer named ``nick`` is known; their UUIDs ([] on timeout)."""
        return await self._wait(functools.partial(self.sync.matchnick, nick), timeout_ms)

    async def waituntil(self, uuid: uuidlib.UUID, timeout_ms: float | None = -1) -> PeerInfo | None:
        """Await until the peer ``uuid`` is known; its info, or None on timeout."""
        return await self._wait(lambda: self.sync.peers.get(uuid), timeout_ms)

    async def party(self, nicks: Iterable[str], timeout_ms: float | None = -1) -> dict[uuidlib.UUID, PeerInfo]:
        """Await until every nickname in ``nicks`` is known; the matching peers seen so far."""
        wanted = set(nicks)

        def matching() -> dict[uuidlib.UUID, PeerInfo]:
            return {u: i for u, i in self.sync.peers.items() if i.nick in wanted}

        def complete() -> dict[uuidlib.UUID, PeerInfo] | None:
            seen = matching()
            return seen if {i.nick for i in seen.values()} >= wanted else None

        return await self._wait(complete, timeout_ms) or matching()

    # -- life cycle ------------------------------------------------------------------
    def stop(self) -> None:
        """Leave the network and stop the backend (as :meth:`zio.Peer.stop`, a few ms for
        beacon and mdns, in a thread of its own when called from the loop's thread);
        wakes every coroutine waiting on this Peer."""
        _off_loop(self.sync.stop)
        self._signal.notify_threadsafe()

    async def aclose(self) -> None:
        """:meth:`stop` in a worker thread (a backend may take longer to say goodbye)."""
        await asyncio.get_running_loop().run_in_executor(None, self.sync.stop)
        self._signal.notify()

    async def __aenter__(self) -> "Peer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<zio.asyncio.Peer {self.sync.nickname!r} {self.sync.uuid} peers={len(self.sync.peers)}>"


# -- Port ------------------------------------------------------------------------------
class _LoopPort(_port.Port):
    """The synchronous Port, whose discovery changes are applied in the event loop's thread.

    Only :meth:`_on_peer_event` differs: instead of applying a change in the discovery
    thread (the port is idle from its point of view while a coroutine awaits), it hands
    it to the loop with ``call_soon_threadsafe``, where the port's socket lives."""

    #: the loop of the asyncio Port wrapping this one, and its wake-up
    _loop: asyncio.AbstractEventLoop | None = None
    _changed: Callable[[], None] | None = None
    _scheduled = False  # an _apply() is on its way to the loop already

    def _on_peer_event(self, event: PeerEvent | None) -> None:
        if event is not None and not any(event.peer.nick == node for node, _ in self._wishes):
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            self._dirty = True  # first the flag, then the look at _scheduled (see _apply)
            if self._scheduled:
                return  # one _apply() takes in a whole burst of changes
            self._scheduled = True
            try:
                loop.call_soon_threadsafe(self._apply)
                return
            except RuntimeError:  # closed meanwhile
                self._scheduled = False
        super()._on_peer_event(event)  # no loop: apply it here, as the sync Port does

    def _apply(self) -> None:
        """In the loop: apply the discovery changes, then wake the coroutines waiting.

        ``_scheduled`` is cleared before ``_dirty`` is looked at, and a discovery thread sets
        ``_dirty`` before it looks at ``_scheduled``: every change is applied by this call
        or by the one it schedules."""
        self._scheduled = False
        if self._dirty:
            self._catch_up()
        if self._changed is not None:
            self._changed()


class Port:
    """:class:`zio.Port` for asyncio: the same arguments, binds, connects, headers and wire;
    :meth:`send`, :meth:`recv` and :meth:`online` are coroutines, and ``async for msg in
    port`` receives until the port goes offline.

    ``sync`` is the synchronous port it wraps (the one implementation of framing,
    resolution and headers); use it from the loop's thread only.
    """

    def __init__(
        self,
        name: str,
        socket_type: int,
        hostname: str = "127.0.0.1",
        *,
        context: zmq.Context | None = None,
        security: Security | bool | None = None,
    ):
        self._attach(_LoopPort(name, socket_type, hostname, context=context, security=security))

    @classmethod
    def _wrap(cls, sync: _LoopPort) -> "Port":
        self = cls.__new__(cls)
        self._attach(sync)
        return self

    def _attach(self, sync: _LoopPort) -> None:
        self.sync = sync
        self._signal = _Signal(f"port {sync.name!r}")
        self._watched: dict[int, int] = {}  # file descriptor -> waiters on it
        sync._changed = self._signal.notify

    # -- as zio.Port ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        """As :attr:`zio.Port.name`."""
        return self.sync.name

    @property
    def origin(self) -> int | None:
        """Stamped on every message sent (None: left as it is)."""
        return self.sync.origin

    @origin.setter
    def origin(self, value: int | None) -> None:
        self.sync.origin = value

    @property
    def headers(self) -> dict[str, str]:
        """As :attr:`zio.Port.headers`."""
        return self.sync.headers

    @property
    def socket_type(self) -> int:
        """As :attr:`zio.Port.socket_type`."""
        return self.sync.socket_type

    @property
    def socket_name(self) -> str:
        """As :attr:`zio.Port.socket_name`."""
        return self.sync.socket_name

    @property
    def sock(self) -> zmq.Socket:
        """The pyzmq socket (replaced by :meth:`offline`)."""
        return self.sync.sock

    @property
    def is_online(self) -> bool:
        """As :attr:`zio.Port.is_online`."""
        return self.sync.is_online

    @property
    def bound(self) -> list[str]:
        """As :attr:`zio.Port.bound`."""
        return self.sync.bound

    @property
    def connected(self) -> list[str]:
        """As :attr:`zio.Port.connected`."""
        return self.sync.connected

    @property
    def departures(self) -> int:
        """As :attr:`zio.Port.departures`."""
        return self.sync.departures

    def bind(self, *spec: Any) -> None:
        """As :meth:`zio.Port.bind`."""
        self.sync.bind(*spec)

    def connect(self, *spec: str) -> None:
        """As :meth:`zio.Port.connect`: an address, or ``(node, port)`` followed by name."""
        self.sync.connect(*spec)

    def subscribe(self, prefix: str | bytes = "") -> None:
        """As :meth:`zio.Port.subscribe`."""
        self.sync.subscribe(prefix)

    def add_headers(self, *dicts: Mapping[str, Any], **headers: Any) -> None:
        """As :meth:`zio.Port.add_headers`."""
        self.sync.add_headers(*dicts, **headers)

    def do_binds(self) -> dict[str, str]:
        """As :meth:`zio.Port.do_binds`."""
        return self.sync.do_binds()

    def __repr__(self) -> str:
        return repr(self.sync).replace("<zio.Port", "<zio.asyncio.Port", 1)

    # -- waiting through the loop ------------------------------------------------------
    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._signal.bind()
        self.sync._loop = loop
        return loop

    def _watch(self, loop: asyncio.AbstractEventLoop, sock: zmq.Socket) -> int:
        fd = sock.fileno()
        if self._watched.get(fd, 0) == 0:
            loop.add_reader(fd, self._signal.notify)
        self._watched[fd] = self._watched.get(fd, 0) + 1
        return fd

    def _unwatch(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        left = self._watched.get(fd, 0) - 1
        if left > 0:
            self._watched[fd] = left
        elif fd in self._watched:
            del self._watched[fd]
            loop.remove_reader(fd)

    def _forget_watches(self) -> None:
        """Stop watching every file descriptor (before the socket that owns them closes)."""
        loop = self._signal.loop
        if loop is not None and not loop.is_closed():
            for fd in self._watched:
                loop.remove_reader(fd)
        self._watched.clear()

    async def _ready(self, events: Iterable[tuple[zmq.Socket | None, int]], deadline: float | None) -> None:
        """Await until one of the (socket, flag) pairs is ready, discovery changed something,
        the port went offline or ``deadline`` passed; the caller looks at what happened.

        A ZeroMQ socket's file descriptor only signals that its state may have changed: it is
        watched first, then ``EVENTS`` is read (which also clears the signal), then awaited."""
        loop = self._bind_loop()
        fut = self._signal.future()
        watched: list[int] = []
        try:
            for sock, _ in events:
                if sock is not None:
                    watched.append(self._watch(loop, sock))
            for sock, flag in events:
                if sock is not None and _events(sock) & flag:
                    return
            await self._signal.wait(fut, deadline)
        finally:
            self._signal.futures.discard(fut)
            for fd in watched:
                self._unwatch(loop, fd)

    async def _carry_out(self, wait: _port.Wait, peer: Peer | None) -> Any:
        """Carry out one wait the shared port logic asks for, by awaiting."""
        if wait.kind == "peer":
            assert peer is not None and wait.ready is not None
            return await peer._wait(wait.ready, wait.ms)
        if wait.kind == "monitor":
            await self._ready([(self.sync._monitor, zmq.POLLIN)], _deadline(wait.ms))
        else:
            await asyncio.sleep(wait.ms / 1000.0)
        return None

    async def _drive(self, waits: Generator[_port.Wait, Any, None], peer: Peer | None = None) -> None:
        """Run the shared port logic ``waits``, awaiting each wait it asks for."""
        try:
            request = next(waits)
            while True:
                request = waits.send(await self._carry_out(request, peer))
        except StopIteration:
            pass

    # -- life cycle --------------------------------------------------------------------
    async def online(self, peer: Peer | _peer.Peer | None = None, timeout_ms: float | None = None) -> None:
        """As :meth:`zio.Port.online`: make the connects, awaiting (bounded) named nodes not
        seen yet and the first handshakes. ``peer`` may be an asyncio or a :mod:`zio` Peer."""
        self._bind_loop()
        if isinstance(peer, _peer.Peer):
            peer = Peer.wrap(peer)
        sync = self.sync
        deadline = sync._go_online(peer.sync if peer is not None else None, timeout_ms)
        if deadline is None:
            return
        if peer is not None and sync._wishes:
            await self._drive(sync._name_waits(peer.sync, deadline), peer)
        with sync._lock:
            sync._resolve()
        await self._drive(sync._handshake_waits(deadline))

    def offline(self) -> None:
        """As :meth:`zio.Port.offline`; ends ``async for`` loops over this port."""
        self._forget_watches()
        self.sync.offline()
        self._signal.notify()

    def close(self) -> None:
        """As :meth:`zio.Port.close`."""
        self._forget_watches()
        self.sync.close()
        self._signal.notify()

    async def __aenter__(self) -> "Port":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- messages ------------------------------------------------------------------------
    async def send(self, msg: Message, timeout_ms: float | None = None) -> None:
        """Send ``msg`` as :meth:`zio.Port.send` does, awaiting while no peer can take it; after
        ``timeout_ms`` (None: no limit) :class:`zio.PortTimeout` is raised and nothing was sent.

        Cancelled while it awaits, it sent nothing."""
        sync = self.sync
        deadline = _deadline(timeout_ms)
        while True:
            if sync._dirty or sync._departing:
                with sync._lock:  # the part of the sync send's preparation that does not wait
                    if sync._dirty:
                        sync._resolve()
                    if sync._departing:
                        sync._read_handshakes()
            if sync._departing and sync.plan.actual in _port._DEALING_KEEPERS:
                # nothing is dealt to a departed peer's connection (see zio.Port._prepare_send)
                await self._drive(sync._departure_waits(deadline))
            if sync._pending or sync._subscription_wait_until:
                await self._drive(sync._handshake_waits(deadline))
            try:
                sync.send(msg, 0)  # takes it now, or raises PortTimeout having sent nothing
                return
            except PortTimeout:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
            if sync.plan.actual == zmq.ROUTER:  # always "writable": its EAGAIN means one peer is full
                await asyncio.sleep(0.001)
            else:
                await self._ready([(sync.sock, zmq.POLLOUT)], deadline)

    async def recv(self, timeout_ms: float | None = None) -> Message | None:
        """Receive one message as :meth:`zio.Port.recv` does, awaiting up to ``timeout_ms``
        (None: forever); None on timeout.

        Cancelled while it awaits, it took nothing from the socket: the next call gets the
        message that came meanwhile."""
        message = self.sync.recv(0)
        if message is not None:
            return message
        return await self._recv(_deadline(timeout_ms), until_offline=False)

    async def _recv(self, deadline: float | None, until_offline: bool) -> Message | None:
        sync = self.sync
        while True:
            if until_offline and not sync.is_online:
                return None
            message = sync.recv(0)  # applies discovery changes and departures, never waits
            if message is not None:
                return message
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return None
            wake_at = deadline
            if sync._departing:  # wake up to let go of them in time
                first = min(sync._departing.values())
                wake_at = first if deadline is None else min(first, deadline)
            await self._ready([(sync.sock, zmq.POLLIN), (sync._monitor, zmq.POLLIN)], wake_at)

    def __aiter__(self) -> "Port":
        return self

    async def __anext__(self) -> Message:
        """The next message; the iteration ends when the port goes offline (or is closed)."""
        if not self.sync.is_online:
            raise StopAsyncIteration
        message = await self._recv(None, until_offline=True)
        if message is None:
            raise StopAsyncIteration
        return message


# -- Node ------------------------------------------------------------------------------
def _stop_late_peer(started: asyncio.Future[_peer.Peer]) -> None:
    """Stop a Peer that finished starting after its node's online() was cancelled."""
    if not started.cancelled() and started.exception() is None:
        started.result().stop()


class _LoopNode(_node.Node):
    """The synchronous Node, making ports whose discovery changes go through the loop."""

    port_class = _LoopPort


class Node:
    """:class:`zio.Node` for asyncio: the same arguments; :meth:`online` and :meth:`offline`
    are coroutines; ``async with Node(...) as node`` closes it at the end.

    ``sync`` is the :class:`zio.Node` it wraps (its ports are those of this node)."""

    def __init__(
        self,
        nick: str,
        origin: int = 0,
        hostname: str | None = None,
        *,
        discovery: str | Discovery | None = None,
        security: Security | bool | None = None,
    ):
        self.sync = _LoopNode(nick, origin, hostname, discovery=discovery, security=security)
        self._ports: dict[str, Port] = {}
        self._peer: Peer | None = None

    @property
    def nick(self) -> str:
        """As :attr:`zio.Node.nick`."""
        return self.sync.nick

    @property
    def origin(self) -> int:
        """As :attr:`zio.Node.origin`."""
        return self.sync.origin

    @property
    def ports(self) -> dict[str, Port]:
        """The node's ports by name."""
        return dict(self._ports)

    @property
    def peer(self) -> Peer | None:
        """The node's Peer while it is online."""
        return self._peer

    @property
    def is_online(self) -> bool:
        return self._peer is not None

    def port(self, name: str, socket_type: int | None = None) -> Port:
        """As :meth:`zio.Node.port`: the port ``name``, made with ``socket_type`` if new."""
        sync = self.sync.port(name, socket_type)
        if name not in self._ports:
            assert isinstance(sync, _LoopPort)
            self._ports[name] = Port._wrap(sync)
        return self._ports[name]

    async def online(self, timeout_ms: float | None = None, **headers: Any) -> None:
        """As :meth:`zio.Node.online`: bind, advertise (the Peer starts in a worker thread),
        then connect, awaiting named nodes for at most ``timeout_ms`` in all (default
        ``$ZIO_RESOLVE_TIMEOUT_MS`` or 5000 ms)."""
        if self._peer is not None:
            return
        loop = asyncio.get_running_loop()
        for port in self._ports.values():
            port._bind_loop()
        started = loop.run_in_executor(None, self.sync._advertise, dict(headers))
        try:
            sync_peer = await asyncio.shield(started)
        except asyncio.CancelledError:
            # the Peer may still come: stop it when it does
            started.add_done_callback(_stop_late_peer)
            self._offline_now()
            raise
        except BaseException:
            self._offline_now()
            raise
        self.sync.peer = sync_peer
        self._peer = Peer.wrap(sync_peer)
        try:
            if timeout_ms is None:
                timeout_ms = config.resolve_timeout_ms()
            deadline = time.monotonic() + max(0.0, timeout_ms) / 1000.0
            for port in self._ports.values():
                await port.online(self._peer, max(0.0, deadline - time.monotonic()) * 1000.0)
        except BaseException:
            self._offline_now()
            raise

    def _offline_now(self) -> None:
        """Go offline without awaiting (after a failed or cancelled online())."""
        for port in self._ports.values():
            port.offline()
        _off_loop(self.sync.offline)
        if self._peer is not None:
            self._peer._signal.notify()
            self._peer = None

    async def offline(self) -> None:
        """As :meth:`zio.Node.offline`; the Peer says goodbye in a worker thread. Ends the
        ``async for`` loops over the node's ports."""
        for port in self._ports.values():
            port.offline()
        peer, self._peer = self._peer, None
        self.sync.peer = None
        if peer is not None:
            await peer.aclose()

    async def close(self) -> None:
        """Go offline and close every port's socket."""
        await self.offline()
        for port in self._ports.values():
            port.close()

    async def __aenter__(self) -> "Node":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<zio.asyncio.Node {self.nick!r} origin={self.origin} ports={list(self._ports)}>"
