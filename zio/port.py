"""zio.Port: one pyzmq socket, its binds and connects (direct or by node/port name), its headers."""
from __future__ import annotations

import atexit
import collections
import logging
import math
import os
import re
import time
import weakref
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Generator, Mapping, NamedTuple, TypeVar

import zmq
from zmq.utils.monitor import parse_monitor_message

from . import config, limits
from . import security as security_mod
from .errors import ConfigurationError, MalformedError, PortError, PortTimeout
from .codec import _decode_parts
from . import _shortpath
from .message import Message, MessageLevel
from .sockets import Framing, can_talk, group_topic, plan_socket, routing_id_to_bytes, routing_id_to_int

if TYPE_CHECKING:
    from .discovery import PeerEvent, PeerInfo
    from .peer import Peer

# the short path of send() and recv() (compiled where it was built; ZIO_PURE_PYTHON=1: not)
if TYPE_CHECKING:
    from . import _fastpath as _short
else:
    _short = _shortpath.chosen()
ZERO_COPY_BYTES = _short.ZERO_COPY_BYTES

log = logging.getLogger(__name__)

#: How long a closed port keeps trying to deliver queued messages (ms).
CLOSE_LINGER_MS = 2000

#: Socket types that deal messages round-robin and never receive: they use ZMQ_IMMEDIATE,
#: so nothing is queued for a connection that is not up. (Not DEALER or REQ: with
#: IMMEDIATE, libzmq drops the unread replies of a peer that disconnects right after
#: replying.)
_ONE_WAY_DEALERS = {zmq.PUSH}
#: Sockets with no peer messages to keep when a peer departs: they cannot receive (PUSH,
#: PUB), receive only subscriptions (XPUB), or are draft sockets (left as libzmq has them).
_NOTHING_TO_KEEP = {zmq.PUSH, zmq.PUB, zmq.XPUB}

#: Socket types whose only outgoing traffic is subscriptions (SUB, DISH and the stand-in on
#: SUB) or nothing (PULL, GATHER): they close without a linger, losing nothing. When the
#: publisher of a connected SUB goes away, libzmq re-queues the subscriptions for the
#: reconnection (the pipe "hiccup"); with a linger, close() -- and the context at exit --
#: would wait the whole CLOSE_LINGER_MS for a peer that is not coming back.
_NO_LINGER = {zmq.SUB, zmq.DISH, zmq.PULL, zmq.GATHER}

#: Advertised addresses of a port with several binds are joined with one space, as ZIO C++
#: ``Port::do_binds()`` writes them; readers split on spaces or commas.
ADDRESS_SEPARATOR = " "
_ADDRESS_SPLIT = re.compile(r"[\s,]+")

#: How long a send (or online()) waits for connections just made by name to complete their
#: ZMTP handshake, so that a burst is dealt over every peer known, not only the old ones.
#: An address that does not answer within it is sent to once it does.
HANDSHAKE_WAIT_MS = 500
#: After a PUB's new connection completes its handshake, the subscriber's subscriptions are
#: one more trip away, and they leave only once the subscriber's own thread has taken the
#: connection in (a Python thread may wait a few GIL switch intervals of 5 ms for that):
#: wait as long as the handshake took, within these bounds (ms). A PUB cannot see
#: subscriptions arrive, so this is a bounded wait, not a proof (see the README).
SUBSCRIPTION_WAIT_MS = (25, 100)
#: Sockets whose subscribers' subscriptions arrive after the handshake.
_PUBLISHERS = frozenset({zmq.PUB, zmq.XPUB})
#: A departed peer's address stays connected until its connection closes (by then all it
#: sent has arrived: a reply sent just before leaving is not lost), at most this long (ms).
DEPARTURE_GRACE_MS = 250
_GONE_EVENTS = frozenset({zmq.EVENT_DISCONNECTED, zmq.EVENT_CLOSED, zmq.EVENT_CONNECT_RETRIED})
#: Sockets that deal each message to one of their connections and keep what peers send:
#: they send nothing while a departed peer's connection is still there, since a message
#: dealt to it would be lost with it (without ZMQ_IMMEDIATE, libzmq queues it there)
_DEALING_KEEPERS = frozenset({zmq.DEALER, zmq.REQ, zmq.PAIR, zmq.CLIENT})
_HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_CLOSED | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
#: Remote problems (unusable addresses...) are warned about once per node and address;
#: the memory of them is bounded, whatever a noisy network advertises.
_WARNED_MAX = 1000

# ZERO_COPY_BYTES (imported from the short path's module): frames of at least this many
# bytes travel without copies: received as memoryviews of the zmq message; sent with
# ``copy=False`` by one-way sockets (below) when immutable (bytes, read-only memoryviews).
#: Sockets that send large frames without copying. pyzmq releases zero-copy buffers in its
#: garbage-collector thread, one GIL hand-off per message: streams gain (PUSH/PULL 100 kB
#: about 1.6x), request/reply round trips lose (about 0.7x), so only one-way sockets do it.
_ZERO_COPY_SENDERS = frozenset({zmq.PUSH, zmq.PUB, zmq.XPUB})
# plain ints: or-ing the zmq.Flag members would go through enum code on every send
_NOBLOCK = int(zmq.NOBLOCK)
_NOBLOCK_SNDMORE = int(zmq.NOBLOCK) | int(zmq.SNDMORE)
_fromwire = Message._fromwire
#: pyzmq's own socket class and the send of its compiled base class: ``zmq.Socket.send``
#: is a Python wrapper (for the routing_id/group keywords zio does not use) that costs as
#: much as the send itself for small frames. Used on sockets of exactly this class only
#: (a subclass, e.g. an asyncio socket, keeps its own send).
_PLAIN_SOCKET = zmq.Socket
_base_send = zmq.backend.Socket.send


class _WeakListener:
    """A port's listener on its Peer, holding the port weakly: a port dropped while online
    is collected (its sockets closed with it) instead of living as long as the Peer. Once
    the port is gone, the next event takes this stand-in off the Peer."""

    __slots__ = ("_method", "_peer")

    def __init__(self, method: Callable[[Any], None], peer: Any) -> None:
        self._method = weakref.WeakMethod(method)
        self._peer = weakref.ref(peer)

    def __call__(self, event: Any) -> None:
        method = self._method()
        if method is not None:
            method(event)
            return
        peer = self._peer()
        if peer is not None:
            peer.remove_listener(self)  # listeners run over a copy of the list: safe here


def header_key(port_name: str, key: str) -> str:
    """The peer-header key under which port ``port_name`` advertises ``key``."""
    return f"zio.port.{port_name}.{key}"


