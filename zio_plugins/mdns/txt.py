"""The TXT layout of a zio peer's DNS-SD record: encoding, splitting and strict decoding.

A record is a list of ``name=value`` strings (RFC 6763 section 6), each at most 255 bytes:

==================  =========================================================
``zio=1``           layout version; records without it are not zio peers
``uuid=<32 hex>``   the peer's UUID
``nick=<utf-8>``    the peer's nickname
``live=tcp://a:p``  the peer's liveness socket (a ZeroMQ ROUTER)
``h:<key>=<value>`` one peer header; in ``<key>``, ``%`` is ``%25`` and ``*`` is ``%2A``
==================  =========================================================

Split rule: a field whose ``name=value`` string would exceed 255 bytes is written as
continuation strings ``name*0=``, ``name*1=``, ... (as in RFC 2231), each filled up to
255 bytes with the next bytes of the UTF-8 value; the decoder joins them in index order
and then decodes UTF-8, so a cut inside a character is harmless. Because ``*`` is escaped
in header keys, a ``*`` in a field name always marks a continuation.
"""
from __future__ import annotations

import re
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Mapping

from zio.errors import ConfigurationError, MalformedError

VERSION = "1"
MAX_STRING = 255
#: Largest TXT rdata (sum of strings with their length bytes) that still fits, with the
#: other records of the service, in one mDNS packet of at most 8966 bytes.
MAX_TXT_BYTES = 8700
HEADER_PREFIX = "h:"
_META = ("zio", "uuid", "nick", "live")
_CHUNK = re.compile(r"^(.*)\*([0-9]{1,4})$", re.DOTALL)
_ESCAPES = {"%25": "%", "%2A": "*", "%2a": "*"}


@dataclass(frozen=True)
class PeerRecord:
    """What a zio TXT record says: the peer's UUID, nickname, liveness endpoint and headers."""

    uuid: uuidlib.UUID
    nick: str
    live: str
    headers: dict[str, str] = field(default_factory=dict)


def validate_key(key: str) -> None:
    """Raise ConfigurationError unless ``key`` is a non-empty printable-ASCII name without '='."""
    if not isinstance(key, str) or not key:
        raise ConfigurationError(f"mdns header keys must be non-empty strings, not {key!r}")
    if "=" in key or not all(" " <= ch <= "~" for ch in key):
        raise ConfigurationError(
            f"mdns header key {key!r} must be printable ASCII (0x20-0x7E) without '='"
        )


def _escape_key(key: str) -> str:
    return key.replace("%", "%25").replace("*", "%2A")


def _unescape_key(text: str) -> str:
    parts = re.split(r"(%..)", text)
    out = []
    for part in parts:
        if part in _ESCAPES:
            out.append(_ESCAPES[part])
        elif "%" in part or "*" in part:
            raise MalformedError(f"bad escape in TXT header key {text!r}")
        else:
            out.append(part)
    return "".join(out)


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ConfigurationError(f"mdns: {what} cannot be encoded as UTF-8: {err}") from None


def _field_strings(name: str, value: bytes, what: str) -> list[bytes]:
    """The TXT strings of one field, split into continuations when it does not fit one string."""
    key = name.encode("ascii")
    whole = key + b"=" + value
    if len(whole) <= MAX_STRING:
        return [whole]
    strings = []
    index = 0
    pos = 0
    while pos < len(value) or index == 0:
        head = key + b"*" + str(index).encode() + b"="
        room = MAX_STRING - len(head)
        if room < 1:
            raise ConfigurationError(f"mdns: {what} is too long a key to be split into TXT strings")
        strings.append(head + value[pos:pos + room])
        pos += room
        index += 1
    return strings


