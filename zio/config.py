"""Settings read from the environment, in one place so that they are documented once.

=========================  ==========================================================
``ZIO_DISCOVERY``          backend used when none is given: ``beacon`` (default), ``mdns``, a plugin's
``ZIO_INTERFACE``          interface name (``eth0``) or IPv4 address discovery uses
``ZIO_BEACON_PORT``        UDP port of the ZRE beacon (default 5670)
``ZIO_RESOLVE_TIMEOUT_MS`` how long ``Port.online()`` waits for named nodes (default 5000)
``ZIO_CERT``               this node's secret CURVE certificate: security on (with ``ZIO_TRUSTED``)
``ZIO_TRUSTED``            directory of trusted public certificates (see :mod:`zio.security`)
=========================  ==========================================================
"""
from __future__ import annotations

import os

from .errors import ConfigurationError

DEFAULT_DISCOVERY = "beacon"
DEFAULT_RESOLVE_TIMEOUT_MS = 5000


def env_str(name: str, default: str | None = None) -> str | None:
    """Return the environment variable ``name``, or ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_int(name: str, default: int) -> int:
    """Return the environment variable ``name`` as an int; a bad value is a ConfigurationError."""
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"${name} must be an integer, not {raw!r}") from None


def discovery_name() -> str:
    """The backend name to use when the caller gave none."""
    return env_str("ZIO_DISCOVERY", DEFAULT_DISCOVERY) or DEFAULT_DISCOVERY


def resolve_timeout_ms() -> int:
    """How long ``Port.online()`` waits for absent named nodes before returning."""
    return env_int("ZIO_RESOLVE_TIMEOUT_MS", DEFAULT_RESOLVE_TIMEOUT_MS)
