"""Open-file and socket limits: zio makes room for many ports and peers in one process.

Every port and every discovery peer holds file descriptors (a ZeroMQ socket's mailbox,
a wake-up pipe, listeners, connections). Many systems start programs with a soft
``RLIMIT_NOFILE`` of 1024 and a much higher hard limit, so a process holding a few hundred
peers runs out; libzmq may then fail deep inside (an assertion that aborts the process).

Before a :class:`zio.Port` opens its socket and before a :class:`zio.Peer` starts its
backend, zio calls :func:`ensure_open_files`. While the soft limit leaves room, that costs
one ``open``/``close`` of ``/dev/null``. When it does not and the hard limit allows, zio
raises the soft limit to the hard limit, as the Go runtime does at start-up (it does so
only when room runs short, and logs it at INFO). When even the hard limit is too low, it
raises :class:`zio.ResourceLimitError` naming ``ulimit -n`` and how many files are needed.

A program that knows it will hold many peers can ask for the room up front, failing early
with the same clear error: ``zio.limits.ensure_open_files(1000 * 8, "1000 peers")``.

The default ZeroMQ context (``zmq.Context.instance()``) ports use holds at most 1023 sockets
by libzmq's default; :func:`configure_context` raises that to :data:`CONTEXT_MAX_SOCKETS`
when zio is the first to use the context (libzmq fixes the number at the first socket).
"""
from __future__ import annotations

import errno
import logging
import os
import threading
import weakref

try:
    import resource
except ImportError:  # not on POSIX (Windows): no RLIMIT_NOFILE to raise or to check
    resource = None  # type: ignore[assignment]

import zmq

from .errors import ResourceLimitError

log = logging.getLogger(__name__)

#: Files a port or a peer may open after the check (its socket, pipes, monitor, listeners
#: and first connections): the check asks for this much room.
HEADROOM = 64
#: Sockets the contexts zio configures may hold (libzmq's default is 1023). Each slot costs
#: libzmq 12 bytes, allocated when the context makes its first socket.
CONTEXT_MAX_SOCKETS = 8192
#: Soft limit chosen when the hard limit is unlimited (Linux caps it at fs.nr_open anyway).
_UNLIMITED_CAP = 1 << 20

_lock = threading.Lock()
_configured: "weakref.WeakSet[zmq.Context]" = weakref.WeakSet()


def open_file_limits() -> tuple[int, int]:
    """The process's (soft, hard) ``RLIMIT_NOFILE``; ``resource.RLIM_INFINITY`` for none."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


def _files_in_use(soft: int) -> int:
    """About how many files are open: the lowest free descriptor (descriptors are handed
    out lowest first, so this counts the dense block in use); ``soft`` when none is free."""
    try:
        fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        if err.errno in (errno.EMFILE, errno.ENFILE):
            return soft
        raise
    os.close(fd)
    return fd


def _exact_files_in_use() -> int | None:
    """The number of open descriptors, counted in /proc (None where there is none)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # the listing's own descriptor
    except OSError:
        return None


def _finite(limit: int) -> int:
    return _UNLIMITED_CAP if limit == resource.RLIM_INFINITY else limit


def ensure_open_files(more: int = HEADROOM, what: str = "zio") -> int:
    """Make sure the process may open ``more`` files beyond those open now.

    Where the soft ``RLIMIT_NOFILE`` leaves less room and the hard limit allows, the soft
    limit is raised to the hard limit (as the Go runtime does). Where even the hard limit
    is too low, :class:`zio.ResourceLimitError` says how many files are needed and how to
    allow them (``ulimit -n``). ``what`` names what needs them, for that message. Returns
    the soft limit in force afterwards (-1 where the platform has no such limit).
    """
    if more < 0:
        raise ValueError(f"ensure_open_files() needs a count >= 0, not {more}")
    if resource is None:
        return -1  # no such limit here
    soft, hard = open_file_limits()
    if soft == resource.RLIM_INFINITY:
        return soft
    in_use = _files_in_use(soft)
    if in_use + more <= soft:
        return soft
    with _lock:
        soft, hard = open_file_limits()  # another thread may have raised it meanwhile
        exact = _exact_files_in_use()
        in_use = max(in_use, exact) if exact is not None else in_use
        needed = in_use + more
        if needed <= _finite(soft):
            return soft
        target = _finite(hard)
        if needed <= target:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            except (ValueError, OSError) as err:  # e.g. above fs.nr_open, or a sandbox refuses
                log.debug("raising the open-file limit to %d failed: %s", target, err)
                target = soft
            else:
                log.info(
                    "raised the soft open-file limit from %d to %d (the hard limit) for %s: "
                    "%d files open, %d more needed", soft, target, what, in_use, more,
                )
                return target
        suggest = max(needed, 2 * _finite(soft), 4096)
        raise ResourceLimitError(
            f"{what} needs at least {needed} open files ({in_use} open now, {more} more) but the "
            f"open-file limit is {soft} and its hard limit {_describe(hard)} does not allow more: "
            f"raise it before starting the program, e.g. `ulimit -n {suggest}` in the shell "
            f"(raising the hard limit itself needs root: `ulimit -Hn`, or nofile in "
            f"/etc/security/limits.conf)"
        )


def _describe(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)


def configure_context(context: zmq.Context) -> None:
    """Let ``context`` hold :data:`CONTEXT_MAX_SOCKETS` sockets (once per context).

    libzmq sizes a context's socket table when it makes its first socket, so this only has
    an effect on a context zio is the first to use; a context with a larger setting keeps it.
    """
    if context in _configured:
        return
    _configured.add(context)
    try:
        wanted = min(CONTEXT_MAX_SOCKETS, context.get(zmq.SOCKET_LIMIT))
        if context.get(zmq.MAX_SOCKETS) < wanted:
            context.set(zmq.MAX_SOCKETS, wanted)
    except zmq.ZMQError as err:
        log.debug("cannot set MAX_SOCKETS on %r: %s", context, err)


def socket_error(err: zmq.ZMQError, what: str, context: zmq.Context) -> Exception | None:
    """What to do when making a socket for ``what`` failed with ``err``: None to try once
    more (the open-file limit was just raised), a clear :class:`zio.ResourceLimitError` for
    a lack of files or of context sockets, else ``err`` itself."""
    if err.errno not in (errno.EMFILE, errno.ENFILE) or resource is None:
        return err
    soft, _ = open_file_limits()
    if _files_in_use(soft) + 1 < _finite(soft):
        try:
            maximum: object = context.get(zmq.MAX_SOCKETS)
        except zmq.ZMQError:
            maximum = "its maximum of"
        return ResourceLimitError(
            f"{what}: the ZeroMQ context already holds {maximum} sockets (zmq.MAX_SOCKETS; "
            f"libzmq's default is 1023): use a context whose MAX_SOCKETS was set higher "
            f"before its first socket, e.g. ctx = zmq.Context(); ctx.MAX_SOCKETS = 16384"
        )
    try:
        ensure_open_files(HEADROOM, what)
    except ResourceLimitError as limit:
        return limit
    return None
