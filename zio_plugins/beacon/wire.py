"""Encoding and decoding of the ZRE wire formats: UDP beacons and mailbox messages.

ZRE (ZeroMQ Realtime Exchange) is the protocol spoken by Zyre and pyre. This module
is pure: it only turns bytes into objects and back, and touches no socket.

Two formats live here:

* The **beacon**, the 22-byte UDP payload a peer broadcasts to announce itself:
  ``b"ZRE"``, version byte ``0x01``, the 16-byte UUID of the peer and the TCP port
  of its mailbox as a big-endian ``uint16`` (port 0 means "I am leaving").
* The **mailbox messages** a peer's DEALER sends to another peer's ROUTER. The ROUTER
  receives ``[routing_id, frame1, *content]``; the routing id is ``0x01`` followed by
  the sender's UUID. ``frame1`` starts with the signature ``0xAAA1``, a message id,
  the protocol version (2) and a ``uint16`` sequence number, then the fields of the
  message.

Decoding is total: whatever bytes come in, :func:`decode_message` and
:meth:`Beacon.decode` either return an object or raise
:class:`~zio.errors.MalformedError`. Every length read from the wire is checked
against the bytes that remain before anything is sliced or allocated.

Choices, where the protocol leaves room:

* Bytes after the last field of a known message are ignored (logged at DEBUG level),
  as Zyre's codec does; this leaves room for compatible extensions.
* Message ids this module does not know (Zyre's 8 and up, e.g. ELECTION/LEADER) decode
  to :class:`Unknown` carrying the id and sequence, so the caller can keep its
  sequence tracking right and skip the message. Its content frames are dropped.
* If a header dictionary repeats a key, the first value wins (as ``zhash_insert`` in
  Zyre behaves).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import struct
import uuid as uuidlib
from typing import Any, ClassVar, Iterable, Mapping, Union

from zio.errors import ConfigurationError, MalformedError

__all__ = [
    "BEACON_PREFIX",
    "BEACON_SIZE",
    "BEACON_VERSION",
    "HELLO",
    "JOIN",
    "LEAVE",
    "PING",
    "PING_OK",
    "PROTOCOL_VERSION",
    "ROUTING_ID_PREFIX",
    "SHOUT",
    "SIGNATURE",
    "WHISPER",
    "Beacon",
    "Hello",
    "Join",
    "Leave",
    "Ping",
    "PingOk",
    "Shout",
    "Unknown",
    "Whisper",
    "ZreMessage",
    "decode_message",
    "encode_message",
    "next_sequence",
    "routing_id_for",
    "sequence_follows",
    "uuid_from_routing_id",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_GROUPS",
    "hello_problem",
    "tcp_endpoint",
]

logger = logging.getLogger(__name__)

#: The first bytes of every ZRE beacon.
BEACON_PREFIX = b"ZRE"
#: The beacon format version this module speaks.
BEACON_VERSION = 0x01
#: The exact size of a (non-CURVE) ZRE beacon in bytes.
BEACON_SIZE = 22
#: The first byte of the routing id a peer's DEALER uses; the sender's UUID follows.
ROUTING_ID_PREFIX = 0x01
#: The 16-bit signature that opens frame1 of every mailbox message.
SIGNATURE = 0xAAA1
#: The mailbox protocol version this module speaks.
PROTOCOL_VERSION = 2

#: Message ids of the ZRE mailbox messages.
HELLO = 1
WHISPER = 2
SHOUT = 3
JOIN = 4
LEAVE = 5
PING = 6
PING_OK = 7

#: Limits on what one HELLO may carry (ours is refused at start, a remote one is dropped).
#: The header budget is the one of the mdns backend's TXT record (about 8.7 kB), so that
#: headers that work with one built-in backend work with the other.
MAX_HEADERS = 256
MAX_HEADER_BYTES = 8700
MAX_GROUPS = 256

_SEQUENCE_MODULUS = 1 << 16
_UINT32_MAX = (1 << 32) - 1
_STRING_MAX = 255

_BEACON = struct.Struct(">3sB16sH")
#: Zyre's draft secure mode (``zyre_set_zcert``): version 3 beacons carry the 32-byte CURVE
#: public key of the mailbox after the port (54 bytes).
BEACON_VERSION_CURVE = 0x03
BEACON_SIZE_CURVE = 54
CURVE_KEY_SIZE = 32
_HEADER = struct.Struct(">HBBH")  # signature, message id, version, sequence
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

# ---------------------------------------------------------------------------------
# Beacon
# ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Beacon:
    """A ZRE UDP beacon: the announcing peer's UUID and its mailbox TCP port."""

    uuid: uuidlib.UUID
    port: int
    #: the mailbox's raw 32-byte CURVE public key (secure mode, version 3), or b""
    public_key: bytes = b""

    def __post_init__(self) -> None:
        """Reject a UUID, port or key that could not be put on the wire."""
        if not isinstance(self.uuid, uuidlib.UUID):
            raise ConfigurationError(f"beacon uuid must be a uuid.UUID, not {type(self.uuid).__name__}")
        _check_uint(self.port, 16, "beacon port")
        if self.public_key and len(self.public_key) != CURVE_KEY_SIZE:
            raise ConfigurationError(f"a beacon's CURVE key is {CURVE_KEY_SIZE} bytes, not {len(self.public_key)}")

    @property
    def is_leaving(self) -> bool:
        """True if this beacon announces that the peer is leaving (port 0)."""
        return self.port == 0

    def encode(self) -> bytes:
        """Return the UDP payload of this beacon: 22 bytes, or 54 with a CURVE key (version 3)."""
        if self.public_key:
            return _BEACON.pack(BEACON_PREFIX, BEACON_VERSION_CURVE, self.uuid.bytes, self.port) + self.public_key
        return _BEACON.pack(BEACON_PREFIX, BEACON_VERSION, self.uuid.bytes, self.port)

    @classmethod
    def decode(cls, data: bytes, secure: bool = False) -> Beacon:
        """Parse a UDP payload into a beacon, raising MalformedError if it is not one.

        With ``secure``, only version 3 beacons with a CURVE key are taken (as Zyre in secure
        mode, which tosses the others to avoid a downgrade); without, only version 1 ones."""
        raw = _as_bytes(data, "beacon")
        if secure:
            if len(raw) != BEACON_SIZE_CURVE:
                raise MalformedError(f"a secure beacon must be {BEACON_SIZE_CURVE} bytes, got {len(raw)}")
            prefix, version, uuid_bytes, port = _BEACON.unpack(raw[:BEACON_SIZE])
            if prefix != BEACON_PREFIX or version != BEACON_VERSION_CURVE:
                raise MalformedError(f"not a version {BEACON_VERSION_CURVE} ZRE beacon: {raw[:4]!r}")
            key = raw[BEACON_SIZE:]
            if key == bytes(CURVE_KEY_SIZE):
                raise MalformedError("secure beacon without a public key")
            return cls(uuidlib.UUID(bytes=uuid_bytes), port, key)
        if len(raw) != BEACON_SIZE:
            raise MalformedError(
                f"beacon must be exactly {BEACON_SIZE} bytes, got {len(raw)}"
                + (" (CURVE beacons are not supported)" if len(raw) > BEACON_SIZE else "")
            )
        prefix, version, uuid_bytes, port = _BEACON.unpack(raw)
        if prefix != BEACON_PREFIX:
            raise MalformedError(f"beacon signature must be {BEACON_PREFIX!r}, got {prefix!r}")
        if version != BEACON_VERSION:
            raise MalformedError(f"beacon version must be {BEACON_VERSION}, got {version}")
        return cls(uuidlib.UUID(bytes=uuid_bytes), port)


