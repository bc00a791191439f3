"""ZIO messages: the prefix and coord headers, the message itself and its multipart encoding.

A ZIO message is a ZeroMQ multipart message (or one single frame holding the multipart
encoding of it) made of::

    [prefix, coord, payload0, payload1, ...]

``prefix``
    ``b"ZIO"``, one ASCII digit giving the :class:`MessageLevel`, four ASCII characters
    naming the *form* of the message, then a UTF-8 *label* (often a JSON object).
``coord``
    24 bytes: the little-endian ``uint64`` triple *origin*, *granule* and *seqno*.
``payload``
    any number (possibly zero) of opaque parts.

When a message must travel as a single frame (``SERVER``/``CLIENT`` sockets), its parts are
joined with the CZMQ / cppzmq multipart encoding of :mod:`zio.codec`.
"""
from __future__ import annotations

import enum
import json
import operator
import struct
from collections.abc import Iterable, Sequence
from typing import Any, Union

import zmq

from .codec import BytesLike, _buffer, _decode_bytes, _to_bytes, decode_parts, encode_parts
from .errors import ConfigurationError, MalformedError

__all__ = [
    "MessageLevel",
    "PrefixHeader",
    "CoordHeader",
    "Message",
    "encode_parts",
    "decode_parts",
    "BytesLike",
    "PartLike",
]

#: What a payload part may be given as (``str`` is encoded as UTF-8).
PartLike = Union[bytes, bytearray, memoryview, str]

_UINT64_MAX = 2**64 - 1
_UINT32_MAX = 2**32 - 1
_ROUTING_ID_MAX = _UINT32_MAX

_COORD = struct.Struct("<QQQ")
_PREFIX_MAGIC = b"ZIO"
_PREFIX_MIN_SIZE = 8  # "ZIO" + level digit + 4 bytes of form
_FORM_SIZE = 4
_DEFAULT_FORM = " " * _FORM_SIZE
#: Parsed prefixes by their wire bytes (prefixes repeat: one form and label per stream).
#: Only valid prefixes of at most _PREFIX_CACHE_BYTES are kept, at most _PREFIX_CACHE_SIZE.
_PREFIX_CACHE: dict[bytes, tuple[Any, str, str]] = {}
_PREFIX_CACHE_SIZE = 256
_PREFIX_CACHE_BYTES = 512
_new = object.__new__
#: Wire bytes of the headers of a new message (level 0, form of spaces, no label; zeros).
_EMPTY_PREFIX = b"ZIO0" + _DEFAULT_FORM.encode("ascii")
_ZERO_COORD = bytes(_COORD.size)


class MessageLevel(enum.IntEnum):
    """Severity / importance level of a message, carried as one digit in the prefix."""

    undefined = 0
    trace = 1
    verbose = 2
    debug = 3
    info = 4
    summary = 5
    warning = 6
    error = 7
    fatal = 8


_LEVELS: tuple[MessageLevel, ...] = tuple(MessageLevel)


# --------------------------------------------------------------------------------------------
# helpers


