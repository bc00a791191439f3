"""Backend "beacon": a ZRE peer (the protocol of Zyre and pyre) with fast liveness.

Options (keyword arguments of the factory, or environment variables):

=============  =====================  ================================================
``interface``  ``$ZIO_INTERFACE``     name, address, ``localhost`` or ``subnet``
``port``       ``$ZIO_BEACON_PORT``   UDP beacon port (default 5670, as Zyre)
``interval``                          seconds between beacons (default 1.0)
``evasive``                           silence before a peer is pinged (default 2.0 s)
``expired``    ``$ZIO_BEACON_EXPIRED`` silence before a peer is gone (default 4.0 s)
``max_message`` ``$ZIO_BEACON_MAX_MESSAGE`` largest mailbox message in bytes (default 262144)
``fd_reserve`` ``$ZIO_BEACON_FD_RESERVE`` fds never used by discovery (default: a quarter
                                      of the soft RLIMIT_NOFILE, at least 64)
``share``      ``$ZIO_BEACON_SHARE``  share one engine thread, context and UDP socket with
                                      the process's other beacon Peers on the same
                                      interface and port, and meet them in-process
                                      (default true; ``0``: a private engine, as a Peer
                                      of another process; see :mod:`.hub`)
=============  =====================  ================================================
"""
from __future__ import annotations

import logging
import uuid as uuidlib
from typing import Any, Mapping

from zio import config
from zio.discovery import Discovery, Reporter
from zio.errors import ConfigurationError
from zio.hookspecs import hookimpl
from zio.interfaces import Interface, select_interface

from .engine import DEFAULT_MAX_MESSAGE, Engine, Limits, Timing

log = logging.getLogger(__name__)

DEFAULT_BEACON_PORT = 5670


class BeaconDiscovery(Discovery):
    """Discovery by ZRE UDP beacons and ZeroMQ mailboxes; meets Zyre, pyre and other zio nodes."""

    name = "beacon"
    #: Running peers answer a newcomer's first beacon with a HELLO within milliseconds of
    #: each other; 100 ms of quiet leaves room for busy hosts.
    settle_ms = 100.0

    def __init__(
        self,
        interface: str | None = None,
        port: int | None = None,
        interval: float = 1.0,
        evasive: float = 2.0,
        expired: float | None = None,
        max_message: int | None = None,
        fd_reserve: int | None = None,
        share: bool | None = None,
    ):
        self.interface: Interface = select_interface(interface)
        self.port = port if port is not None else config.env_int("ZIO_BEACON_PORT", DEFAULT_BEACON_PORT)
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"beacon port out of range: {self.port}")
        if expired is None:
            expired = float(config.env_str("ZIO_BEACON_EXPIRED", "4.0") or 4.0)
        if not 0 < interval < evasive < expired:
            raise ConfigurationError(
                f"beacon timing needs 0 < interval < evasive < expired, got {interval}, {evasive}, {expired}"
            )
        self.timing = Timing(interval=interval, evasive=evasive, expired=expired, tick=min(0.25, interval / 2))
        if max_message is None:
            max_message = config.env_int("ZIO_BEACON_MAX_MESSAGE", DEFAULT_MAX_MESSAGE)
        if fd_reserve is None and config.env_str("ZIO_BEACON_FD_RESERVE", ""):
            fd_reserve = config.env_int("ZIO_BEACON_FD_RESERVE", 0)
        if max_message < 1024:
            raise ConfigurationError(f"beacon max_message must be at least 1024 bytes, got {max_message}")
        if fd_reserve is not None and fd_reserve < 0:
            raise ConfigurationError(f"beacon fd_reserve must not be negative, got {fd_reserve}")
        self.limits = Limits(max_message=max_message, fd_reserve=fd_reserve)
        if share is None:
            share = (config.env_str("ZIO_BEACON_SHARE", "1") or "1").strip().lower() not in ("0", "false", "no", "off")
        self.share = bool(share)
        self.engine: Engine | None = None
        self.security: Any = None

    def use_security(self, security: Any) -> bool:
        """Speak Zyre's draft secure mode: version 3 beacons carry our CURVE key, mailboxes
        are CURVE servers behind the ZAP allow-list, and a HELLO counts only if the key in
        its ``X-PUBLICKEY`` header is the one its connection proved. Returns True: this
        backend proves peers' keys itself (no separate proof connection is needed)."""
        self.security = security
        return True

    def refused_peers(self) -> list[tuple[uuidlib.UUID, bytes, str]]:
        """Secure mode: peers refused lately, before any HELLO (uuid, Z85 key, why), for ``zio peers``."""
        return self.engine.refused_peers() if self.engine is not None else []

    @property
    def bind_host(self) -> str:
        """Ports bind on the discovery interface's address, where peers can reach them."""
        return self.interface.address

    def start(self, uuid: uuidlib.UUID, nickname: str, headers: Mapping[str, str], report: Reporter) -> None:
        """Open the mailbox and the beacon sockets and start beaconing."""
        if self.engine is not None:
            raise ConfigurationError("a beacon backend object serves one Peer; make a new one")
        self.engine = Engine(uuid, nickname, headers, report, self.interface, self.port, self.timing, self.limits,
                             self.security, share=self.share)
        self.engine.start()
        log.info(
            "beacon discovery for %s on %s (%s), beacons to %s:%d, mailbox %s",
            nickname, self.interface.name, self.interface.address,
            self.interface.beacon_target, self.port, self.engine.endpoint,
        )

    def stop(self) -> None:
        """Send the leaving beacon and close everything; idempotent."""
        if self.engine is not None:
            self.engine.stop()

    def describe(self) -> dict[str, Any]:
        """Where this backend talks."""
        facts: dict[str, Any] = {
            "backend": self.name,
            "interface": self.interface.name,
            "address": self.interface.address,
            "beacon_target": f"{self.interface.beacon_target}:{self.port}",
        }
        if self.engine is not None:
            facts["mailbox"] = self.engine.endpoint
        return facts


@hookimpl
def zio_discovery_backends() -> Mapping[str, Any]:
    """The built-in "beacon" backend."""
    return {"beacon": BeaconDiscovery}