# ---------------------------------------------------------------------------------
# Routing ids and sequence numbers
# ---------------------------------------------------------------------------------


def routing_id_for(uuid: uuidlib.UUID) -> bytes:
    """Return the 17-byte routing id a peer's DEALER uses: 0x01 then its UUID."""
    if not isinstance(uuid, uuidlib.UUID):
        raise ConfigurationError(f"uuid must be a uuid.UUID, not {type(uuid).__name__}")
    return bytes((ROUTING_ID_PREFIX,)) + uuid.bytes


def uuid_from_routing_id(rid: bytes) -> uuidlib.UUID:
    """Return the sender's UUID from a ROUTER routing id, raising MalformedError if bad."""
    raw = _as_bytes(rid, "routing id")
    if len(raw) != 17:
        raise MalformedError(f"routing id must be 17 bytes, got {len(raw)}")
    if raw[0] != ROUTING_ID_PREFIX:
        raise MalformedError(f"routing id must start with 0x{ROUTING_ID_PREFIX:02x}, got 0x{raw[0]:02x}")
    return uuidlib.UUID(bytes=raw[1:])


def next_sequence(seq: int) -> int:
    """Return the sequence number that follows ``seq`` (wrapping 65535 -> 0 like Zyre)."""
    return (seq + 1) % _SEQUENCE_MODULUS


