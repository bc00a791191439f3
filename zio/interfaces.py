"""Which network interface discovery talks on: chosen explicitly, never by surprise.

An interface is picked from a *spec*, given as an argument or in ``$ZIO_INTERFACE``:

- an interface name (``eth0``, ``lo``) or one of its IPv4 addresses (``10.0.0.5``);
- ``localhost``: loopback only; beacons go to multicast group 225.25.25.25 on 127.0.0.1
  (where pyre meets its peers when it has no other interface);
- ``subnet`` or nothing: the first interface that is up, not loopback, has an IPv4
  address that is not link-local and can broadcast; loopback when there is none.
"""
from __future__ import annotations

import fcntl
import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass

import ifaddr

from . import config
from .errors import ConfigurationError

log = logging.getLogger(__name__)

LOOPBACK_GROUP = "225.25.25.25"

_SIOCGIFFLAGS = 0x8913
_IFF_UP = 0x1
_IFF_BROADCAST = 0x2
_IFF_LOOPBACK = 0x8


@dataclass(frozen=True)
class Interface:
    """An IPv4 interface for discovery: where to bind, and where beacons go."""

    name: str
    address: str
    network: ipaddress.IPv4Network
    loopback: bool

    @property
    def beacon_target(self) -> str:
        """Where beacons are sent: the directed broadcast, or the loopback multicast group."""
        return LOOPBACK_GROUP if self.loopback else str(self.network.broadcast_address)


def _flags(name: str) -> int | None:
    """The kernel's interface flags (Linux), or None where they cannot be read."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            raw = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, struct.pack("256s", name.encode()[:15]))
    except OSError:
        return None
    return struct.unpack_from("H", raw, 16)[0]


def list_interfaces() -> list[Interface]:
    """Every IPv4 address of every interface that is up, in the kernel's order."""
    found = []
    for adapter in ifaddr.get_adapters():
        name = adapter.name if isinstance(adapter.name, str) else adapter.nice_name
        flags = _flags(name)
        if flags is not None and not flags & _IFF_UP:
            continue
        for ip in adapter.ips:
            if not isinstance(ip.ip, str):
                continue  # IPv6: ifaddr gives a tuple
            network = ipaddress.IPv4Interface(f"{ip.ip}/{ip.network_prefix}").network
            is_loop = ipaddress.IPv4Address(ip.ip).is_loopback or bool(flags and flags & _IFF_LOOPBACK)
            found.append(Interface(name, ip.ip, network, is_loop))
    return found


def _loopback(interfaces: list[Interface]) -> Interface:
    for iface in interfaces:
        if iface.loopback:
            return Interface(iface.name, "127.0.0.1", ipaddress.IPv4Network("127.0.0.0/8"), True)
    return Interface("lo", "127.0.0.1", ipaddress.IPv4Network("127.0.0.0/8"), True)


def select_interface(spec: str | None = None) -> Interface:
    """Return the interface for ``spec`` (argument, else ``$ZIO_INTERFACE``, else automatic)."""
    if spec is None:
        spec = config.env_str("ZIO_INTERFACE")
    interfaces = list_interfaces()
    if spec in (None, "", "subnet"):
        for iface in interfaces:
            flags = _flags(iface.name)
            can_broadcast = flags is None or bool(flags & _IFF_BROADCAST)
            if not iface.loopback and can_broadcast and not iface.network.network_address.is_link_local:
                return iface
        log.info("no broadcast-capable interface is up: discovery stays on loopback")
        return _loopback(interfaces)
    if spec in ("localhost", "loopback"):
        return _loopback(interfaces)
    for iface in interfaces:
        if spec in (iface.name, iface.address):
            return _loopback(interfaces) if iface.loopback else iface
    known = ", ".join(f"{i.name} ({i.address})" for i in interfaces) or "none"
    raise ConfigurationError(
        f"no usable IPv4 interface matches {spec!r}; interfaces up: {known}; "
        "or use 'localhost' or 'subnet'"
    )
