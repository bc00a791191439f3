"""EtcdDiscovery: the zio.Discovery object of one Peer, attached to its process's hub."""
from __future__ import annotations

import logging
import os
import uuid as uuidlib
from typing import Any, Mapping, Sequence

from zio import config
from zio.discovery import Discovery, PeerEvent, Reporter
from zio.errors import DiscoveryError
from zio.interfaces import select_interface

from . import hub as hubs
from . import records
from .options import make_options, route_address

log = logging.getLogger("zio_plugins.etcd")


class EtcdDiscovery(Discovery):
    """One Peer's key in etcd under the shared lease, and its share of the process's watch."""

    name = "etcd"
    #: start() returns once the hub told this Peer every peer of its first read
    settle_ms = 0.0

    def __init__(
        self,
        endpoints: str | Sequence[str] | None = None,
        prefix: str | None = None,
        ttl: int | None = None,
        ca_cert: str | os.PathLike | None = None,
        cert_cert: str | os.PathLike | None = None,
        cert_key: str | os.PathLike | None = None,
        user: str | None = None,
        password: str | None = None,
        interface: str | None = None,
        timeout: float = 2.0,
    ):
        self.options = make_options(endpoints, prefix, ttl, ca_cert, cert_cert, cert_key, user, password, timeout)
        spec = interface if interface is not None else config.env_str("ZIO_INTERFACE")
        first = self.options.endpoints[0]
        if spec:
            self._bind_host = select_interface(spec).address
            self._bind_reason = f"interface {spec!r}"
        else:
            routed = route_address(first)
            if routed is not None:
                self._bind_host = routed
                self._bind_reason = f"route to {first.host}"
            else:
                self._bind_host = select_interface("subnet").address
                self._bind_reason = f"no route to {first.host}: first LAN interface"
        self.uuid: uuidlib.UUID = uuidlib.UUID(int=0)  # the nil UUID until start()
        self.key = b""
        self.value = b""
        self.active = False
        self._report: Reporter | None = None
        self._hub: hubs.Hub | None = None
        self._stopped = False

    @property
    def bind_host(self) -> str:
        """The local address on the route toward the first endpoint, unless an interface pins it."""
        return self._bind_host

    def start(self, uuid: uuidlib.UUID, nickname: str, headers: Mapping[str, str], report: Reporter) -> None:
        """Store this peer under the hub's lease and report every peer already there."""
        if self._hub is not None or self._stopped:
            raise DiscoveryError("an etcd backend object serves one Peer and starts once")
        self.uuid = uuid
        self.key = records.key_for(self.options.prefix, uuid)
        self.value = records.encode(nickname, headers)
        self._report = report
        self.active = True
        hub = hubs.acquire(self.options)
        try:
            hub.register(self)
        except BaseException:
            self.active = False
            hubs.release(hub)
            raise
        self._hub = hub

    def deliver(self, event: PeerEvent) -> None:
        """Called by the hub thread for every change this Peer should hear of."""
        if self.active and self._report is not None:
            self._report(event)

    def stop(self) -> None:
        """Delete this peer's key (the last Peer of the hub revokes the lease); bounded, idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.active = False
        hub, self._hub = self._hub, None
        if hub is None:
            return
        try:
            hub.unregister(self)
        finally:
            hubs.release(hub)

    @property
    def hub(self) -> hubs.Hub | None:
        """The shared per-process hub (None before start and after stop)."""
        return self._hub

    def describe(self) -> dict[str, Any]:
        """Endpoints, prefix, lease, where ports bind and why, and the hub's counters."""
        facts: dict[str, Any] = {
            "backend": self.name,
            "endpoints": self.options.urls,
            "prefix": self.options.prefix,
            "ttl": self.options.ttl,
            "address": self._bind_host,
            "address_from": self._bind_reason,
        }
        if self._hub is not None:
            facts.update(self._hub.describe())
        return facts