def with_sequence(frame: bytes, sequence: int) -> bytes:
    """``frame`` (a message's first frame, as :func:`encode_message` made it) with another
    sequence number: the same message, sent again, without encoding it again."""
    return b"".join((frame[:4], _check_uint(sequence, 16, "sequence").to_bytes(2, "big"), frame[6:]))


def sequence_follows(expected: int, got: int) -> bool:
    """Tell whether a received sequence ``got`` is acceptable when ``expected`` was due.

    An exact match is always accepted. pyre wraps its counter modulo 65535, so after
    65534 it sends 0 where Zyre sends 65535: when 65535 is expected, 0 is accepted
    too (the caller should then continue from 0, expecting 1 next).
    """
    return got == expected or (expected == _SEQUENCE_MODULUS - 1 and got == 0)


# ---------------------------------------------------------------------------------
# Mailbox messages
# ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Hello:
    """HELLO: greet a peer with our mailbox endpoint, groups, status, name and headers.

    Not hashable, because ``headers`` is a dict.
    """

    kind: ClassVar[int] = HELLO
    sequence: int
    endpoint: str
    groups: tuple[str, ...] = ()
    status: int = 0
    name: str = ""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        """Normalise ``groups`` to a tuple and ``headers`` to a dict."""
        object.__setattr__(self, "groups", _as_tuple(self.groups, "groups"))
        object.__setattr__(self, "headers", _as_dict(self.headers, "headers"))


@dataclasses.dataclass(frozen=True)
class Whisper:
    """WHISPER: a message to one peer; the content is the frames after frame1."""

    kind: ClassVar[int] = WHISPER
    sequence: int
    content: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        """Normalise ``content`` to a tuple of frames."""
        object.__setattr__(self, "content", _as_tuple(self.content, "content"))


@dataclasses.dataclass(frozen=True)
class Shout:
    """SHOUT: a message to a group; the content is the frames after frame1."""

    kind: ClassVar[int] = SHOUT
    sequence: int
    group: str
    content: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        """Normalise ``content`` to a tuple of frames."""
        object.__setattr__(self, "content", _as_tuple(self.content, "content"))


@dataclasses.dataclass(frozen=True)
class Join:
    """JOIN: the sender joined ``group``; ``status`` is its new group status."""

    kind: ClassVar[int] = JOIN
    sequence: int
    group: str
    status: int = 0


@dataclasses.dataclass(frozen=True)
class Leave:
    """LEAVE: the sender left ``group``; ``status`` is its new group status."""

    kind: ClassVar[int] = LEAVE
    sequence: int
    group: str
    status: int = 0


@dataclasses.dataclass(frozen=True)
class Ping:
    """PING: ask a silent peer whether it is still there."""

    kind: ClassVar[int] = PING
    sequence: int


@dataclasses.dataclass(frozen=True)
class PingOk:
    """PING_OK: the reply to a PING."""

    kind: ClassVar[int] = PING_OK
    sequence: int


@dataclasses.dataclass(frozen=True)
class Unknown:
    """A message with an id this module does not know; only its header was decoded."""

    sequence: int
    msg_id: int

    @property
    def kind(self) -> int:
        """The raw message id, as read from the wire."""
        return self.msg_id


