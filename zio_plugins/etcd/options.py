"""Options of the etcd backend, read and checked without the client library.

Everything a user can get wrong locally (a misspelt endpoint, an empty list, a ttl that
is not a number, a certificate file that does not exist) is a
:class:`zio.ConfigurationError` naming the bad value, raised by ``zio.make_backend``
before anything talks to the network.
"""
from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Sequence
from urllib.parse import urlsplit

from zio import config
from zio.errors import ConfigurationError

DEFAULT_ENDPOINTS = "http://127.0.0.1:2379"
DEFAULT_PREFIX = "/zio/"
#: Lease seconds. etcd grants at least 2 s with its default election timeout (1 s):
#: asked for 1 s, etcd 3.5.1 granted 2 and deleted the key 2.1-2.2 s later (benchmarks/etcd_clients.py).
DEFAULT_TTL = 2
MAX_TTL = 3600
DEFAULT_PORT = 2379


@dataclass(frozen=True)
class Endpoint:
    """One etcd client URL, split: ``secure`` for https."""

    url: str
    host: str
    port: int
    secure: bool

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """``http://host:port`` or ``https://host:port`` (port 2379 when left out)."""
    raw = text.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as err:
        raise ConfigurationError(f"bad etcd endpoint {text!r}: {err}") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(
            f"bad etcd endpoint {text!r}: the scheme must be http or https "
            "(e.g. http://127.0.0.1:2379)"
        )
    if not parts.hostname:
        raise ConfigurationError(f"bad etcd endpoint {text!r}: no host (e.g. http://10.0.0.5:2379)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigurationError(f"bad etcd endpoint {text!r}: give only scheme, host and port")
    return Endpoint(raw, parts.hostname, port or DEFAULT_PORT, parts.scheme == "https")


def parse_endpoints(value: str | Sequence[str] | None) -> tuple[Endpoint, ...]:
    """A list, or a comma-separated string, of URLs; None: ``$ZIO_ETCD_ENDPOINTS``, else the default."""
    if value is None:
        value = config.env_str("ZIO_ETCD_ENDPOINTS", DEFAULT_ENDPOINTS)
    if isinstance(value, str):
        items = [item for item in value.split(",")]
        if not value.strip():
            items = []
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigurationError(f"etcd endpoints must be a list of URLs or a comma-separated string, not {value!r}")
    if not items:
        raise ConfigurationError(f"no etcd endpoint given ({value!r}); e.g. endpoints='http://127.0.0.1:2379'")
    found = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f"bad etcd endpoint {item!r} in {value!r}: expected a URL like http://host:2379")
        found.append(parse_endpoint(item))
    return tuple(dict.fromkeys(found))


def _readable(path: Any, what: str) -> str | None:
    if path is None or path == "":
        return None
    path = os.fspath(path)
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ConfigurationError(f"etcd {what} {path!r} is not a readable file")
    return path


@dataclass(frozen=True)
class Options:
    """Checked options; equal options share one connection per process (see :mod:`.hub`)."""

    endpoints: tuple[Endpoint, ...]
    prefix: str = DEFAULT_PREFIX
    ttl: int = DEFAULT_TTL
    ca_cert: str | None = None
    cert_cert: str | None = None
    cert_key: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 2.0

    @property
    def urls(self) -> str:
        """The endpoints as the user wrote them, comma-separated (for messages)."""
        return ",".join(e.url for e in self.endpoints)


def make_options(
    endpoints: str | Sequence[str] | None = None,
    prefix: str | None = None,
    ttl: int | float | str | None = None,
    ca_cert: str | os.PathLike | None = None,
    cert_cert: str | os.PathLike | None = None,
    cert_key: str | os.PathLike | None = None,
    user: str | None = None,
    password: str | None = None,
    timeout: float = 2.0,
) -> Options:
    """Check every option (arguments first, then ``$ZIO_ETCD_*``, then defaults)."""
    eps = parse_endpoints(endpoints)
    if prefix is None:
        prefix = config.env_str("ZIO_ETCD_PREFIX", DEFAULT_PREFIX)
    if not isinstance(prefix, str) or not prefix or "\0" in prefix:
        raise ConfigurationError(f"etcd key prefix must be a non-empty string, not {prefix!r}")
    if ttl is None:
        ttl = config.env_str("ZIO_ETCD_TTL", str(DEFAULT_TTL))
    try:
        ttl_f = float(ttl)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigurationError(f"etcd ttl must be a number of seconds, not {ttl!r}") from None
    if not ttl_f.is_integer() or not 1 <= ttl_f <= MAX_TTL:
        raise ConfigurationError(f"etcd ttl must be whole seconds between 1 and {MAX_TTL}, not {ttl!r}")
    ca = _readable(ca_cert if ca_cert is not None else config.env_str("ZIO_ETCD_CA_CERT"), "CA certificate")
    cert = _readable(cert_cert if cert_cert is not None else config.env_str("ZIO_ETCD_CERT"), "client certificate")
    key = _readable(cert_key if cert_key is not None else config.env_str("ZIO_ETCD_KEY"), "client key")
    if (cert is None) != (key is None):
        raise ConfigurationError("etcd client TLS needs both cert_cert and cert_key (or neither)")
    if cert is not None and not any(e.secure for e in eps):
        raise ConfigurationError(f"a client certificate was given but no etcd endpoint is https: {eps[0].url!r}")
    if user is None:
        user = config.env_str("ZIO_ETCD_USER")
    if password is None:
        password = config.env_str("ZIO_ETCD_PASSWORD")
    if (user is None) != (password is None):
        raise ConfigurationError("etcd authentication needs both user and password (or neither)")
    if not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
        raise ConfigurationError(f"etcd timeout must be seconds in (0, 60], not {timeout!r}")
    return Options(eps, prefix, int(ttl_f), ca, cert, key, user, password, float(timeout))


def route_address(endpoint: Endpoint) -> str | None:
    """The local address the kernel would use toward ``endpoint`` (None when there is no route).

    A UDP socket's ``connect()`` only picks a route and a source address: nothing is sent.
    """
    try:
        infos = socket.getaddrinfo(endpoint.host, endpoint.port, socket.AF_INET, socket.SOCK_DGRAM)
    except OSError:
        try:
            infos = socket.getaddrinfo(endpoint.host, endpoint.port, 0, socket.SOCK_DGRAM)
        except OSError:
            return None
    for family, kind, proto, _, addr in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.connect(addr)
                local = sock.getsockname()[0]
        except OSError:
            continue
        if ipaddress.ip_address(local).is_unspecified:
            continue
        return local
    return None
