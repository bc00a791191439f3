"""What one Peer keeps in etcd: key ``<prefix><uuid>``, value JSON ``{"nick": ..., "headers": {...}}``.

Keys and values under the prefix are remote input: anything may have written them.
:func:`decode` raises :class:`zio.MalformedError` for anything that is not a peer record
(the hub logs it and skips the key); it never raises anything else.
"""
from __future__ import annotations

import json
import uuid as uuidlib
from typing import Mapping

from zio.discovery import PeerInfo
from zio.errors import ConfigurationError, MalformedError

#: Largest value read or written (bytes). etcd itself takes up to 1.5 MiB per request;
#: peer records are small, and a bigger one is somebody else's data or an attack.
MAX_VALUE_BYTES = 64 * 1024


def key_for(prefix: str, uuid: uuidlib.UUID) -> bytes:
    """The key of the peer ``uuid``."""
    return (prefix + str(uuid)).encode()


def encode(nick: str, headers: Mapping[str, str]) -> bytes:
    """The value of a local peer's key; ConfigurationError when it would be too big to be read."""
    value = json.dumps({"nick": nick, "headers": dict(headers)}, separators=(",", ":"), sort_keys=True).encode()
    if len(value) > MAX_VALUE_BYTES:
        biggest = max(headers, key=lambda k: len(headers[k]), default="(nickname)")
        raise ConfigurationError(
            f"peer record of {nick!r} is {len(value)} bytes; the etcd backend takes at most "
            f"{MAX_VALUE_BYTES} (biggest header: {biggest!r})"
        )
    return value


def uuid_of(prefix: str, key: bytes) -> uuidlib.UUID:
    """The UUID a key under ``prefix`` names; MalformedError when it names none."""
    try:
        text = key.decode()
    except UnicodeDecodeError:
        raise MalformedError(f"etcd key {key[:80]!r} is not UTF-8") from None
    if not text.startswith(prefix):
        raise MalformedError(f"etcd key {text[:80]!r} is not under {prefix!r}")
    rest = text[len(prefix):]
    try:
        found = uuidlib.UUID(rest)
    except ValueError:
        raise MalformedError(f"etcd key {text[:80]!r} does not end with a UUID") from None
    if str(found) != rest:
        raise MalformedError(f"etcd key {text[:80]!r} does not end with a UUID in canonical form")
    return found


def decode(prefix: str, key: bytes, value: bytes) -> PeerInfo:
    """The peer a key/value pair describes; MalformedError for anything else."""
    uuid = uuid_of(prefix, key)
    if len(value) > MAX_VALUE_BYTES:
        raise MalformedError(f"etcd value of {key.decode()!r} is {len(value)} bytes (at most {MAX_VALUE_BYTES})")
    try:
        record = json.loads(value)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise MalformedError(f"etcd value of {key.decode()!r} is not JSON: {err}") from None
    if not isinstance(record, dict):
        raise MalformedError(f"etcd value of {key.decode()!r} is not a JSON object")
    nick, headers = record.get("nick"), record.get("headers", {})
    if not isinstance(nick, str) or not nick:
        raise MalformedError(f"etcd value of {key.decode()!r}: 'nick' must be a non-empty string, not {nick!r}"[:300])
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in headers.items()
    ):
        raise MalformedError(f"etcd value of {key.decode()!r}: 'headers' must map strings to strings")
    return PeerInfo(uuid, nick, dict(headers))