#: Any mailbox message this module encodes or decodes.
ZreMessage = Union[Hello, Whisper, Shout, Join, Leave, Ping, PingOk, Unknown]

_KNOWN_IDS = frozenset((HELLO, WHISPER, SHOUT, JOIN, LEAVE, PING, PING_OK))


def encode_message(msg: ZreMessage) -> list[bytes]:
    """Return the frames a DEALER sends for ``msg``: ``[frame1, *content]``.

    Raises ConfigurationError, naming the field, if a value cannot be encoded.
    """
    out = _Writer()
    if isinstance(msg, Unknown):
        msg_id = _check_uint(msg.msg_id, 8, "msg_id")
        if msg_id in _KNOWN_IDS:
            raise ConfigurationError(f"msg_id {msg_id} is a known message id; use its own class")
    elif isinstance(msg, (Hello, Whisper, Shout, Join, Leave, Ping, PingOk)):
        msg_id = msg.kind
    else:
        raise ConfigurationError(f"not a ZRE message: {type(msg).__name__}")
    out.u16(SIGNATURE, "signature")
    out.u8(msg_id, "msg_id")
    out.u8(PROTOCOL_VERSION, "version")
    out.u16(msg.sequence, "sequence")

    content: tuple[Any, ...] = ()
    if isinstance(msg, Hello):
        out.string(msg.endpoint, "endpoint")
        out.strings(msg.groups, "groups")
        out.u8(msg.status, "status")
        out.string(msg.name, "name")
        out.dictionary(msg.headers, "headers")
    elif isinstance(msg, Whisper):
        content = msg.content
    elif isinstance(msg, Shout):
        out.string(msg.group, "group")
        content = msg.content
    elif isinstance(msg, (Join, Leave)):
        out.string(msg.group, "group")
        out.u8(msg.status, "status")
    return [out.getvalue(), *(_frame_bytes(frame, i) for i, frame in enumerate(content))]


def decode_message(frames: list[bytes]) -> ZreMessage:
    """Parse ``[frame1, *content]`` (routing id already removed) into a message.

    Raises MalformedError, and nothing else, if the frames are not a valid message.
    """
    try:
        frame_list = list(frames)
    except TypeError:
        raise MalformedError("frames must be a list of byte strings") from None
    if not frame_list:
        raise MalformedError("message has no frames (frame1 is missing)")
    data = _as_bytes(frame_list[0], "frame1")
    if not data:
        raise MalformedError("frame1 is empty")

    rd = _Reader(data)
    signature = rd.u16("signature")
    if signature != SIGNATURE:
        raise MalformedError(f"bad signature 0x{signature:04x}, expected 0x{SIGNATURE:04x}")
    msg_id = rd.u8("message id")
    version = rd.u8("version")
    if version != PROTOCOL_VERSION:
        raise MalformedError(f"unsupported protocol version {version}, expected {PROTOCOL_VERSION}")
    sequence = rd.u16("sequence")

    msg: ZreMessage
    if msg_id == HELLO:
        endpoint = rd.string("endpoint")
        groups = rd.strings("groups")
        status = rd.u8("status")
        name = rd.string("name")
        headers = rd.dictionary("headers")
        msg = Hello(sequence, endpoint, groups, status, name, headers)
    elif msg_id == WHISPER:
        msg = Whisper(sequence, _content(frame_list))
    elif msg_id == SHOUT:
        msg = Shout(sequence, rd.string("group"), _content(frame_list))
    elif msg_id == JOIN:
        group = rd.string("group")
        msg = Join(sequence, group, rd.u8("status"))
    elif msg_id == LEAVE:
        group = rd.string("group")
        msg = Leave(sequence, group, rd.u8("status"))
    elif msg_id == PING:
        msg = Ping(sequence)
    elif msg_id == PING_OK:
        msg = PingOk(sequence)
    else:
        logger.debug("unknown ZRE message id %d (sequence %d), skipped", msg_id, sequence)
        return Unknown(sequence, msg_id)
    if rd.remaining:
        logger.debug("ignoring %d trailing byte(s) after ZRE message id %d", rd.remaining, msg_id)
    return msg