def encode(record: PeerRecord) -> list[bytes]:
    """Return the TXT strings of ``record``; ConfigurationError names a bad or oversized header."""
    strings = [b"zio=" + VERSION.encode(), b"uuid=" + record.uuid.hex.encode()]
    nick = _field_strings("nick", _utf8(record.nick, "the nickname"), "the nickname")
    strings += nick
    strings += _field_strings("live", record.live.encode("utf-8"), "the liveness endpoint")
    sizes: dict[str, int] = {}
    for key, value in record.headers.items():
        validate_key(key)
        if not isinstance(value, str):
            raise ConfigurationError(f"mdns header {key!r} must have a str value, not {type(value).__name__}")
        parts = _field_strings(HEADER_PREFIX + _escape_key(key), _utf8(value, f"header {key!r}"), f"header {key!r}")
        sizes[key] = sum(1 + len(s) for s in parts)
        strings += parts
    total = sum(1 + len(s) for s in strings)
    if total > MAX_TXT_BYTES:
        nick_size = sum(1 + len(s) for s in nick)
        if sizes and max(sizes.values()) >= nick_size:
            biggest = max(sizes, key=sizes.__getitem__)
            what = f"the biggest header is {biggest!r} ({sizes[biggest]} bytes)"
        else:
            what = f"the nickname takes {nick_size} bytes"
        raise ConfigurationError(
            f"mdns: the peer's TXT record would take {total} bytes, more than the {MAX_TXT_BYTES} "
            f"that fit one mDNS packet; {what}"
        )
    return strings


def as_properties(strings: list[bytes]) -> dict[bytes, bytes]:
    """The strings as an ordered ``{name: value}`` mapping, the form zeroconf's ServiceInfo takes."""
    result = {}
    for s in strings:
        name, _, value = s.partition(b"=")
        result[name] = value
    return result


def _join_fields(properties: Mapping[bytes, bytes | None]) -> dict[str, bytes]:
    """Field name -> raw value bytes, with continuation strings joined; strict."""
    whole: dict[str, bytes] = {}
    chunks: dict[str, dict[int, bytes]] = {}
    for raw_name, value in properties.items():
        try:
            name = raw_name.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedError(f"TXT key {raw_name!r} is not ASCII") from None
        if value is None:
            raise MalformedError(f"TXT string {name!r} has no '=' and no value")
        match = _CHUNK.match(name)
        if match is None:
            whole[name] = value
            continue
        base, digits = match.group(1), match.group(2)
        index = int(digits)
        if digits != str(index):
            raise MalformedError(f"TXT continuation {name!r} has a non-canonical index")
        chunks.setdefault(base, {})[index] = value
    for base, parts in chunks.items():
        if base in whole:
            raise MalformedError(f"TXT field {base!r} is both whole and split")
        if sorted(parts) != list(range(len(parts))):
            raise MalformedError(f"TXT field {base!r} has continuations {sorted(parts)}, not 0..n-1")
        whole[base] = b"".join(parts[i] for i in range(len(parts)))
    return whole


def _text(fields: dict[str, bytes], name: str) -> str:
    try:
        return fields[name].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedError(f"TXT field {name!r} is not UTF-8") from None


def decode(properties: Mapping[bytes, bytes | None]) -> PeerRecord:
    """Parse a TXT record given as ``{name: value}`` bytes; MalformedError when it is not zio's."""
    fields = _join_fields(properties)
    for name in _META:
        if name not in fields:
            raise MalformedError(f"TXT record has no {name!r} field")
    if _text(fields, "zio") != VERSION:
        raise MalformedError(f"TXT layout version {fields['zio']!r} is not {VERSION}")
    try:
        peer_uuid = uuidlib.UUID(hex=_text(fields, "uuid"))
    except ValueError:
        raise MalformedError(f"TXT uuid {fields['uuid']!r} is not a UUID") from None
    live = _text(fields, "live")
    if not live.startswith("tcp://"):
        raise MalformedError(f"TXT liveness endpoint {live!r} is not tcp://")
    headers = {}
    for name in fields:
        if name.startswith(HEADER_PREFIX):
            key = _unescape_key(name[len(HEADER_PREFIX):])
            if not key:
                raise MalformedError("TXT header with an empty key")
            headers[key] = _text(fields, name)
    return PeerRecord(peer_uuid, _text(fields, "nick"), live, headers)


def encode_properties(record: PeerRecord) -> dict[bytes, bytes]:
    """Shortcut: the ``properties`` mapping for zeroconf's ServiceInfo."""
    return as_properties(encode(record))


__all__ = ["PeerRecord", "encode", "decode", "encode_properties", "validate_key", "MAX_TXT_BYTES"]