def advertised_addresses(headers: Mapping[str, str], port_name: str) -> list[str]:
    """The addresses a peer advertises for its port ``port_name``: several binds are joined
    by spaces (ZIO C++, zio) or commas (zio before 0.2); both are read."""
    value = headers.get(header_key(port_name, "address"), "")
    return [a for a in _ADDRESS_SPLIT.split(value) if a] if isinstance(value, str) else []


def _unusable_address(address: str) -> str | None:
    """Why an advertised ``address`` cannot be connected to, or None if it looks usable."""
    transport, sep, rest = address.partition("://")
    if not sep or not rest:
        return "not a ZeroMQ address (transport://endpoint)"
    if transport not in ("tcp", "ipc", "inproc", "ws", "wss", "tipc", "vmci", "udp", "pgm", "epgm", "norm"):
        return f"unknown transport {transport!r}"
    return None


_F = TypeVar("_F", bound=Callable[..., Any])


def _exclusive(method: _F) -> _F:
    """Run ``method`` holding the port's lock: one thread at a time touches the socket."""

    def locked(self: "Port", *args: Any, **kwargs: Any) -> Any:
        self._lock.acquire()
        try:
            return method(self, *args, **kwargs)
        finally:
            self._release()

    locked.__name__ = method.__name__
    locked.__qualname__ = method.__qualname__
    locked.__doc__ = method.__doc__
    return locked  # type: ignore[return-value]


#: The contexts zio ports use; at interpreter exit their queued messages get a chance to leave.
_CONTEXTS: "weakref.WeakSet[zmq.Context]" = weakref.WeakSet()
#: Open port sockets of the ``_NO_LINGER`` types: closed at exit without a linger.
_UNLINGERING: "weakref.WeakSet[zmq.Socket]" = weakref.WeakSet()


@atexit.register
def _deliver_queued_messages() -> None:
    """ZeroMQ sends in the background: a program that sends and exits would lose its last
    messages. At exit, give them up to ``CLOSE_LINGER_MS`` to leave (bounded: never a hang)."""
    for sock in list(_UNLINGERING):
        if not sock.closed:
            sock.close(linger=0)
    for context in list(_CONTEXTS):
        if not context.closed:
            context.destroy(linger=CLOSE_LINGER_MS)


def _deadline(timeout_ms: float | None) -> float | None:
    """Monotonic deadline of a timeout in ms; None or negative: none."""
    return None if timeout_ms is None or timeout_ms < 0 else time.monotonic() + timeout_ms / 1000.0


def _poll_ms(deadline: float | None) -> int | None:
    """Milliseconds a poll may wait until ``deadline`` (rounded up: no spinning on fractions)."""
    if deadline is None:
        return None
    return max(0, math.ceil((deadline - time.monotonic()) * 1000.0))


class Wait(NamedTuple):
    """A wait that the port logic shared by :class:`Port` and :mod:`zio.asyncio` asks its
    driver for: the sync Port blocks its thread, ``zio.asyncio`` awaits.

    ``kind`` is "monitor" (until the port's monitor socket has an event), "sleep", or
    "peer" (until ``ready()`` returns something true; the driver sends its last result
    back); ``ms`` bounds it."""

    kind: str
    ms: float
    ready: Callable[[], Any] | None = None


def _drive(waits: Generator[Wait, Any, None], wait: Callable[[Wait], Any]) -> None:
    """Run the shared logic ``waits``, carrying out each wait it yields with ``wait``."""
    try:
        request = next(waits)
        while True:
            request = waits.send(wait(request))
    except StopIteration:
        pass