# ---------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------


class _Reader:
    """A cursor over frame1 that checks every length before it reads."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, size: int, field: str) -> bytes:
        if size > self.remaining:
            raise MalformedError(f"{field}: needs {size} byte(s), only {self.remaining} left")
        start = self._pos
        self._pos += size
        return self._data[start : self._pos]

    def u8(self, field: str) -> int:
        return self._take(1, field)[0]

    def u16(self, field: str) -> int:
        return int(_U16.unpack(self._take(2, field))[0])

    def u32(self, field: str) -> int:
        return int(_U32.unpack(self._take(4, field))[0])

    def _text(self, raw: bytes, field: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedError(f"{field}: invalid UTF-8 ({exc.reason})") from None

    def string(self, field: str) -> str:
        return self._text(self._take(self.u8(f"{field} length"), field), field)

    def longstr(self, field: str) -> str:
        return self._text(self._take(self.u32(f"{field} length"), field), field)

    def _count(self, min_item_size: int, field: str) -> int:
        count = self.u32(f"{field} count")
        # Each item needs at least min_item_size bytes: fail before looping or allocating.
        if count * min_item_size > self.remaining:
            raise MalformedError(f"{field}: count {count} does not fit in {self.remaining} byte(s) left")
        return count

    def strings(self, field: str) -> tuple[str, ...]:
        count = self._count(4, field)
        return tuple(self.longstr(f"{field}[{i}]") for i in range(count))

    def dictionary(self, field: str) -> dict[str, str]:
        count = self._count(5, field)
        result: dict[str, str] = {}
        for i in range(count):
            key = self.string(f"{field} key #{i}")
            value = self.longstr(f"{field}[{key!r}]")
            result.setdefault(key, value)
        return result


class _Writer:
    """Builds frame1, raising ConfigurationError that names the offending field."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def u8(self, value: Any, field: str) -> None:
        self._parts.append(_U8.pack(_check_uint(value, 8, field)))

    def u16(self, value: Any, field: str) -> None:
        self._parts.append(_U16.pack(_check_uint(value, 16, field)))

    def u32(self, value: Any, field: str) -> None:
        self._parts.append(_U32.pack(_check_uint(value, 32, field)))

    def string(self, value: Any, field: str) -> None:
        raw = _utf8(value, field)
        if len(raw) > _STRING_MAX:
            raise ConfigurationError(f"{field}: {len(raw)} bytes of UTF-8, at most {_STRING_MAX} allowed")
        self._parts.append(_U8.pack(len(raw)))
        self._parts.append(raw)

    def longstr(self, value: Any, field: str) -> None:
        raw = _utf8(value, field)
        if len(raw) > _UINT32_MAX:
            raise ConfigurationError(f"{field}: {len(raw)} bytes of UTF-8 is too long")
        self._parts.append(_U32.pack(len(raw)))
        self._parts.append(raw)

    def strings(self, values: Iterable[Any], field: str) -> None:
        items = _as_tuple(values, field)
        self.u32(len(items), f"{field} count")
        for i, item in enumerate(items):
            self.longstr(item, f"{field}[{i}]")

    def dictionary(self, values: Any, field: str) -> None:
        mapping = _as_dict(values, field)
        self.u32(len(mapping), f"{field} count")
        for key, value in mapping.items():
            self.string(key, f"{field} key {key!r}")
            self.longstr(value, f"{field}[{key!r}]")


def _check_uint(value: Any, bits: int, field: str) -> int:
    """Return ``value`` if it is an int in [0, 2**bits), else raise ConfigurationError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigurationError(f"{field} must be an int, not {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise ConfigurationError(f"{field} must be in 0..{(1 << bits) - 1}, got {value}")
    return value


def _utf8(value: Any, field: str) -> bytes:
    """Return the UTF-8 encoding of a str field, or raise ConfigurationError."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{field} must be a str, not {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigurationError(f"{field} cannot be encoded as UTF-8 ({exc.reason})") from None


