"""``Port.send()`` and ``Port.recv()``, and the port's lock they take inline.

They take a short path for the common case: a socket of one frame per message part,
nothing for the port to do first (no discovery change, departed or new connection to
wait for), a plain ``zio.Message``. Anything else goes to the port's general path
(``Port._send``, ``Port._recv_declined``). Built by Cython at install where a C compiler
is at hand (``setup.py``; C types in ``_fastpath.pxd``), the same code runs as plain
Python otherwise; ``COMPILED`` tells which, and ``zio._shortpath`` picks the form.
"""
# ruff: noqa: F821 -- ZSocket, ZFrame, Message and two helpers are bound by globals().update()
# below (declared by the .pxd where compiled), which ruff cannot follow; mypy checks each name
from __future__ import annotations

import threading
from typing import Any

import zmq
import zmq.backend

from .errors import PortError
from . import message as _message
from .message import _COORD_SIZE, _PREFIX_CACHE


#: what the short path of send() did: declined (nothing sent), sent, or found the socket full
DECLINED = 0
SENT = 1
FULL = 2
#: what the short path of recv() did when it returns no message: declined (nothing read),
#: or read and found nothing there
EMPTY = 1

#: parts this long or longer leave without a copy (where the socket allows) and arrive as
#: memoryviews of the ZeroMQ message
ZERO_COPY_BYTES: int = zmq.COPY_THRESHOLD
# plain ints (or-ing zmq.Flag members runs enum code), C integers where compiled (the .pxd)
_NOBLOCK: int = int(zmq.NOBLOCK)
_NOBLOCK_SNDMORE: int = int(zmq.NOBLOCK) | int(zmq.SNDMORE)
_BIG: int = ZERO_COPY_BYTES
_COORD: int = _COORD_SIZE
_Again = zmq.Again
_ZMQError = zmq.ZMQError

# pyzmq's socket and frame classes (the base classes, compiled in pyzmq). Where Cython
# builds this module, the .pxd cimports them as C types: ``ZSocket.send(sock, ...)`` and
# ``ZSocket.recv(sock, ...)`` then call pyzmq's compiled send and recv directly (no Python
# call, no argument parsing) and ``frame.more`` is read from the frame itself. As Python,
# these are the same calls through the classes (``zmq.Socket.send``, a Python wrapper, is
# skipped in both forms).
ZSocket: type[zmq.backend.Socket]
ZFrame: type[zmq.backend.Frame]
# zio.Message, and two helpers. Compiled, the .pxd declares Message's C layout: its slots
# are read and written as C fields, a new one is made by _new_message (its slots None), and
# _message_complete tells whether every slot holds a value (one made without __init__ may
# not). As Python, these are Message, object.__new__ and a check with nothing to do.
Message: type[_message.Message]
_new_message: Any
_message_complete: Any


def _every_slot_set(msg: Any) -> bool:
    return True


globals().update(ZSocket=zmq.backend.Socket, ZFrame=zmq.backend.Frame, Message=_message.Message,
                 _new_message=object.__new__, _message_complete=_every_slot_set)

#: whether this module runs compiled (built by Cython: its file is not the .py)
COMPILED: bool = not __file__.endswith((".py", ".pyc"))


def _layout_is_as_declared() -> bool:
    """Whether Message's slots, written as Python attributes, read back as the .pxd's C
    fields (always, as Python)."""
    msg = _new_message(Message)
    p, c, payload, routing_id = object(), object(), object(), object()
    # through each slot's descriptor: at the offsets CPython gave them
    setattr(msg, "_p", p)
    setattr(msg, "_c", c)
    setattr(msg, "_payload", payload)
    setattr(msg, "_routing_id", routing_id)
    # compiled: at the offsets the .pxd declares
    return msg._p is p and msg._c is c and msg._payload is payload and msg._routing_id is routing_id


if not _layout_is_as_declared():
    raise ImportError("zio: zio.Message's slots are not where zio/_fastpath.pxd declares them")


