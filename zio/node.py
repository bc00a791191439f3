"""zio.Node: a named program with ports, one Peer advertising them, and an origin number."""
from __future__ import annotations

import logging
import time
from typing import Any


from . import config, plugins
from . import security as security_mod
from .discovery import Discovery
from .errors import ConfigurationError
from .peer import Peer
from .port import Port

log = logging.getLogger(__name__)

DEFAULT_HOSTNAME = "127.0.0.1"


class Node:
    """A vertex of a ZIO graph: owns named ports and brings them online together.

    ``hostname`` is where ports bind by default; None means the address of the interface
    the discovery backend uses (loopback when it runs on loopback).
    """

    #: The class of the ports :meth:`port` makes (:mod:`zio.asyncio` uses its own).
    port_class: type[Port] = Port

    def __init__(
        self,
        nick: str,
        origin: int = 0,
        hostname: str | None = None,
        *,
        discovery: str | Discovery | None = None,
        security: security_mod.Security | bool | None = None,
    ):
        if not isinstance(nick, str) or not nick:
            raise ConfigurationError(f"a node nickname must be a non-empty string, not {nick!r}")
        plugins.check_backend(discovery)  # a bad backend name fails here, not at online()
        self.nick = nick
        self.origin = origin
        self.hostname = hostname
        self.discovery = discovery
        #: CURVE trust of the node's Peer and ports (None: off; default from $ZIO_CERT/$ZIO_TRUSTED)
        self.security = security_mod.resolve(security)
        self.ports: dict[str, Port] = {}
        self.peer: Peer | None = None

    def port(self, name: str, socket_type: int | None = None) -> Port:
        """Return the port ``name``, creating it with ``socket_type`` if it does not exist yet."""
        if name in self.ports:
            existing = self.ports[name]
            if socket_type is not None and int(socket_type) != existing.socket_type:
                raise ConfigurationError(
                    f"node {self.nick!r} already has port {name!r} of type {existing.socket_name}"
                )
            return existing
        if socket_type is None:
            raise KeyError(f"node {self.nick!r} has no port {name!r}")
        port = self.port_class(name, socket_type, self.hostname or DEFAULT_HOSTNAME, security=self.security or False)
        port.origin = self.origin
        self.ports[name] = port
        return port

    @property
    def is_online(self) -> bool:
        """True between :meth:`online` and :meth:`offline`."""
        return self.peer is not None

    def online(self, timeout_ms: float | None = None, **headers: Any) -> None:
        """Bind every port, advertise their headers and ``headers`` through a new Peer, then connect.

        Connects by name wait at most ``timeout_ms`` in all (default ``$ZIO_RESOLVE_TIMEOUT_MS``
        or 5000 ms) for nodes not seen yet; they are connected whenever they appear.
        """
        if self.peer is not None:
            log.debug("node %s already online", self.nick)
            return
        try:
            self.peer = self._advertise(headers)
            if timeout_ms is None:
                timeout_ms = config.resolve_timeout_ms()
            deadline = time.monotonic() + max(0.0, timeout_ms) / 1000.0
            for port in self.ports.values():
                port.online(self.peer, max(0.0, deadline - time.monotonic()) * 1000.0)
        except BaseException:
            self.offline()
            raise

    def _advertise(self, headers: dict[str, Any]) -> Peer:
        """Bind every port and start a Peer advertising them and ``headers`` (no waiting for
        other nodes: :mod:`zio.asyncio` runs this in a worker thread, then awaits the rest)."""
        backend = plugins.make_backend(self.discovery)
        host = self.hostname or backend.bind_host or DEFAULT_HOSTNAME
        advertised: dict[str, Any] = dict(headers)
        for port in self.ports.values():
            if self.hostname is None:
                port.hostname = host
            advertised.update(port.do_binds())
        return Peer(self.nick, discovery=backend, security=self.security or False, **advertised)

    def offline(self) -> None:
        """Take every port offline (forgetting binds and connects) and leave the network."""
        for port in self.ports.values():
            port.offline()
        if self.peer is not None:
            self.peer.stop()
            self.peer = None

    def close(self) -> None:
        """Go offline and close every port's socket."""
        self.offline()
        for port in self.ports.values():
            port.close()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<zio.Node {self.nick!r} origin={self.origin} ports={list(self.ports)}>"


__all__ = ["Node"]