def _check_level(value: Any) -> MessageLevel:
    """Validate ``value`` as a message level (int or MessageLevel)."""
    if isinstance(value, MessageLevel):
        return value
    if isinstance(value, bool):
        raise ConfigurationError(f"message level must be an int in 0..8, not {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ConfigurationError(f"message level must be an int in 0..8, not {value!r}") from None
    try:
        return MessageLevel(number)
    except ValueError:
        raise ConfigurationError(f"message level must be in 0..8, not {number}") from None


def _check_form(value: Any) -> str:
    """Validate ``value`` as a form: at most 4 ASCII characters, right-padded with spaces."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise ConfigurationError(f"message form must be ASCII, got {bytes(value)!r}") from None
    if not isinstance(value, str):
        raise ConfigurationError(f"message form must be a str, not {type(value).__name__}")
    if len(value) > _FORM_SIZE:
        raise ConfigurationError(f"message form must be at most 4 characters, got {value!r}")
    if not value.isascii():
        raise ConfigurationError(f"message form must be ASCII, got {value!r}")
    return value.ljust(_FORM_SIZE)


def _check_label(value: Any) -> str:
    """Validate ``value`` as a label: a str that can be encoded as UTF-8."""
    if not isinstance(value, str):
        raise ConfigurationError(f"message label must be a str, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ConfigurationError(f"message label is not encodable as UTF-8: {err}") from None
    return value


def _check_uint64(name: str, value: Any) -> int:
    """Validate ``value`` as an unsigned 64 bit integer."""
    if isinstance(value, bool):
        raise ConfigurationError(f"{name} must be an int, not {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ConfigurationError(f"{name} must be an int, not {type(value).__name__}") from None
    if not 0 <= number <= _UINT64_MAX:
        raise ConfigurationError(f"{name} must fit in an unsigned 64 bit integer, got {number}")
    return number


# --------------------------------------------------------------------------------------------
# prefix header


class PrefixHeader:
    """The first part of a ZIO message: ``b"ZIO"`` + level digit + 4-byte form + UTF-8 label.

    ``PrefixHeader(level, form, label)`` builds one from fields (positionally or by keyword),
    ``PrefixHeader("ZIO4TEXThello")`` or ``PrefixHeader("4TEXThello")`` from its text and
    ``PrefixHeader(b"ZIO4TEXThello")`` parses wire bytes (any bytes-like object). Bad fields
    raise :class:`ConfigurationError`, bad wire bytes :class:`MalformedError`.
    """

    # _wire caches the wire bytes; None when a field changed since they were made
    __slots__ = ("_level", "_form", "_label", "_wire")

    def __init__(
        self,
        *args: Any,
        level: int | MessageLevel = 0,
        form: str = _DEFAULT_FORM,
        label: str = "",
    ) -> None:
        self._level = MessageLevel.undefined
        self._form = _DEFAULT_FORM
        self._label = ""
        self._wire: bytes | None = None
        keywords_given = level != 0 or form != _DEFAULT_FORM or label != ""
        if not args and not keywords_given:
            return
        if len(args) == 1 and not isinstance(args[0], int):
            if keywords_given:
                raise TypeError("PrefixHeader(): give either one header to parse or fields")
            self._assign(args[0])
            return
        if len(args) > 3:
            raise TypeError(
                f"PrefixHeader() takes at most 3 positional arguments ({len(args)} given)"
            )
        fields: dict[str, Any] = {"level": level, "form": form, "label": label}
        defaults = {"level": 0, "form": _DEFAULT_FORM, "label": ""}
        for name, value in zip(("level", "form", "label"), args):
            if fields[name] != defaults[name]:
                raise TypeError(f"PrefixHeader() got {name} both positionally and by keyword")
            fields[name] = value
        self.level = fields["level"]
        self.form = fields["form"]
        self.label = fields["label"]

    def _assign(self, source: Any) -> None:
        """Fill the fields from another header, its text, or its wire bytes."""
        if isinstance(source, PrefixHeader):
            self._level, self._form, self._label = source._level, source._form, source._label
            self._wire = source._wire
        elif isinstance(source, str):
            self._fromstring(source)
        else:
            try:
                data = _to_bytes(source)
            except TypeError:
                raise ConfigurationError(
                    f"cannot make a PrefixHeader from a {type(source).__name__}"
                ) from None
            self._frombytes(data)

    def _fromstring(self, text: str) -> None:
        """Parse the text form ``"ZIO4TEXThello"`` or ``"4TEXThello"``."""
        body = text[len("ZIO"):] if text.startswith("ZIO") else text
        if not body or body[0] not in "012345678":
            raise ConfigurationError(
                f"prefix text must be [ZIO]<level digit 0-8><form><label>, got {text!r}"
            )
        self.level = int(body[0])
        self.form = body[1:1 + _FORM_SIZE]
        self.label = body[1 + _FORM_SIZE:]

    def _frombytes(self, data: bytes) -> None:
        """Parse wire bytes, raising MalformedError on anything wrong."""
        self._level, self._form, self._label = _parse_prefix(data)
        self._wire = data

    @staticmethod
    def _parse(data: bytes) -> tuple[MessageLevel, str, str]:
        """Validate and split wire bytes into (level, form, label); MalformedError if invalid."""
        if len(data) < _PREFIX_MIN_SIZE:
            raise MalformedError(
                f"prefix header too short: {len(data)} bytes, need at least {_PREFIX_MIN_SIZE}"
            )
        if data[:3] != _PREFIX_MAGIC:
            raise MalformedError(f"prefix header does not start with b'ZIO': {data[:8]!r}")
        digit = data[3]
        if not 0x30 <= digit <= 0x38:
            raise MalformedError(f"prefix header level is not a digit 0-8: {bytes((digit,))!r}")
        try:
            form = data[4:8].decode("ascii")
        except UnicodeDecodeError:
            raise MalformedError(f"prefix header form is not ASCII: {data[4:8]!r}") from None
        try:
            label = data[8:].decode("utf-8")
        except UnicodeDecodeError as err:
            raise MalformedError(f"prefix header label is not valid UTF-8: {err}") from None
        return _LEVELS[digit - 0x30], form, label

    @classmethod
    def frombytes(cls, data: BytesLike) -> PrefixHeader:
        """Parse a prefix header from its wire bytes (MalformedError when they are invalid)."""
        header = cls()
        raw = _wire_bytes(data, "prefix header")
        header._frombytes(raw)
        return header

    @property
    def level(self) -> MessageLevel:
        """The message level."""
        return self._level

    @level.setter
    def level(self, value: int | MessageLevel) -> None:
        self._level = _check_level(value)
        self._wire = None

    @property
    def form(self) -> str:
        """The 4-character form; shorter values are space padded, longer or non-ASCII refused."""
        return self._form

    @form.setter
    def form(self, value: str) -> None:
        self._form = _check_form(value)
        self._wire = None

    @property
    def label(self) -> str:
        """The free text label (often JSON)."""
        return self._label

    @label.setter
    def label(self, value: str) -> None:
        self._label = _check_label(value)
        self._wire = None

    def __bytes__(self) -> bytes:
        """The wire form: ``b"ZIO"`` + level digit + form + UTF-8 label."""
        wire = self._wire
        if wire is None:
            form = self._form.encode("ascii")
            wire = self._wire = b"ZIO%d%s%s" % (self._level, form, self._label.encode("utf-8"))
        return wire

    def __str__(self) -> str:
        """The text form, e.g. ``"ZIO4TEXThello"``."""
        return f"ZIO{int(self._level)}{self._form}{self._label}"

    def __repr__(self) -> str:
        """An evaluable representation."""
        return (
            f"PrefixHeader(level=MessageLevel.{self._level.name}, form={self._form!r}, "
            f"label={self._label!r})"
        )

    def __eq__(self, other: object) -> bool:
        """Headers are equal when level, form and label are."""
        if not isinstance(other, PrefixHeader):
            return NotImplemented
        return (self._level, self._form, self._label) == (other._level, other._form, other._label)

    __hash__ = None  # type: ignore[assignment]  # mutable


def _parse_prefix(data: bytes) -> tuple[MessageLevel, str, str]:
    """``PrefixHeader._parse`` with a small cache of the prefixes already seen valid."""
    fields = _PREFIX_CACHE.get(data)
    if fields is None:
        fields = PrefixHeader._parse(data)
        if len(data) <= _PREFIX_CACHE_BYTES:
            if len(_PREFIX_CACHE) >= _PREFIX_CACHE_SIZE:
                _PREFIX_CACHE.clear()
            _PREFIX_CACHE[data] = fields
    return fields


def _wire_bytes(data: Any, what: str) -> bytes:
    """``data`` as bytes; MalformedError naming ``what`` if it is not bytes-like."""
    try:
        return _to_bytes(data)
    except TypeError as err:
        raise MalformedError(f"{what} must be bytes-like: {err}") from None


def _checked_prefix(data: Any) -> bytes | PrefixHeader:
    """Received prefix wire bytes, validated (MalformedError if invalid): the bytes
    themselves when their fields are cached (a message parses them when asked), else a
    PrefixHeader (a long label: not cached)."""
    if type(data) is not bytes:
        data = _wire_bytes(data, "prefix header")
    if data in _PREFIX_CACHE:
        return data
    fields = _parse_prefix(data)
    if data in _PREFIX_CACHE:
        return data
    header = _new(PrefixHeader)
    header._level, header._form, header._label = fields
    header._wire = data
    return header


def _checked_coord(data: Any) -> bytes:
    """Received coord wire bytes, validated (MalformedError if not 24 bytes-like bytes)."""
    if type(data) is not bytes:
        data = _wire_bytes(data, "coord header")
    if len(data) != _COORD_SIZE:
        raise MalformedError(f"coord header must be exactly {_COORD_SIZE} bytes, got {len(data)}")
    return data


def _prefix_from_wire(data: Any) -> PrefixHeader:
    """A PrefixHeader from received wire bytes (MalformedError if invalid), without __init__."""
    if type(data) is not bytes:
        data = _wire_bytes(data, "prefix header")
    header = _new(PrefixHeader)
    header._level, header._form, header._label = _parse_prefix(data)
    header._wire = data
    return header


# --------------------------------------------------------------------------------------------
# coord header


class CoordHeader:
    """The second part of a ZIO message: little-endian uint64 origin, granule and seqno.

    ``CoordHeader(origin, granule, seqno)`` (positionally or by keyword) or
    ``CoordHeader(b"...24 bytes...")``. Values outside uint64 raise
    :class:`ConfigurationError`, wire bytes of the wrong size :class:`MalformedError`.
    """

    # _wire caches the wire bytes; None when a field changed since they were made
    __slots__ = ("_origin", "_granule", "_seqno", "_wire")

    SIZE = _COORD.size

    def __init__(self, *args: Any, origin: int = 0, granule: int = 0, seqno: int = 0) -> None:
        self._origin = 0
        self._granule = 0
        self._seqno = 0
        self._wire: bytes | None = None
        keywords_given = origin != 0 or granule != 0 or seqno != 0
        if not args and not keywords_given:
            return
        if len(args) == 1 and not isinstance(args[0], int):
            if keywords_given:
                raise TypeError("CoordHeader(): give either one header to parse or fields")
            source = args[0]
            if isinstance(source, CoordHeader):
                self._origin, self._granule, self._seqno = source.astuple()
                self._wire = source._wire
                return
            try:
                data = _to_bytes(source)
            except TypeError:
                raise ConfigurationError(
                    f"cannot make a CoordHeader from a {type(source).__name__}"
                ) from None
            self._frombytes(data)
            return
        if len(args) > 3:
            raise TypeError(
                f"CoordHeader() takes at most 3 positional arguments ({len(args)} given)"
            )
        fields = [origin, granule, seqno]
        for index, value in enumerate(args):
            if fields[index] != 0:
                name = ("origin", "granule", "seqno")[index]
                raise TypeError(f"CoordHeader() got {name} both positionally and by keyword")
            fields[index] = value
        self.origin, self.granule, self.seqno = fields

    def _frombytes(self, data: bytes) -> None:
        """Parse wire bytes, raising MalformedError when the size is wrong."""
        if len(data) != _COORD.size:
            raise MalformedError(
                f"coord header must be exactly {_COORD.size} bytes, got {len(data)}"
            )
        self._origin, self._granule, self._seqno = _COORD.unpack(data)
        self._wire = data

    @classmethod
    def frombytes(cls, data: BytesLike) -> CoordHeader:
        """Parse a coord header from its 24 wire bytes (MalformedError otherwise)."""
        header = cls()
        raw = _wire_bytes(data, "coord header")
        header._frombytes(raw)
        return header

    @property
    def origin(self) -> int:
        """Identifies where the message comes from."""
        return self._origin

    @origin.setter
    def origin(self, value: int) -> None:
        self._origin = _check_uint64("origin", value)
        self._wire = None

    @property
    def granule(self) -> int:
        """A time-like count (e.g. a timestamp or a tick)."""
        return self._granule

    @granule.setter
    def granule(self, value: int) -> None:
        self._granule = _check_uint64("granule", value)
        self._wire = None

    @property
    def seqno(self) -> int:
        """The sequence number of the message in its stream."""
        return self._seqno

    @seqno.setter
    def seqno(self, value: int) -> None:
        self._seqno = _check_uint64("seqno", value)
        self._wire = None

    def astuple(self) -> tuple[int, int, int]:
        """Return ``(origin, granule, seqno)``."""
        return (self._origin, self._granule, self._seqno)

    def __bytes__(self) -> bytes:
        """The 24-byte wire form."""
        wire = self._wire
        if wire is None:
            try:
                wire = self._wire = _COORD.pack(self._origin, self._granule, self._seqno)
            except struct.error as err:  # only reachable if the slots were bypassed
                raise ConfigurationError(f"coord header values do not fit uint64: {err}") from None
        return wire

    def __str__(self) -> str:
        """Text form ``[0x<origin>,<granule>,<seqno>]``."""
        return "[0x%x,%d,%d]" % (self._origin, self._granule, self._seqno)

    def __repr__(self) -> str:
        """An evaluable representation."""
        return f"CoordHeader(origin={self._origin}, granule={self._granule}, seqno={self._seqno})"

    def __eq__(self, other: object) -> bool:
        """Headers are equal when origin, granule and seqno are."""
        if not isinstance(other, CoordHeader):
            return NotImplemented
        return self.astuple() == other.astuple()

    __hash__ = None  # type: ignore[assignment]  # mutable


_COORD_SIZE = _COORD.size
_unpack_coord = _COORD.unpack


def _coord_from_wire(data: Any) -> CoordHeader:
    """A CoordHeader from received wire bytes (MalformedError if invalid), without __init__."""
    data = _checked_coord(data)
    header = _new(CoordHeader)
    header._origin, header._granule, header._seqno = _unpack_coord(data)
    header._wire = data
    return header


# --------------------------------------------------------------------------------------------
# message


def _to_part(value: Any) -> bytes | bytearray | memoryview:
    """Normalise one payload part: str is UTF-8 encoded, buffers are kept without copying."""
    if isinstance(value, (bytes, bytearray)):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    try:
        return _buffer(value)
    except TypeError:
        raise ConfigurationError(
            f"payload parts must be bytes-like or str, not {type(value).__name__}"
        ) from None


def _is_single_part(value: Any) -> bool:
    """True when ``value`` is one part (str or buffer) rather than an iterable of parts."""
    if isinstance(value, (bytes, bytearray, memoryview, str)):
        return True
    try:
        memoryview(value)
    except TypeError:
        return False
    return True


class Message:
    """A ZIO message: a :class:`PrefixHeader`, a :class:`CoordHeader` and payload parts.

    Constructor arguments are applied from the most general to the most specific so that the
    later ones override the earlier: ``frame``, ``encoded``, ``parts``, ``payload``, ``coord``,
    ``prefix``, ``routing_id``, ``label_object``, ``label``, ``form``, ``level``, ``origin``,
    ``granule``, ``seqno``. ``None`` means "not given".
    """

    # _p and _c hold the headers, or their validated wire bytes until a header is asked for:
    # a received message is made without parsing its headers into objects (see _prefix)
    __slots__ = ("_p", "_c", "_payload", "_routing_id")

    def __init__(
        self,
        level: int | MessageLevel | None = None,
        form: str | None = None,
        label: str | None = None,
        label_object: Any = None,
        routing_id: int | bytes | None = None,
        origin: int | None = None,
        granule: int | None = None,
        seqno: int | None = None,
        prefix: PrefixHeader | BytesLike | str | None = None,
        coord: CoordHeader | BytesLike | None = None,
        payload: PartLike | Iterable[PartLike] | None = None,
        parts: Sequence[Any] | None = None,
        encoded: BytesLike | None = None,
        frame: Any = None,
    ) -> None:
        self._p: PrefixHeader | bytes = _EMPTY_PREFIX
        self._c: CoordHeader | bytes = _ZERO_COORD
        self._payload: list[bytes | bytearray | memoryview] = []
        self._routing_id: int | bytes = 0
        if frame is None and (parts is None) != (encoded is None):
            # the common cases first: Message(parts=) or Message(encoded=) of received data
            if parts is None:
                data: Any = encoded
                parts = _decode_bytes(data) if type(data) is bytes else decode_parts(data)
            self._setparts(parts)
            if (payload is None and coord is None and prefix is None and routing_id is None
                    and label_object is None and label is None and form is None and level is None
                    and origin is None and granule is None and seqno is None):
                return
            parts = encoded = None
        if frame is not None:
            self.fromframe(frame)
        if encoded is not None:
            self.decode(encoded)
        if parts is not None:
            self.fromparts(parts)
        if payload is not None:
            self.payload = payload
        if coord is not None:
            self.coord = coord
        if prefix is not None:
            self.prefix = prefix
        if routing_id is not None:
            self.routing_id = routing_id
        if label_object is not None:
            self.label_object = label_object
        if label is not None:
            self.label = label
        if form is not None:
            self.form = form
        if level is not None:
            self.level = level
        if origin is not None:
            self.origin = origin
        if granule is not None:
            self.granule = granule
        if seqno is not None:
            self.seqno = seqno

    # ---- headers ---------------------------------------------------------------------------

    @property
    def _prefix(self) -> PrefixHeader:
        """The prefix header object, made from the wire bytes on first use."""
        header = self._p
        if type(header) is bytes:
            header = self._p = _prefix_from_wire(header)
        return header  # type: ignore[return-value]

    @property
    def _coord(self) -> CoordHeader:
        """The coord header object, made from the wire bytes on first use."""
        header = self._c
        if type(header) is bytes:
            header = self._c = _coord_from_wire(header)
        return header  # type: ignore[return-value]

    @property
    def prefix(self) -> PrefixHeader:
        """The prefix header (the live object: changing it changes the message)."""
        return self._prefix

    @prefix.setter
    def prefix(self, value: PrefixHeader | BytesLike | str) -> None:
        if isinstance(value, int):
            raise ConfigurationError("prefix must be a PrefixHeader, its text or its wire bytes")
        self._p = PrefixHeader(value)

    @property
    def coord(self) -> CoordHeader:
        """The coord header (the live object: changing it changes the message)."""
        return self._coord

    @coord.setter
    def coord(self, value: CoordHeader | BytesLike) -> None:
        if isinstance(value, int):
            raise ConfigurationError("coord must be a CoordHeader or its 24 wire bytes")
        self._c = CoordHeader(value)

    @property
    def level(self) -> MessageLevel:
        """The message level (settable from an int 0..8 or a MessageLevel)."""
        return self._prefix.level

    @level.setter
    def level(self, value: int | MessageLevel) -> None:
        self._prefix.level = value

    @property
    def form(self) -> str:
        """The 4-character form of the message."""
        return self._prefix.form

    @form.setter
    def form(self, value: str) -> None:
        self._prefix.form = value

    @property
    def label(self) -> str:
        """The label text of the prefix."""
        return self._prefix.label

    @label.setter
    def label(self, value: str) -> None:
        self._prefix.label = value

    @property
    def label_object(self) -> Any:
        """The label parsed as JSON; ``{}`` for an empty label, MalformedError if not JSON."""
        label = self._prefix.label
        if not label:
            return {}
        try:
            return json.loads(label)
        except ValueError as err:
            raise MalformedError(f"message label is not valid JSON: {err}") from None

    @label_object.setter
    def label_object(self, value: Any) -> None:
        if value is None:
            self._prefix.label = ""
            return
        try:
            self._prefix.label = json.dumps(value)
        except (TypeError, ValueError) as err:
            raise ConfigurationError(f"label object is not JSON serialisable: {err}") from None

    @property
    def origin(self) -> int:
        """The coord origin."""
        return self._coord.origin

    @origin.setter
    def origin(self, value: int) -> None:
        self._coord.origin = value

    @property
    def granule(self) -> int:
        """The coord granule."""
        return self._coord.granule

    @granule.setter
    def granule(self, value: int) -> None:
        self._coord.granule = value

    @property
    def seqno(self) -> int:
        """The coord sequence number."""
        return self._coord.seqno

    @seqno.setter
    def seqno(self, value: int) -> None:
        self._coord.seqno = value

    # ---- payload and routing -----------------------------------------------------------

    @property
    def payload(self) -> list[bytes | bytearray | memoryview]:
        """The payload parts: a list of bytes-like objects (buffers are kept without copying).

        Settable from one bytes-like or str part, or from an iterable of them; str is UTF-8
        encoded and zmq.Frame objects are kept as memoryviews of their data.
        """
        return self._payload

    @payload.setter
    def payload(self, value: PartLike | Iterable[PartLike] | None) -> None:
        if value is None:
            self._payload = []
        elif _is_single_part(value):
            self._payload = [_to_part(value)]
        else:
            try:
                items = iter(value)
            except TypeError:
                raise ConfigurationError(
                    f"payload must be bytes-like, str or an iterable of them, "
                    f"not {type(value).__name__}"
                ) from None
            self._payload = [_to_part(item) for item in items]

    @property
    def routing_id(self) -> int | bytes:
        """The routing id of a SERVER peer (int) or ROUTER identity (bytes); 0 means none."""
        return self._routing_id

    @routing_id.setter
    def routing_id(self, value: int | bytes | None) -> None:
        if value is None:
            self._routing_id = 0
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self._routing_id = bytes(value)
        elif isinstance(value, bool):
            raise ConfigurationError(f"routing id must be an int or bytes, not {value!r}")
        else:
            try:
                number = operator.index(value)
            except TypeError:
                raise ConfigurationError(
                    f"routing id must be an int or bytes, not {type(value).__name__}"
                ) from None
            if not 0 <= number <= _ROUTING_ID_MAX:
                raise ConfigurationError(f"routing id must be in 0..2**32-1, got {number}")
            self._routing_id = number

    # ---- conversions -------------------------------------------------------------------

    def toparts(self) -> list[Any]:
        """Return ``[bytes(prefix), bytes(coord), *payload]``, ready for send_multipart."""
        prefix = self._p
        if type(prefix) is not bytes:
            prefix = prefix._wire or prefix.__bytes__()  # type: ignore[union-attr]
        coord = self._c
        if type(coord) is not bytes:
            coord = coord._wire or coord.__bytes__()  # type: ignore[union-attr]
        return [prefix, coord, *self._payload]

    def fromparts(self, parts: Sequence[Any]) -> None:
        """Set prefix, coord and payload from ``[prefix, coord, *payload]`` (bytes-like parts).

        Fewer than 2 parts or unparsable headers raise MalformedError; the message is left
        unchanged in that case.
        """
        self._setparts(parts)

    def _setparts(self, parts: Sequence[Any]) -> None:
        """:meth:`fromparts`."""
        if type(parts) is not list:
            parts = list(parts)
        if len(parts) < 2:
            raise MalformedError(
                f"a ZIO message needs at least 2 parts (prefix, coord), got {len(parts)}"
            )
        prefix, coord = parts[0], parts[1]
        if type(prefix) is not bytes or prefix not in _PREFIX_CACHE:
            prefix = _checked_prefix(prefix)
        if type(coord) is not bytes or len(coord) != _COORD_SIZE:
            coord = _checked_coord(coord)
        payload = parts[2:]
        for part in payload:
            if type(part) is not bytes:
                try:
                    payload = [p if type(p) is bytes else _to_part(p) for p in payload]
                except ConfigurationError as err:
                    raise MalformedError(str(err)) from None
                break
        self._p, self._c, self._payload = prefix, coord, payload

    @classmethod
    def _fromwire(cls, parts: list[Any], routing_id: int | bytes = 0) -> Message:
        """A message from parts a socket delivered: what ``Message(parts=parts,
        routing_id=routing_id)`` makes, faster. For trusted callers (zio.Port): the parts
        must be a list of buffers (bytes, or memoryviews of byte buffers: kept as they
        are), the routing id a valid int or bytes. MalformedError as in :meth:`fromparts`.
        """
        if len(parts) < 2:
            raise MalformedError(
                f"a ZIO message needs at least 2 parts (prefix, coord), got {len(parts)}"
            )
        msg = _new(cls)
        prefix, coord = parts[0], parts[1]
        msg._p = prefix if type(prefix) is bytes and prefix in _PREFIX_CACHE else _checked_prefix(prefix)
        msg._c = coord if type(coord) is bytes and len(coord) == _COORD_SIZE else _checked_coord(coord)
        msg._payload = parts[2:]
        msg._routing_id = routing_id
        return msg

    def encode(self) -> bytes:
        """Return the single-buffer encoding of the parts (see :func:`encode_parts`)."""
        return encode_parts(self.toparts())

    def decode(self, data: BytesLike) -> None:
        """Set prefix, coord and payload from a buffer made by :meth:`encode`."""
        self._setparts(decode_parts(data))

    def fromframe(self, frame: Any) -> None:
        """Set the message from a single zmq.Frame holding an encoded message.

        The routing id is taken from ``frame.routing_id`` when the frame has one (draft
        SERVER sockets); otherwise it is left as it is.
        """
        try:
            routing_id = frame.routing_id
        except (AttributeError, RuntimeError, NotImplementedError, zmq.ZMQError):
            # not a frame, or libzmq/pyzmq built without draft (CLIENT/SERVER) support
            routing_id = None
        data = frame.buffer if hasattr(frame, "buffer") else frame
        self.decode(data)
        if routing_id:
            self.routing_id = routing_id

    # ---- dunders -----------------------------------------------------------------------

    def __str__(self) -> str:
        """Short summary, e.g. ``zio.Message: "ZIO4TEXTlabel" + [0x0,0,0] + [2]``."""
        return f'zio.Message: "{self._prefix}" + {self._coord} + [{len(self._payload)}]'

    def __repr__(self) -> str:
        """Representation with both headers and the payload part sizes."""
        sizes = [len(_buffer(part)) if not isinstance(part, bytes) else len(part)
                 for part in self._payload]
        return (
            f"<zio.Message prefix={self._prefix!r} coord={self._coord!r} "
            f"payload_sizes={sizes} routing_id={self._routing_id!r}>"
        )

    def __eq__(self, other: object) -> bool:
        """Messages are equal when prefix, coord and payload bytes are (routing id ignored)."""
        if not isinstance(other, Message):
            return NotImplemented
        if self._prefix != other._prefix or self._coord != other._coord:
            return False
        if len(self._payload) != len(other._payload):
            return False
        return all(_to_bytes(a) == _to_bytes(b) for a, b in zip(self._payload, other._payload))

    __hash__ = None  # type: ignore[assignment]  # mutable