class PortLock:
    """The port's lock, as ``threading.Lock`` (``acquire(blocking=True)``, ``release()``),
    cheaper where nobody waits: the lock is free while ``token`` holds its one item, and
    is taken by popping it (one atomic call). ``send()`` and ``recv()`` take it and give
    it back inline (``token.pop()``, ``token.append(True)``, then ``wake()`` if
    ``waiters``). A thread that must wait sleeps on a condition; ``release()`` wakes one.
    (A waiter counts itself and tries again under the condition before sleeping, and a
    releaser gives the token back before it reads the count, so no wake-up is lost.)
    """

    def __init__(self) -> None:
        self.token: list[bool] = [True]
        self.waiters: int = 0
        self._cond = threading.Condition(threading.Lock())

    def acquire(self, blocking: bool = True) -> bool:
        token = self.token
        try:
            token.pop()
            return True
        except IndexError:
            if not blocking:
                return False
        with self._cond:
            self.waiters += 1
            try:
                while True:
                    try:
                        token.pop()
                        return True
                    except IndexError:
                        self._cond.wait()
            finally:
                self.waiters -= 1

    def release(self) -> None:
        if self.token:
            raise RuntimeError("release of an unlocked port lock")
        self.token.append(True)
        if self.waiters:
            self.wake()

    def wake(self) -> None:
        """Wake one thread waiting in :meth:`acquire` (after the token went back)."""
        with self._cond:
            self._cond.notify()

    def locked(self) -> bool:
        return not self.token

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class FastPath:
    """What the short path of one port reads, set by the port: ``send_ready`` and
    ``recv_ready`` are the port's socket (exactly a ``zmq.Socket``) while the port has
    nothing to do before a send or a receive, else None (whatever gives it something to
    do sets them to None first, a discovery thread too, before it tries the lock);
    ``origin`` the port's origin; ``recv_wait`` the flags of a receive without a timeout;
    ``zero_copy`` whether large parts may leave without a copy."""

    def __init__(self, lock: PortLock):
        self.lock = lock
        self.token: list[bool] = lock.token
        self.send_ready: Any = None
        self.recv_ready: Any = None
        self.origin: Any = None
        self.recv_wait: int = 0
        self.zero_copy: bool = False
        #: the last prefix found valid (compared before the prefix cache); None, which no
        #: received bytes equal, until there is one
        self.prefix_seen: Any = None

    def known(self, prefix: bytes) -> bool:
        """Whether ``prefix`` was found valid before (in the prefix cache); if so, the next
        prefix is compared with it first."""
        if prefix in _PREFIX_CACHE:
            self.prefix_seen = prefix
            return True
        return False


def send(self: Any, msg: _message.Message, timeout_ms: float | None = None) -> None:
    """Send ``msg``, framed as the socket type needs; stamps the port's origin if it has one.

    Blocks while the socket cannot take it (e.g. a PUSH with no peer yet), applying
    discovery changes meanwhile, for at most ``timeout_ms`` (None: no limit), after which
    :class:`zio.PortTimeout` is raised and nothing was sent. On PUSH, PUB and XPUB ports,
    parts of ``ZERO_COPY_BYTES`` (64 kB) or more that are immutable (bytes, read-only
    memoryviews) are handed to ZeroMQ without a copy.
    """
    fast: FastPath = self._fast
    done = DECLINED
    if type(msg) is Message and fast.send_ready is not None and _message_complete(msg):
        # the port's lock, taken and given back inline (see PortLock; calls cost here)
        token = fast.token
        try:
            token.pop()
            held = True
        except IndexError:
            held = False  # another thread holds the port
        if held:
            try:
                done = _send_short(fast, msg)
            except _ZMQError as err:
                raise PortError(f"port {self.name!r} ({self.plan.name}) cannot send: {err}") from err
            finally:
                token.append(True)
                if fast.lock.waiters or fast.send_ready is None:
                    _given_back(self, fast)
    if done != SENT:
        self._send(msg, timeout_ms, done == FULL)


def _send_short(fast: FastPath, msg: _message.Message) -> int:
    """The short path of send(), holding the lock: SENT; DECLINED (nothing sent); FULL
    (nothing sent, the socket takes nothing now)."""
    sock = fast.send_ready
    if sock is None:
        return DECLINED
    origin = fast.origin
    if origin is not None and (type(origin) is not int or msg.origin != origin):
        msg.origin = origin  # validates; unchanged coords keep their cached wire bytes
    prefix = msg._p
    if type(prefix) is not bytes:
        prefix = prefix._wire or bytes(prefix)  # type: ignore[union-attr]
    coord = msg._c
    if type(coord) is not bytes:
        coord = coord._wire or bytes(coord)  # type: ignore[union-attr]
    payload = msg._payload
    count = len(payload)
    try:
        if count == 1:
            part = payload[0]
            if type(part) is bytes and len(part) < _BIG:
                ZSocket.send(sock, prefix, _NOBLOCK_SNDMORE)  # zmq.Again here: nothing was sent
                ZSocket.send(sock, coord, _NOBLOCK_SNDMORE)  # ZeroMQ takes the rest of a message
                ZSocket.send(sock, part, _NOBLOCK)
                return SENT
        for part in payload:
            if type(part) is not bytes:
                return DECLINED  # other buffers: the port's checks
        if count == 0:
            ZSocket.send(sock, prefix, _NOBLOCK_SNDMORE)
            ZSocket.send(sock, coord, _NOBLOCK)
            return SENT
        ZSocket.send(sock, prefix, _NOBLOCK_SNDMORE)
        ZSocket.send(sock, coord, _NOBLOCK_SNDMORE)
        last = count - 1
        zero_copy = fast.zero_copy
        for i in range(count):
            part = payload[i]
            # bytes are immutable: no copy of large parts where the socket allows
            ZSocket.send(sock, part, _NOBLOCK_SNDMORE if i < last else _NOBLOCK,  # type: ignore[call-overload]
                         not zero_copy or len(part) < _BIG)  # (pyzmq's stubs want a literal copy)
        return SENT
    except _Again:
        return FULL