def _as_tuple(values: Any, field: str) -> tuple[Any, ...]:
    """Return ``values`` as a tuple; a lone str/bytes is refused (it is surely a mistake)."""
    if isinstance(values, tuple):
        return values
    if isinstance(values, (str, bytes, bytearray, memoryview)):
        raise ConfigurationError(f"{field} must be a sequence of items, not a single {type(values).__name__}")
    try:
        return tuple(values)
    except TypeError:
        raise ConfigurationError(f"{field} must be iterable, not {type(values).__name__}") from None


def _as_dict(values: Any, field: str) -> dict[Any, Any]:
    """Return a dict copy of a mapping ``values`` (the same dict if it already is one)."""
    if isinstance(values, dict):
        return values
    if not isinstance(values, Mapping):
        raise ConfigurationError(f"{field} must be a mapping, not {type(values).__name__}")
    return dict(values)


def _frame_bytes(frame: Any, index: int) -> bytes:
    """Return a content frame as bytes, or raise ConfigurationError."""
    if isinstance(frame, bytes):
        return frame
    if isinstance(frame, (bytearray, memoryview)):
        return bytes(frame)
    raise ConfigurationError(f"content[{index}] must be bytes, not {type(frame).__name__}")


def _as_bytes(data: Any, what: str) -> bytes:
    """Return wire data as bytes, or raise MalformedError if it is not bytes-like."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (str, int)):  # memoryview() would refuse these anyway; be explicit
        raise MalformedError(f"{what} must be bytes, not {type(data).__name__}")
    try:
        return memoryview(data).tobytes()
    except TypeError:
        raise MalformedError(f"{what} must be bytes, not {type(data).__name__}") from None


def _content(frames: list[Any]) -> tuple[bytes, ...]:
    """Return the content frames (everything after frame1) as bytes."""
    return tuple(_as_bytes(frame, f"content frame {i}") for i, frame in enumerate(frames[1:]))


# ---------------------------------------------------------------------------------
# Limits and endpoints (checks the engine applies to HELLOs; the codec itself is total)
# ---------------------------------------------------------------------------------


def hello_problem(hello: Hello) -> str | None:
    """Say why ``hello`` is over the limits (header count/bytes, groups), or None if it is not."""
    if len(hello.headers) > MAX_HEADERS:
        return f"{len(hello.headers)} headers, at most {MAX_HEADERS} allowed"
    size = sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in hello.headers.items())
    if size > MAX_HEADER_BYTES:
        return f"{size} bytes of headers, at most {MAX_HEADER_BYTES} allowed"
    if len(hello.groups) > MAX_GROUPS:
        return f"{len(hello.groups)} groups, at most {MAX_GROUPS} allowed"
    return None


@functools.lru_cache(maxsize=4096)
def tcp_endpoint(endpoint: str) -> tuple[str, int]:
    """Return (IPv4 address, port) of a connectable ``tcp://a.b.c.d:port`` mailbox endpoint.

    Raises MalformedError for anything else: another transport (``ipc``, ``inproc``), a
    host name (resolving it would block the engine, and Zyre and pyre always send an
    address), an address nobody can be connected at (0.0.0.0, multicast, broadcast) or
    port 0. Results are cached (bounded; errors are not): a peer's endpoint comes in its
    HELLO to every Peer of a process, and parsing it took a twentieth of a hub's work.
    """
    import ipaddress

    if not isinstance(endpoint, str) or not endpoint.startswith("tcp://"):
        raise MalformedError(f"mailbox endpoint {endpoint!r} is not tcp://address:port")
    host, sep, port_text = endpoint[6:].rpartition(":")
    if not sep or not port_text.isdigit() or len(port_text) > 5:
        raise MalformedError(f"mailbox endpoint {endpoint!r} has no port")
    port = int(port_text)
    if not 0 < port < 65536:
        raise MalformedError(f"mailbox endpoint {endpoint!r}: port out of range")
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        raise MalformedError(f"mailbox endpoint {endpoint!r}: not an IPv4 address") from None
    if address.is_unspecified or address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
        raise MalformedError(f"mailbox endpoint {endpoint!r}: no peer can listen there")
    return str(address), port