def _close_fds(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _tcp_address(host: str, port: int | str) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    return f"tcp://{host}:{port}"


class Port:
    """A named ZeroMQ socket that sends and receives :class:`zio.Message`.

    ``socket_type`` is any pyzmq socket-type constant except STREAM/DGRAM. ``hostname``
    is the interface address a plain :meth:`bind` uses. Binds and connects are requested
    first and carried out by :meth:`do_binds` and :meth:`online`.

    Threads: a port is used by one thread at a time; every call holds the port's lock, so
    a call from a second thread waits for the current one to end. Discovery changes are
    applied by the discovery thread itself while the port is idle (under the same lock:
    ZeroMQ allows a socket to move between threads with a full memory barrier, which the
    lock gives), and by the port's own thread, woken through a pipe, while a call runs.

    ``security`` (a :class:`zio.Security`; default ``$ZIO_CERT``/``$ZIO_TRUSTED``; False:
    off): binds are CURVE servers admitting trusted keys only, connects by name expect the
    key the named peer proved. When a trusted key is removed, a bound port's socket starts
    over on the same addresses (queued messages and subscriptions of that socket are lost).
    """

    def __init__(
        self,
        name: str,
        socket_type: int,
        hostname: str = "127.0.0.1",
        *,
        context: zmq.Context | None = None,
        security: security_mod.Security | bool | None = None,
    ):
        if not isinstance(name, str) or not name or any(c in name for c in ". \t\n"):
            raise ConfigurationError(f"port names must be non-empty, without dots or spaces: {name!r}")
        self.name = name
        self.hostname = hostname
        self.plan = plan_socket(socket_type)
        self._lock = _short.PortLock()
        #: what send() and recv()'s short path reads (compiled where it was built): the port's
        #: socket while nothing is to be done first, the origin, the lock's token
        self._fast = _short.FastPath(self._lock)
        self.origin = None
        self.headers: dict[str, str] = {}
        # room for this port's files (socket, pipe, monitor, connections): raised if need be
        limits.ensure_open_files(limits.HEADROOM, f"port {name!r}")
        if context is None:
            context = zmq.Context.instance()
            limits.configure_context(context)  # more than 1023 sockets, if zio is first
        self._context = context
        _CONTEXTS.add(self._context)
        #: CURVE trust (None: off): binds are CURVE servers behind ZAP, connects pin the key
        self.security = security_mod.resolve(security)
        self._server_keys: dict[str, bytes] = {}  # direct address -> server key given
        self._restart_due = False
        self.sock = self._open_socket()
        self._to_bind: list[tuple[Any, ...]] = []
        self._bound: list[str] = []
        self._direct: list[str] = []  # requested plain addresses
        self._wishes: list[tuple[str, str]] = []  # requested (node, port) names
        self._connected: set[str] = set()  # addresses connected now
        self._resolved: set[str] = set()  # those of them that came from names
        self._backlog: collections.deque[list[Any]] = collections.deque()  # read, not yet returned
        self._peer: Peer | None = None
        self._peer_listener: _WeakListener | None = None  # on _peer while online
        self._online = False
        self._dirty = False
        self._monitor: zmq.Socket | None = None  # handshake events of the connects it makes
        self._pending: dict[str, float] = {}  # connected address -> when, handshake not seen yet
        self._departing: dict[str, float] = {}  # address of a departed peer -> disconnect deadline
        self._dropped: set[str] = set()  # connected addresses whose connection closed (monitor)
        self._subscription_wait_until = 0.0  # a PUB's new subscribers are subscribing until then
        self._warned: set[tuple[str, str]] = set()
        self._departures = 0
        # the discovery thread wakes the port through this pipe; the port alone touches the socket
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._close_pipe = weakref.finalize(self, _close_fds, self._wake_r, self._wake_w)
        self._poller = zmq.Poller()
        self._poller.register(self.sock, zmq.POLLIN)
        self._poller.register(self._wake_r, zmq.POLLIN)
        if self.security is not None:
            self.security.add_listener(self._on_trust_change)
        #: the flags of recv()'s first read when it has no timeout: a port without a peer
        #: (nor trust to follow: a revoked key restarts the socket) has no change to wake
        #: up for, so it waits in ZeroMQ (0); otherwise it reads without waiting, then polls
        self._fast.recv_wait = _NOBLOCK if self.security is not None else 0

    @property
    def origin(self) -> int | None:
        """Stamped on every message the port sends (None: each message keeps its own)."""
        return self._fast.origin

    @origin.setter
    def origin(self, origin: int | None) -> None:
        self._fast.origin = origin

    @property
    def sock(self) -> zmq.Socket:
        """The port's pyzmq socket (a new one after a restart or an offline(): read it anew)."""
        return self._sock

    @sock.setter
    def sock(self, sock: zmq.Socket) -> None:
        self._sock = sock
        # the socket of the short path (one frame a part), which calls the compiled send and
        # recv of pyzmq's base class: sockets of exactly zmq.Socket only (a subclass, e.g.
        # an asyncio socket, keeps its own send and recv, and the general path)
        multipart = self.plan.framing is Framing.MULTIPART
        self._short_sock: zmq.Socket | None = (
            sock if multipart and type(sock) is _PLAIN_SOCKET else None
        )
        # the short path stays off until send() and recv() find nothing to do first; whatever
        # gives them something to do turns it off again (a discovery thread too, before it
        # tries the lock, as with _dirty)
        fast = self._fast
        fast.send_ready = fast.recv_ready = None
        fast.zero_copy = self.plan.actual in _ZERO_COPY_SENDERS

    def _open_socket(self) -> zmq.Socket:
        """A new socket of the port's type, with the options zio relies on."""
        try:
            sock = self._context.socket(self.plan.actual)
        except zmq.ZMQError as err:  # out of files or of context sockets: say so clearly
            problem = limits.socket_error(err, f"port {self.name!r}", self._context)
            if problem is not None:
                raise problem from err
            sock = self._context.socket(self.plan.actual)  # the open-file limit was raised
        if self.plan.actual == zmq.ROUTER:
            # an unroutable reply is an error, not a silent drop
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        if self.plan.actual in _ONE_WAY_DEALERS:
            # deal only to completed connections, so nothing is queued for a peer that is gone
            sock.setsockopt(zmq.IMMEDIATE, 1)
        if self.plan.actual in _NO_LINGER:
            _UNLINGERING.add(sock)
        # disconnect() uses the socket's linger for what is queued to that address (a peer
        # that left). libzmq's default is forever (0 for SUB): bound it, so that nothing can
        # hang an exit. Not 0 for the others: a zero linger would also drop what the departing
        # peer sent us that is not read yet (libzmq then ends the pipe without delay).
        sock.setsockopt(zmq.LINGER, self._linger_ms)
        return sock

    @property
    def _linger_ms(self) -> int:
        """How long closing waits for queued messages: none for sockets that only subscribe."""
        return 0 if self.plan.actual in _NO_LINGER else CLOSE_LINGER_MS

    # -- introspection ---------------------------------------------------------
    @property
    def socket_type(self) -> int:
        """The socket type that was asked for (CLIENT even when a DEALER stands in for it)."""
        return self.plan.requested

    @property
    def socket_name(self) -> str:
        """The ZeroMQ name of the requested socket type, e.g. ``"CLIENT"``."""
        return self.plan.name

    @property
    def is_online(self) -> bool:
        """True between :meth:`online` and :meth:`offline`."""
        return self._online

    @property
    def bound(self) -> list[str]:
        """The addresses this port is bound to."""
        return list(self._bound)

    @property
    def connected(self) -> list[str]:
        """The addresses this port is connected to now (direct and resolved)."""
        return sorted(self._connected)

    @property
    def departures(self) -> int:
        """How many addresses resolved by name have gone since the port was made (their
        peer left, died or moved). A message sent to a peer that died before discovery
        noticed is lost without an error: a requester that gets no reply can compare this
        count with its value at the send to tell a departed server from a slow one."""
        return self._departures

    def __repr__(self) -> str:
        return (
            f"<zio.Port {self.name!r} {self.plan.name} bound={self._bound} "
            f"connected={sorted(self._connected)} wishes={self._wishes}>"
        )

    # -- requests ----------------------------------------------------------------
    def bind(self, *spec: Any) -> None:
        """Request a bind: ``bind()`` (ephemeral TCP port on ``hostname``), ``bind(address)``,
        or ``bind(host, tcp_port)``. Carried out by :meth:`do_binds`."""
        if len(spec) == 0:
            self._to_bind.append(())
        elif len(spec) == 1 and isinstance(spec[0], str) and "://" in spec[0]:
            self._to_bind.append((spec[0],))
        elif len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], int):
            if not 0 <= spec[1] < 65536:
                raise ConfigurationError(f"TCP port out of range: {spec[1]}")
            self._to_bind.append((spec[0], spec[1]))
        else:
            raise ConfigurationError(
                f"bind() takes nothing, a ZeroMQ address or (host, tcp_port), not {spec!r}"
            )

    @_exclusive
    def connect(self, *spec: str, server_key: str | bytes | None = None) -> None:
        """Request a connect: ``connect(address)`` or ``connect(node, port)`` to be resolved by name.

        A secure port connecting to a plain address needs the ``server_key`` (Z85) it expects."""
        if len(spec) == 1 and isinstance(spec[0], str) and "://" in spec[0]:
            if self.security is not None:
                if not server_key:
                    raise ConfigurationError(f"secure port {self.name!r}: connect({spec[0]!r}) needs server_key=")
                self._server_keys[spec[0]] = server_key.encode() if isinstance(server_key, str) else server_key
            self._direct.append(spec[0])
            if self._online:
                self._connect(spec[0])
        elif len(spec) == 2 and all(isinstance(s, str) and s for s in spec):
            if spec not in self._wishes:
                self._wishes.append((spec[0], spec[1]))
            if self._online:
                if self._peer is None:
                    raise PortError(f"port {self.name!r} is online without a peer: cannot resolve {spec}")
                self._watch_handshakes()
                self._dirty = True
                self._fast.send_ready = self._fast.recv_ready = None
        else:
            raise ConfigurationError(
                f"connect() takes a ZeroMQ address or (node, port) names, not {spec!r}"
            )

    @_exclusive
    def subscribe(self, prefix: str | bytes = "") -> None:
        """Subscribe a SUB (or XSUB) port to messages whose prefix starts with ``prefix`` ("" for
        all); a DISH port joins the group named ``prefix``."""
        topic = prefix.encode() if isinstance(prefix, str) else bytes(prefix)
        if self.plan.name == "SUB":
            self.sock.setsockopt(zmq.SUBSCRIBE, topic)
        elif self.plan.name == "XSUB":
            self.sock.send(b"\x01" + topic)  # XSUB subscribes with a message to its publishers
        elif self.plan.framing is Framing.DISH_OVER_SUB:
            self.sock.setsockopt(zmq.SUBSCRIBE, group_topic(topic))
        elif self.plan.name == "DISH":
            self.sock.join(topic.decode())
        else:
            raise PortError(f"port {self.name!r} is {self.plan.name}: only SUB, XSUB and DISH subscribe")

    def add_headers(self, *dicts: Mapping[str, Any], **headers: Any) -> None:
        """Add peer headers; each key is advertised as ``zio.port.<port name>.<key>``."""
        for mapping in (*dicts, headers):
            for key, value in mapping.items():
                if not isinstance(key, str) or not key:
                    raise ConfigurationError(f"header keys must be non-empty strings: {key!r}")
                self.headers[header_key(self.name, key)] = value if isinstance(value, str) else str(value)

    # -- carrying out --------------------------------------------------------
    def _bind_one(self, spec: tuple[Any, ...]) -> str:
        if len(spec) == 1:
            address = spec[0]
        else:
            host, tcp_port = spec if spec else (self.hostname, 0)
            address = _tcp_address(host, tcp_port or "*")
        if self.security is not None:
            self.security.apply_server(self.sock)
        try:
            self.sock.bind(address)
        except zmq.ZMQError as err:
            raise PortError(f"port {self.name!r} cannot bind {address}: {err}") from err
        actual = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        for wildcard in ("0.0.0.0", "[::]"):  # advertise a reachable address, not a wildcard
            if f"//{wildcard}:" in actual:
                actual = actual.replace(wildcard, self.hostname, 1)
        return actual

    @_exclusive
    def do_binds(self) -> dict[str, str]:
        """Carry out the requested binds; return this port's peer headers (``address``, ``socket``...).

        Several bound addresses are advertised joined by one space, as ZIO C++ does."""
        return self._do_binds()

    def _do_binds(self) -> dict[str, str]:
        while self._to_bind:
            address = self._bind_one(self._to_bind.pop(0))
            self._bound.append(address)
            log.debug("port %s bound %s", self.name, address)
        if self._bound:
            self.add_headers(address=ADDRESS_SEPARATOR.join(self._bound))
        self.add_headers(socket=self.plan.name)
        if self.plan.emulated:
            self.add_headers(carrier=zmq.SocketType(self.plan.actual).name)
        return dict(self.headers)

    @_exclusive
    def online(self, peer: Peer | None = None, timeout_ms: float | None = None) -> None:
        """Make the connects; names are resolved through ``peer``.

        Waits up to ``timeout_ms`` (default ``$ZIO_RESOLVE_TIMEOUT_MS`` or 5000 ms) for named
        nodes that are not known yet, then returns (logging a WARNING naming them); they are
        connected whenever they appear. Once a named node is seen, it also waits, within the
        same bound, until discovery has had time to report the other peers of that name
        already on the network (the backend's ``settle_ms`` of quiet) and until the
        connections are up, so that a burst sent right after ``online()`` is shared by
        every one of them.
        """
        deadline = self._go_online(peer, timeout_ms)
        if deadline is None:
            return
        if peer is not None and self._wishes:
            _drive(self._name_waits(peer, deadline), self._wait_blocking)
        self._resolve()
        self._await_handshakes(deadline)

    def _go_online(self, peer: Peer | None, timeout_ms: float | None) -> float | None:
        """The part of :meth:`online` that does not wait: binds, direct connects, listening
        to ``peer``. Returns the deadline of the waits that follow (None: online already)."""
        if self._online:
            return None
        if self._wishes and peer is None:
            raise PortError(
                f"port {self.name!r} has connects by name {self._wishes} but online() got no peer"
            )
        self._do_binds()
        if timeout_ms is None:
            timeout_ms = config.resolve_timeout_ms()
        deadline = time.monotonic() + max(0.0, timeout_ms) / 1000.0
        if self._wishes or self._direct:
            self._watch_handshakes()
        for address in self._direct:
            self._connect(address)
        self._peer = peer
        self._fast.recv_wait = _NOBLOCK if peer is not None or self.security is not None else 0
        self._online = True
        if peer is not None:
            self._peer_listener = _WeakListener(self._on_peer_event, peer)
            peer.add_listener(self._peer_listener)
        return deadline

    def _wait_blocking(self, wait: Wait) -> Any:
        """Carry out one wait the shared logic asks for, blocking this thread."""
        if wait.kind == "peer":
            assert self._peer is not None and wait.ready is not None
            return self._peer._wait(wait.ready, wait.ms)
        if wait.kind == "monitor":
            if self._monitor is not None:
                self._monitor.poll(math.ceil(wait.ms))
        else:
            time.sleep(wait.ms / 1000.0)
        return None

    def _name_waits(self, peer: Peer, deadline: float) -> Generator[Wait, Any, None]:
        """Wait until every wished node is known and discovery has settled (both bounded).

        The logic of it, shared by this class and :mod:`zio.asyncio`: it yields the waits it
        needs, and is sent what a "peer" wait's ``ready()`` returned at its end."""
        for node, _ in self._wishes:
            found = yield Wait("peer", max(0.0, deadline - time.monotonic()) * 1000.0, partial(peer.matchnick, node))
            if not found:
                log.warning(
                    "port %s: no node named %r found within the wait of online(); it will be "
                    "connected when it appears", self.name, node,
                )
        if any(not peer.matchnick(node) for node, _ in self._wishes):
            return  # what is missing was warned about; the rest is connected now
        settle = max(0.0, float(getattr(peer.backend, "settle_ms", 0.0) or 0.0)) / 1000.0
        nicks = {node for node, _ in self._wishes}

        def matching() -> frozenset[Any]:
            return frozenset(u for u, info in peer.peers.items() if info.nick in nicks)

        seen = matching()
        quiet_until = max(time.monotonic(), peer.started + settle)
        while True:
            wait = min(quiet_until, deadline) - time.monotonic()
            if wait <= 0:
                return
            now = yield Wait("peer", wait * 1000.0, lambda: matching() - seen)
            if now:
                quiet_until = time.monotonic() + settle  # one more came: others may follow
                seen = matching()

    @_exclusive
    def offline(self) -> None:
        """Undo every connect and bind and forget them: the port is as just constructed.

        The socket is replaced by a new one (``port.sock`` changes): unbinding alone would
        leave the connections already accepted open, and messages sent to them would be
        lost. Queued outgoing messages get ``CLOSE_LINGER_MS`` to leave; subscriptions are
        forgotten too.
        """
        self._forget(reopen=True)

    def _forget(self, reopen: bool) -> None:
        """Drop every bind, connect and wish; with ``reopen``, start over on a new socket."""
        if self._peer is not None:
            if self._peer_listener is not None:
                self._peer.remove_listener(self._peer_listener)
                self._peer_listener = None
            self._peer = None
            self._fast.recv_wait = _NOBLOCK if self.security is not None else 0
        self._unwatch_handshakes()
        if reopen and (self._bound or self._connected):
            self._poller.unregister(self.sock)
            self.sock.close(linger=self._linger_ms)
            self.sock = self._open_socket()
            self._poller.register(self.sock, zmq.POLLIN)
        self._bound.clear()
        self._connected.clear()
        self._to_bind.clear()
        self._direct.clear()
        self._wishes.clear()
        self._resolved.clear()
        self._backlog.clear()
        self.headers = {k: v for k, v in self.headers.items() if not k.endswith((".address", ".socket", ".carrier"))}
        self._online = False
        self._dirty = False

    @_exclusive
    def close(self) -> None:
        """Go offline and close the socket, giving queued messages ``CLOSE_LINGER_MS`` to leave."""
        if self.sock.closed:
            return
        self._forget(reopen=False)
        self.sock.close(linger=self._linger_ms)
        self._close_pipe()

    def __enter__(self) -> "Port":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- live resolution ------------------------------------------------------------
    def _on_peer_event(self, event: PeerEvent | None) -> None:
        """Called in the discovery thread. If the port is idle, apply the change here and now
        (holding the port's lock); if a call is running, wake it to apply the change itself."""
        if event is not None and not any(event.peer.nick == node for node, _ in self._wishes):
            return
        self._dirty = True  # first the flag, then the lock: see _release
        self._fast.send_ready = self._fast.recv_ready = None
        if self._lock.acquire(False):
            self._release()
        else:
            try:
                os.write(self._wake_w, b"!")
            except (BlockingIOError, OSError):
                pass  # the pipe is full (a wake-up is pending anyway) or the port is closed

    def _release(self) -> None:
        """Release the port's lock, then apply discovery changes that came while it was held.

        A discovery thread sets ``_dirty`` before it tries the lock, and the holder looks at
        ``_dirty`` after releasing it, so every change is applied by one or the other."""
        self._lock.release()
        if self._dirty:
            self._catch_up()

    def _catch_up(self) -> None:
        """Apply pending discovery changes, unless another thread holds the lock (it will)."""
        while self._dirty and self._lock.acquire(False):
            try:
                if self._dirty and self._online and not self.sock.closed:
                    self._resolve()
                    self._read_handshakes()
            except Exception:  # remote input never raises in the local program
                log.exception("port %s: applying a discovery change failed", self.name)
            finally:
                self._lock.release()

    def _wanted_addresses(self) -> dict[str, tuple[PeerInfo, str]]:
        """The addresses named nodes advertise now, each with the node and port advertising it."""
        wanted: dict[str, tuple[PeerInfo, str]] = {}
        if self._peer is None:
            return wanted
        peers = self._peer.peers.values()
        for node, port_name in self._wishes:
            for info in peers:
                if info.nick != node:
                    continue
                remote_type = info.headers.get(header_key(port_name, "socket"), "")
                if remote_type and not can_talk(self.plan.name, remote_type):
                    self._warn_once(info, port_name, f"is {remote_type}, which a {self.plan.name} port cannot talk to")
                    continue
                for address in advertised_addresses(info.headers, port_name):
                    why = _unusable_address(address)
                    if why is None:
                        wanted.setdefault(address, (info, port_name))
                    else:
                        self._warn_once(info, port_name, f"advertises {address!r}: {why}")
        return wanted

    def _warn_once(self, info: PeerInfo, port_name: str, what: str) -> None:
        """Log a problem with a remote node's advert at WARNING, once per node and problem."""
        key = (str(info.uuid), f"{port_name} {what}")
        if key in self._warned:
            return
        if len(self._warned) >= _WARNED_MAX:
            self._warned.clear()
        self._warned.add(key)
        log.warning("port %s: skipping port %r of node %r (%s): it %s", self.name, port_name, info.nick, info.uuid, what)

    def _resolve(self) -> None:
        """Connect to the addresses named nodes advertise now; drop those that went away."""
        self._dirty = False
        if self._restart_due:
            self._restart_socket()
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        wanted = self._wanted_addresses()
        departed = [a for a in self._resolved - wanted.keys() if a not in self._direct]
        if departed:
            self._departures += len(departed)
            if self._monitor is not None and self._keeps_messages():
                # disconnecting drops what the peer sent that has not arrived yet (a reply it
                # sent just before leaving): wait for its connection to close first, unless
                # it closed already (then all it sent has arrived)
                grace = time.monotonic() + DEPARTURE_GRACE_MS / 1000.0
                for address in departed:
                    self._departing.setdefault(address, grace)
                self._fast.send_ready = None
                self._read_handshakes()  # closes seen since, and before (_dropped)
            else:
                self._keep_unread()
                for address in departed:
                    self._disconnect(address)
        for address, source in wanted.items():
            self._departing.pop(address, None)  # back (a restart on the same address)
            if address not in self._connected:
                self._connect(address, source)
        self._resolved = {a for a in wanted if a in self._connected}

    def _on_trust_change(self, added: frozenset, removed: frozenset) -> None:
        """Trusted keys went away: connections accepted from them must close. libzmq cannot
        close one accepted connection, so the socket starts over (same binds and connects)."""
        if removed and self._bound:
            self._restart_due = True
            self._on_peer_event(None)

    def _restart_socket(self) -> None:
        """Replace the socket by a new one bound and connected as the old (a revocation)."""
        self._restart_due = False
        bound, connected = list(self._bound), list(self._connected)
        self._unwatch_handshakes()
        self._poller.unregister(self.sock)
        self.sock.close(linger=0)
        self.sock = self._open_socket()
        self._poller.register(self.sock, zmq.POLLIN)
        self._bound, self._connected, self._resolved = [], set(), set()
        for address in bound:
            for _ in range(100):  # the old listener closes in libzmq's I/O thread
                try:
                    self._bound.append(self._bind_one((address,)))
                    break
                except PortError:
                    time.sleep(0.01)
            else:
                log.error("port %s: could not bind %s again after a revocation", self.name, address)
        if connected:
            self._watch_handshakes()
        for address in connected:
            if address in self._direct:
                self._connect(address)
        log.info("port %s: socket restarted after a trusted key was removed", self.name)

    def _keeps_messages(self) -> bool:
        """True for sockets that receive messages a departing peer may have sent."""
        return self.plan.framing is not Framing.SINGLE and self.plan.actual not in _NOTHING_TO_KEEP

    def _let_go(self, addresses: list[str]) -> None:
        """Disconnect departed peers' addresses, keeping what they sent that is not read yet."""
        self._keep_unread()
        for address in addresses:
            self._departing.pop(address, None)
            self._disconnect(address)

    def _expire_departures(self) -> None:
        """Let go of departed peers whose connection did not close within the grace."""
        now = time.monotonic()
        expired = [a for a, until in self._departing.items() if until <= now]
        if expired:
            self._let_go(expired)

    def _keep_unread(self) -> None:
        """Move every message waiting in the socket to the port's backlog, which recv() reads first."""
        if not self._keeps_messages():
            return
        # take in what the I/O thread delivered (a non-blocking recv may skip that step)
        self.sock.getsockopt(zmq.EVENTS)
        while True:
            try:
                self._backlog.append(self._recv_frames(_NOBLOCK))
                self._fast.recv_ready = None
            except zmq.Again:
                return

    def _connect(self, address: str, source: tuple[PeerInfo, str] | None = None) -> None:
        """Connect ``address``. A direct address that fails raises PortError; one advertised
        by a remote node (``source``: its info and port) is logged once and skipped."""
        if address in self._connected:
            return
        if self.security is not None:
            key = self._server_keys.get(address) if source is None else source[0].headers.get(security_mod.KEY_HEADER)
            if not key:
                if source is not None:
                    self._warn_once(source[0], source[1], "has proved no CURVE key")
                return
            self.security.apply_client(self.sock, key)
        try:
            self.sock.connect(address)
        except zmq.ZMQError as err:
            if source is None:
                raise PortError(f"port {self.name!r} cannot connect {address}: {err}") from err
            self._warn_once(source[0], source[1], f"advertises {address!r}: {err}")
            return
        self._connected.add(address)
        if self._monitor is not None and not address.startswith("inproc://"):
            self._pending[address] = time.monotonic()
            self._fast.send_ready = None
        log.debug("port %s connected %s", self.name, address)

    def _disconnect(self, address: str) -> None:
        self._connected.discard(address)
        self._pending.pop(address, None)
        self._departing.pop(address, None)
        self._dropped.discard(address)
        try:
            self.sock.disconnect(address)
        except zmq.ZMQError as err:
            log.debug("port %s: disconnect %s: %s", self.name, address, err)
        log.debug("port %s disconnected %s", self.name, address)

    # -- connection handshakes ----------------------------------------------------------
    def _watch_handshakes(self) -> None:
        """Start watching the socket's connection events (once per socket)."""
        if self._monitor is None:
            self._monitor = self.sock.get_monitor_socket(_HANDSHAKE_EVENTS)
            self._poller.register(self._monitor, zmq.POLLIN)

    def _unwatch_handshakes(self) -> None:
        self._pending.clear()
        self._departing.clear()
        self._dropped.clear()
        if self._monitor is not None:
            self._poller.unregister(self._monitor)
            try:
                self.sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close(linger=0)
            self._monitor = None

    def _read_handshakes(self) -> None:
        """Take the connection events that came: a handshake done or a refusal ends a wait;
        a departed peer's connection that closed is let go of (also one that closed before
        its peer was known to depart)."""
        monitor = self._monitor
        if monitor is None:
            return
        while True:
            try:
                event = parse_monitor_message(monitor.recv_multipart(_NOBLOCK))
            except zmq.Again:
                break
            address = event["endpoint"].decode(errors="replace")
            if event["event"] in _GONE_EVENTS:
                if address in self._connected:
                    self._dropped.add(address)
            elif event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._dropped.discard(address)  # up again (a restart on the same address)
            connected_at = self._pending.pop(address, None)
            if (
                connected_at is not None
                and event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
                and self.plan.actual in _PUBLISHERS
            ):
                low, high = SUBSCRIPTION_WAIT_MS
                now = time.monotonic()
                took_ms = min(max((now - connected_at) * 1000.0, low), high)
                self._subscription_wait_until = max(self._subscription_wait_until, now + took_ms / 1000.0)
                self._fast.send_ready = None
        gone = [address for address in self._departing if address in self._dropped]
        if gone:
            self._let_go(gone)
        if self._departing:
            self._expire_departures()

    def _await_handshakes(self, deadline: float | None) -> None:
        """Wait until the connections just made are up (at most HANDSHAKE_WAIT_MS, and
        ``deadline``), so that what is sent next is shared by them too."""
        _drive(self._handshake_waits(deadline), self._wait_blocking)

    def _handshake_waits(self, deadline: float | None) -> Generator[Wait, Any, None]:
        """The logic of :meth:`_await_handshakes`, yielding the waits it needs (shared with
        :mod:`zio.asyncio`)."""
        limit = time.monotonic() + HANDSHAKE_WAIT_MS / 1000.0
        if deadline is not None:
            limit = min(limit, deadline)
        self._read_handshakes()
        while self._pending and self._monitor is not None:
            wait = _poll_ms(limit)
            if not wait:
                log.debug("port %s: no handshake yet with %s; not waiting longer", self.name, sorted(self._pending))
                self._pending.clear()
                break
            yield Wait("monitor", wait)
            self._read_handshakes()
        if self._subscription_wait_until:
            pause = min(self._subscription_wait_until, limit) - time.monotonic()
            if pause > 0:
                yield Wait("sleep", pause * 1000.0)  # a new subscriber's subscriptions are on their way
            self._subscription_wait_until = 0.0
            # have the socket take in the subscriptions now: a send only looks at them once
            # in a while (libzmq throttles command processing), reading EVENTS does it at once
            self.sock.getsockopt(zmq.EVENTS)

    # -- messages ----------------------------------------------------------------------
    # the short path of send() and recv() and their docs: zio/_fastpath.py (compiled where
    # it was built); where it declines, they go on in _send and _recv_declined below
    send = _short.send
    recv = _short.recv

    def _send(self, msg: Message, timeout_ms: float | None, full: bool) -> None:
        """send() where its short path declined (``full``: it found the socket full)."""
        if type(msg) is not Message and not isinstance(msg, Message):
            raise ConfigurationError(f"Port.send() takes a zio.Message, not {type(msg).__name__}")
        self._lock.acquire()
        try:
            deadline = _deadline(timeout_ms)
            self._prepare_send(deadline)
            if self._short_sock is not None and not self._send_has_work():
                self._fast.send_ready = self._short_sock  # nothing to do first: short path again
            origin = self.origin
            if origin is not None and (type(origin) is not int or msg.origin != origin):
                msg.origin = origin  # validates; unchanged coords keep their cached wire bytes
            frames = self._frames(msg)
            if not full:
                try:
                    self._send_frames(frames)  # usually the socket takes it at once
                    return
                except zmq.Again:
                    pass
                except zmq.ZMQError as err:
                    raise PortError(f"port {self.name!r} ({self.plan.name}) cannot send: {err}") from err
            while True:
                self._wait_writable(deadline)
                self._prepare_send(deadline)  # what woke it up, if anything
                try:
                    self._send_frames(frames)
                    return
                except zmq.Again:
                    pass
                except zmq.ZMQError as err:
                    raise PortError(f"port {self.name!r} ({self.plan.name}) cannot send: {err}") from err
        finally:
            self._release()

    def _after_release(self) -> None:
        """Called by the short path after it gave the lock back while a discovery change
        was announced: apply it (see _release)."""
        if self._dirty:
            self._catch_up()

    def _send_has_work(self) -> bool:
        """Whether a send must do something first (see _prepare_send)."""
        return bool(self._dirty or self._departing or self._pending or self._subscription_wait_until)

    def _prepare_send(self, deadline: float | None) -> None:
        """Apply discovery changes, let go of departed peers' connections, and let new
        connections come up (bounded), so that the message is dealt over the right peers."""
        if self._dirty:
            self._resolve()
        if self._departing:
            if self.plan.actual in _DEALING_KEEPERS:
                _drive(self._departure_waits(deadline), self._wait_blocking)
            else:
                self._read_handshakes()
        if self._pending or self._subscription_wait_until:
            # connections just made by name: let them come up, so that they get their share
            self._await_handshakes(deadline)

    def _departure_waits(self, deadline: float | None) -> Generator[Wait, Any, None]:
        """Wait until departed peers' connections are let go of (closed, or their grace
        is over; see DEPARTURE_GRACE_MS), so that nothing is dealt to a connection about to
        go; PortTimeout (nothing sent) if ``deadline`` comes first. The logic, yielding the
        waits it needs (shared with :mod:`zio.asyncio`)."""
        self._read_handshakes()
        while self._departing and self._monitor is not None:
            until = min(self._departing.values())
            if deadline is not None and deadline < until:
                if time.monotonic() >= deadline:
                    raise PortTimeout(
                        f"port {self.name!r} could not send within the timeout: the connection of "
                        f"a peer that left is still closing ({sorted(self._departing)})")
                until = deadline
            yield Wait("monitor", _poll_ms(until) or 0)
            self._read_handshakes()

    def _send_frames(self, frames: list[Any] | zmq.Frame) -> None:
        """Send one message without blocking (zmq.Again: nothing was sent).

        One ``send`` per frame rather than ``send_multipart`` (whose Python-level checks cost
        more than the send itself for small messages); every part is checked to be a buffer
        before the first frame leaves, as ``send_multipart`` does. Once the first frame of a
        message is taken, ZeroMQ takes the rest.
        """
        sock = self.sock
        send: Callable[..., Any] = _base_send.__get__(sock) if type(sock) is _PLAIN_SOCKET else sock.send
        if not isinstance(frames, list):  # one zmq.Frame (draft single-part sockets)
            send(frames, _NOBLOCK)
            return
        plain = True  # only bytes shorter than ZERO_COPY_BYTES
        for part in frames:
            if type(part) is not bytes:
                try:
                    memoryview(part)
                except TypeError:
                    raise TypeError(
                        f"port {self.name!r}: message part {part!r:.40} does not support the buffer interface"
                    ) from None
                plain = False
            elif len(part) >= ZERO_COPY_BYTES:
                plain = False
        last = len(frames) - 1
        more = _NOBLOCK_SNDMORE
        if plain:
            for i in range(last):
                send(frames[i], more)
            send(frames[last], _NOBLOCK)
            return
        zero_copy = self.plan.actual in _ZERO_COPY_SENDERS
        for i, part in enumerate(frames):
            if not zero_copy:
                copy = True
            elif type(part) is bytes:
                copy = len(part) < ZERO_COPY_BYTES
            else:
                view = memoryview(part)
                copy = view.nbytes < ZERO_COPY_BYTES or not view.readonly
            send(part, more if i < last else _NOBLOCK, copy)

    def _frames(self, msg: Message) -> list[Any] | zmq.Frame:
        """The frames that carry ``msg`` on this port's socket."""
        framing = self.plan.framing
        if framing is Framing.MULTIPART:
            return msg.toparts()
        if framing is Framing.DEALER:
            return [b"", *msg.toparts()]
        if framing is Framing.ENCODED:
            return [msg.encode()]
        if framing is Framing.RADIO_OVER_PUB:
            return [group_topic(msg.form.rstrip() or self.name), msg.encode()]
        if framing is Framing.ROUTER:
            return [self._routing_bytes(msg), b"", *msg.toparts()]
        if framing is Framing.SERVER_OVER_ROUTER:
            return [self._routing_bytes(msg), msg.encode()]
        return self._single_frame(msg)

    def _wait_writable(self, deadline: float | None) -> None:
        """Wait until the socket may take a message or discovery changed something."""
        if deadline is not None and time.monotonic() >= deadline:
            raise PortTimeout(f"port {self.name!r} could not send within the timeout: {self._why_no_peer()}")
        wait = _poll_ms(deadline)
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLOUT)
        poller.register(self._wake_r, zmq.POLLIN)
        ready = dict(poller.poll(wait))
        if self._wake_r in ready:
            self._resolve()
        elif self.sock in ready and self.plan.actual == zmq.ROUTER:
            time.sleep(0.001)  # a ROUTER is always "writable": its EAGAIN means one peer is full

    def _why_no_peer(self) -> str:
        """Say why no peer takes this port's messages: names not found, ports missing,
        socket types that cannot talk to this one, or addresses that did not answer."""
        reasons: list[str] = []
        peers = list(self._peer.peers.values()) if self._peer is not None else []
        for node, port_name in self._wishes:
            nodes = [info for info in peers if info.nick == node]
            if not nodes:
                reasons.append(f"no node named {node!r} was found")
                continue
            with_port = [info for info in nodes if advertised_addresses(info.headers, port_name)]
            if not with_port:
                reasons.append(f"node {node!r} has no port {port_name!r}")
                continue
            types = {info.headers.get(header_key(port_name, "socket"), "?") for info in with_port}
            unfit = sorted(t for t in types if not can_talk(self.plan.name, t))
            if unfit and len(unfit) == len(types):
                reasons.append(
                    f"{node!r} port {port_name!r} is {'/'.join(unfit)}, which a {self.plan.name} port cannot talk to"
                )
            else:
                addresses = sorted(a for info in with_port for a in advertised_addresses(info.headers, port_name))
                reasons.append(f"{node!r} port {port_name!r} at {' '.join(addresses)} took nothing")
        if self._direct:
            reasons.append(f"no peer at {' '.join(self._direct)} took it")
        if not reasons:
            if not self._online:
                return "the port is not online (call online() first)"
            return "the port has no connects and no peer connected to it"
        return "; ".join(reasons)

    def _routing_bytes(self, msg: Message) -> bytes:
        if not msg.routing_id:
            raise PortError(f"port {self.name!r} is {self.plan.name}: the message needs a routing_id")
        return routing_id_to_bytes(msg.routing_id)

    def _single_frame(self, msg: Message) -> zmq.Frame:
        frame = zmq.Frame(msg.encode())
        if self.plan.name == "SERVER":
            if not msg.routing_id:
                raise PortError(f"port {self.name!r} is SERVER: the message needs a routing_id")
            frame.routing_id = int(msg.routing_id)
        elif self.plan.name == "RADIO":
            frame.group = msg.form.rstrip() or self.name
        return frame

    def _recv_declined(self, got: Any, timeout_ms: float | None) -> Message | None:
        """recv() after the short path: ``got`` is the frames it read but did not check, or
        what it did instead of reading (DECLINED, or EMPTY: nothing was there)."""
        self._lock.acquire()
        try:
            if type(got) is list:
                try:
                    return _fromwire(got, 0)
                except MalformedError as err:
                    raise self._malformed(got, str(err)) from err
            if self._short_sock is not None and not self._dirty and not self._backlog:
                self._fast.recv_ready = self._short_sock  # nothing to do first: short path again
            return self._recv(timeout_ms, tried=got == _short.EMPTY)
        except MalformedError:
            if self.plan.actual == zmq.REP:
                self._answer_malformed_request()
            raise
        except zmq.ZMQError as err:
            raise PortError(f"port {self.name!r} ({self.plan.name}) cannot receive: {err}") from err
        finally:
            self._release()

    def _answer_malformed_request(self) -> None:
        """A REP socket owes a reply to every request, even a malformed one."""
        error = Message(level=MessageLevel.error, form="ERR ", label="zio: malformed request")
        try:
            self._send_frames(error.toparts())
        except zmq.ZMQError as err:
            log.warning("port %s could not answer a malformed request: %s", self.name, err)

    def _recv(self, timeout_ms: float | None, tried: bool = False) -> Message | None:
        """Receive one message (``tried``: a read without waiting found none just now)."""
        if not self._dirty and not tried:
            try:
                return self._read(_NOBLOCK)  # a message is waiting already: no poll needed
            except zmq.Again:
                pass
        deadline = _deadline(timeout_ms)
        while True:
            if self._dirty:
                self._resolve()
            if self._departing:
                self._read_handshakes()
            if self._backlog:
                return self._read()
            wake_at = deadline
            if self._departing:  # wake up to let go of them in time
                first = min(self._departing.values())
                wake_at = first if deadline is None else min(first, deadline)
            ready = dict(self._poller.poll(_poll_ms(wake_at)))
            if self.sock in ready:
                return self._read()
            if self._wake_r in ready:
                self._resolve()
                continue
            if self._monitor is not None and self._monitor in ready:
                self._read_handshakes()
                continue
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def _recv_frames(self, flags: int) -> list[Any]:
        """The frames of one message: bytes, or memoryviews for frames of ZERO_COPY_BYTES or more."""
        recv = self.sock.recv
        frames: list[Any] = []
        append = frames.append
        while True:
            frame = recv(flags, False)
            append(frame.bytes if len(frame) < ZERO_COPY_BYTES else frame.buffer)
            if not frame.more:
                return frames

    def _read(self, flags: int = 0) -> Message:
        framing = self.plan.framing
        if framing is Framing.SINGLE:
            frame = self.sock.recv(flags, copy=False)
            return self._parse([frame.bytes], lambda: Message(frame=frame))
        frames = self._backlog.popleft() if self._backlog else self._recv_frames(flags)
        rid: int | bytes
        if framing is Framing.MULTIPART:
            parts, rid = frames, 0
        elif framing is Framing.DEALER:
            parts, rid = (frames[1:] if frames and frames[0] == b"" else frames), 0
        elif framing is Framing.ENCODED:
            if len(frames) != 1:
                raise self._malformed(frames, f"expected one frame, got {len(frames)}")
            parts, rid = None, 0
        elif framing is Framing.DISH_OVER_SUB:
            if len(frames) != 2:
                raise self._malformed(frames, f"expected [group, message], got {len(frames)} frames")
            parts, rid = None, 0
        else:
            rid, rest = frames[0], frames[1:]
            if framing is Framing.ROUTER:
                parts = rest[1:] if rest and rest[0] == b"" else rest
                rid = bytes(rid)
            else:  # SERVER_OVER_ROUTER
                if len(rest) != 1:
                    raise self._malformed(frames, f"expected one frame after the routing id, got {len(rest)}")
                parts, rid = None, routing_id_to_int(frames[0])
        try:
            if parts is None:  # one frame holding the CZMQ-encoded parts
                # a large frame came without a copy: keep its large parts as views into it
                parts = _decode_parts(frames[-1], ZERO_COPY_BYTES)
            return _fromwire(parts, rid)
        except MalformedError as err:
            raise self._malformed(frames, str(err)) from err

    def _parse(self, frames: list[bytes], build: Any) -> Message:
        try:
            return build()
        except MalformedError as err:
            raise self._malformed(frames, str(err)) from err

    def _malformed(self, frames: list[bytes], why: str) -> MalformedError:
        err = MalformedError(f"port {self.name!r} received a malformed message: {why}")
        err.frames = frames  # type: ignore[attr-defined]
        return err