def recv(self: Any, timeout_ms: float | None = None, *, timeout: float | None = None) -> _message.Message | None:
    """Receive one message, waiting up to ``timeout_ms`` (None: forever); None on timeout.

    ``timeout`` is the same in milliseconds, under ZIO's name for it. Raises
    :class:`zio.MalformedError` (with the raw ``frames``) for data that is not a zio
    message; the next call receives the next message (a REP port first answers the
    malformed request with an error message, so that it may receive again). Payload parts
    of ``ZERO_COPY_BYTES`` (64 kB) or more arrive as memoryviews of the ZeroMQ message (no
    copy; ``bytes(part)`` makes one); smaller ones as bytes.
    """
    if timeout is not None:
        timeout_ms = timeout
    fast: FastPath = self._fast
    got: Any = DECLINED
    if fast.recv_ready is not None:
        token = fast.token  # the port's lock, as in send()
        try:
            token.pop()
            held = True
        except IndexError:
            held = False
        if held:
            try:
                got = _recv_short(fast, timeout_ms is None)
            except _ZMQError as err:
                raise PortError(f"port {self.name!r} ({self.plan.name}) cannot receive: {err}") from err
            finally:
                token.append(True)
                if fast.lock.waiters or fast.recv_ready is None:
                    _given_back(self, fast)
        if type(got) is Message:
            return got
    return self._recv_declined(got, timeout_ms)


def _given_back(port: Any, fast: FastPath) -> None:
    """After send() or recv() gave the lock back: wake a thread waiting for it; if the
    short path was turned off meanwhile, let the port apply what came (a discovery thread
    turns it off before it tries the lock, and found the lock taken)."""
    if fast.lock.waiters:
        fast.lock.wake()
    port._after_release()


def _recv_short(fast: FastPath, block: bool) -> Any:
    """The short path of recv(), holding the lock (``block``: the caller has no timeout):
    a ``Message``; the frames read, for the port to check, when they are not a plain zio
    message (a new prefix, a malformed message); DECLINED (nothing read); EMPTY (nothing
    there)."""
    sock = fast.recv_ready
    if sock is None:
        return DECLINED
    try:
        # without a timeout, a port without a peer waits in ZeroMQ (see recv_wait: a failed
        # read and a poll cost more than the read itself)
        frame = ZSocket.recv(sock, fast.recv_wait if block else _NOBLOCK, False)
    except _Again:
        return EMPTY
    # the other frames of a message arrive with its first: NOBLOCK from here on
    if frame.more:
        prefix = frame.bytes
        coord = ZSocket.recv(sock, _NOBLOCK, False)
        wire = coord.bytes
        if len(wire) == _COORD and (prefix == fast.prefix_seen or fast.known(prefix)):
            # valid headers (a prefix seen valid before, 24 coord bytes): the message is
            # made here as Message._fromwire makes it
            payload: list[Any] = []
            if coord.more:
                frame = ZSocket.recv(sock, _NOBLOCK, False)
                payload.append(frame.bytes if len(frame) < _BIG else frame.buffer)
                while frame.more:
                    frame = ZSocket.recv(sock, _NOBLOCK, False)
                    payload.append(frame.bytes if len(frame) < _BIG else frame.buffer)
            msg = _new_message(Message)
            msg._p = prefix
            msg._c = wire
            msg._payload = payload
            msg._routing_id = 0
            return msg
        # anything else: the frames as received, for the port's checks
        frames: list[Any] = [prefix if len(prefix) < _BIG else frame.buffer]
        frame = coord
        frames.append(wire if len(wire) < _BIG else frame.buffer)
    else:
        frames = [frame.bytes if len(frame) < _BIG else frame.buffer]
    while frame.more:
        frame = ZSocket.recv(sock, _NOBLOCK, False)
        frames.append(frame.bytes if len(frame) < _BIG else frame.buffer)
    return frames

