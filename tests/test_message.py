"""Tests of zio.message: headers, multipart encoding and the Message class."""
from __future__ import annotations

import json
import mmap
import struct

import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from zio.errors import ConfigurationError, MalformedError, ZioError
from zio.message import (
    CoordHeader,
    Message,
    MessageLevel,
    PrefixHeader,
    decode_parts,
    encode_parts,
)

KNOWN_COORD = b"\x01" + bytes(7) + b"\x02" + bytes(7) + b"\x03" + bytes(7)


def known_message() -> Message:
    return Message(level=4, form="TEXT", label="hi", origin=1, granule=2, seqno=3, payload=[b"x"])


# ---------------------------------------------------------------------------------------------
# strategies

# Parts around the one-byte / five-byte length boundary as well as small and empty ones.
part_strategy = st.one_of(
    st.binary(max_size=16),
    st.just(b""),
    st.integers(min_value=250, max_value=260).map(lambda n: bytes([n % 256]) * n),
    st.integers(min_value=0, max_value=70000).map(lambda n: b"z" * n),
)
parts_strategy = st.lists(part_strategy, max_size=6)
label_strategy = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
form_strategy = st.text(alphabet=st.characters(codec="ascii"), max_size=4)
uint64 = st.integers(min_value=0, max_value=2**64 - 1)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    return Message(
        level=draw(st.integers(min_value=0, max_value=8)),
        form=draw(form_strategy),
        label=draw(label_strategy),
        origin=draw(uint64),
        granule=draw(uint64),
        seqno=draw(uint64),
        payload=draw(parts_strategy),
    )


# ---------------------------------------------------------------------------------------------
# MessageLevel


def test_message_level_values() -> None:
    expected = ["undefined", "trace", "verbose", "debug", "info", "summary", "warning", "error",
                "fatal"]
    assert [level.name for level in MessageLevel] == expected
    assert [int(level) for level in MessageLevel] == list(range(9))


# ---------------------------------------------------------------------------------------------
# PrefixHeader


def test_prefix_defaults() -> None:
    ph = PrefixHeader()
    assert ph.level is MessageLevel.undefined
    assert ph.form == "    "
    assert ph.label == ""
    assert bytes(ph) == b"ZIO0    "
    assert str(ph) == "ZIO0    "


@pytest.mark.parametrize(
    "header",
    [
        PrefixHeader(4, "TEXT", "hello"),
        PrefixHeader(level=4, form="TEXT", label="hello"),
        PrefixHeader(MessageLevel.info, "TEXT", label="hello"),
        PrefixHeader("ZIO4TEXThello"),
        PrefixHeader("4TEXThello"),
        PrefixHeader(b"ZIO4TEXThello"),
        PrefixHeader(bytearray(b"ZIO4TEXThello")),
        PrefixHeader(memoryview(b"ZIO4TEXThello")),
        PrefixHeader(PrefixHeader(4, "TEXT", "hello")),
        PrefixHeader.frombytes(b"ZIO4TEXThello"),
    ],
)
def test_prefix_constructors(header: PrefixHeader) -> None:
    assert header.level == MessageLevel.info
    assert isinstance(header.level, MessageLevel)
    assert header.form == "TEXT"
    assert header.label == "hello"
    assert bytes(header) == b"ZIO4TEXThello"
    assert str(header) == "ZIO4TEXThello"
    assert header == PrefixHeader(4, "TEXT", "hello")


def test_prefix_form_padding_and_utf8_label() -> None:
    ph = PrefixHeader(2, "AB", "h\u00e9llo \u2603")
    assert ph.form == "AB  "
    assert bytes(ph) == b"ZIO2AB  " + "h\u00e9llo \u2603".encode()
    assert PrefixHeader.frombytes(bytes(ph)) == ph
    assert PrefixHeader("3X").form == "X   "


def test_prefix_eq_and_repr() -> None:
    ph = PrefixHeader(7, "FLOW", '{"a": 1}')
    assert ph == PrefixHeader(bytes(ph))
    assert ph != PrefixHeader(7, "FLOW", "")
    assert ph != "ZIO7FLOW"
    assert eval(repr(ph), {"PrefixHeader": PrefixHeader, "MessageLevel": MessageLevel}) == ph


@pytest.mark.parametrize(
    "kwargs",
    [
        {"form": "TOOLONG"},
        {"form": "\u00e9"},
        {"form": 5},
        {"level": 9},
        {"level": -1},
        {"level": "4"},
        {"label": b"bytes"},
        {"label": "\udc80"},
    ],
)
def test_prefix_bad_fields(kwargs: dict) -> None:
    with pytest.raises(ConfigurationError):
        PrefixHeader(**kwargs)
    with pytest.raises(ValueError):
        PrefixHeader(**kwargs)


@pytest.mark.parametrize("text", ["", "ZIO", "9TEXT", "XTEXT", "ZIOxTEXT", "4TE\u00e9T"])
def test_prefix_bad_text(text: str) -> None:
    with pytest.raises(ConfigurationError):
        PrefixHeader(text)


def test_prefix_bad_call() -> None:
    with pytest.raises(TypeError):
        PrefixHeader(1, "A", "b", "extra")
    with pytest.raises(TypeError):
        PrefixHeader(4, level=5)
    with pytest.raises(TypeError):
        PrefixHeader(b"ZIO4TEXT", label="x")
    with pytest.raises(ConfigurationError):
        PrefixHeader(3.5)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "short"),
        (b"ZIO4TEX", "short"),
        (b"XYZ4TEXT", "ZIO"),
        (b"zio4TEXT", "ZIO"),
        (b"ZIOxTEXT", "digit"),
        (b"ZIO9TEXT", "digit"),
        (b"ZIO\xff" + b"TEXT", "digit"),
        (b"ZIO4T\xe9XT", "ASCII"),
        (b"ZIO4TEXT\xff\xfe", "UTF-8"),
        (b"ZIO4TEXTabc\xc3", "UTF-8"),
    ],
)
def test_prefix_malformed(data: bytes, words: str) -> None:
    with pytest.raises(MalformedError, match=words):
        PrefixHeader.frombytes(data)
    with pytest.raises(MalformedError):
        PrefixHeader(data)
    with pytest.raises(ValueError):
        PrefixHeader(data)


def test_prefix_setters_validate() -> None:
    ph = PrefixHeader()
    ph.level = MessageLevel.error
    ph.form = "ab"
    ph.label = "x"
    assert bytes(ph) == b"ZIO7ab  x"
    with pytest.raises(ConfigurationError):
        ph.form = "abcde"
    with pytest.raises(ConfigurationError):
        ph.level = 42
    assert bytes(ph) == b"ZIO7ab  x"


@given(st.integers(min_value=0, max_value=8), form_strategy, label_strategy)
def test_prefix_roundtrip(level: int, form: str, label: str) -> None:
    ph = PrefixHeader(level, form, label)
    assert PrefixHeader.frombytes(bytes(ph)) == ph
    assert PrefixHeader(str(ph)) == ph
    assert bytes(ph)[:4] == b"ZIO%d" % level


# ---------------------------------------------------------------------------------------------
# CoordHeader


def test_coord_basics() -> None:
    ch = CoordHeader(1, 2, 3)
    assert bytes(ch) == KNOWN_COORD
    assert ch == CoordHeader(origin=1, granule=2, seqno=3)
    assert ch == CoordHeader(KNOWN_COORD) == CoordHeader.frombytes(bytearray(KNOWN_COORD))
    assert ch == CoordHeader(ch)
    assert ch != CoordHeader(1, 2, 4)
    assert ch != (1, 2, 3)
    assert ch.astuple() == (1, 2, 3)
    assert str(CoordHeader(255, 2, 3)) == "[0xff,2,3]"
    assert eval(repr(ch), {"CoordHeader": CoordHeader}) == ch
    assert bytes(CoordHeader()) == bytes(24)
    top = CoordHeader(2**64 - 1, 2**64 - 1, 2**64 - 1)
    assert bytes(top) == b"\xff" * 24
    assert CoordHeader.frombytes(bytes(top)) == top


@pytest.mark.parametrize("size", [0, 1, 23, 25, 48])
def test_coord_wrong_length(size: int) -> None:
    with pytest.raises(MalformedError, match="24"):
        CoordHeader.frombytes(bytes(size))
    with pytest.raises(ValueError):
        CoordHeader(bytes(size))


@pytest.mark.parametrize("kwargs", [{"origin": -1}, {"granule": 2**64}, {"seqno": "1"},
                                    {"origin": 1.0}])
def test_coord_bad_values(kwargs: dict) -> None:
    with pytest.raises(ConfigurationError):
        CoordHeader(**kwargs)
    ch = CoordHeader()
    name, value = next(iter(kwargs.items()))
    with pytest.raises(ConfigurationError):
        setattr(ch, name, value)
    assert bytes(ch) == bytes(24)


@given(uint64, uint64, uint64)
def test_coord_roundtrip(origin: int, granule: int, seqno: int) -> None:
    ch = CoordHeader(origin, granule, seqno)
    data = bytes(ch)
    assert data == struct.pack("<QQQ", origin, granule, seqno)
    assert CoordHeader.frombytes(data) == ch


# ---------------------------------------------------------------------------------------------
# encode_parts / decode_parts


def test_encode_parts_known_bytes() -> None:
    parts = [b"", b"a" * 254, b"b" * 255, b"c" * 70000]
    expected = (
        b"\x00"
        + b"\xfe" + b"a" * 254
        + b"\xff\x00\x00\x00\xff" + b"b" * 255
        + b"\xff\x00\x01\x11\x70" + b"c" * 70000
    )
    assert encode_parts(parts) == expected
    assert decode_parts(expected) == parts
    assert decode_parts(bytearray(expected)) == parts
    assert decode_parts(memoryview(expected)) == parts
    assert decode_parts(zmq.Frame(expected)) == parts


def test_encode_parts_accepts_bytes_like() -> None:
    data = encode_parts([bytearray(b"ab"), memoryview(b"cd"), zmq.Frame(b"ef"), b"gh"])
    assert data == b"\x02ab\x02cd\x02ef\x02gh"
    assert encode_parts(iter([b"x"])) == b"\x01x"
    with pytest.raises(TypeError):
        encode_parts(["text"])


def test_encode_decode_empty() -> None:
    assert encode_parts([]) == b""
    assert decode_parts(b"") == []
    assert encode_parts([b"", b"", b""]) == b"\x00\x00\x00"
    assert decode_parts(b"\x00\x00\x00") == [b"", b"", b""]
    assert all(type(part) is bytes for part in decode_parts(b"\x01a\x00\x02bc"))


@pytest.mark.parametrize(
    "data",
    [
        b"\x01",
        b"\x05abc",
        b"\x00\x02a",
        b"\xff",
        b"\xff\x00\x00\x01",
        b"\x01a\xff\x00\x00",
        b"\xff\x00\x00\x01\x00" + b"x" * 255,
    ],
)
def test_decode_parts_malformed(data: bytes) -> None:
    with pytest.raises(MalformedError):
        decode_parts(data)
    with pytest.raises(ValueError):
        decode_parts(data)
    with pytest.raises(ZioError):
        decode_parts(data)


def test_decode_parts_not_bytes() -> None:
    with pytest.raises(MalformedError):
        decode_parts("text")  # type: ignore[arg-type]


def test_encode_parts_too_large() -> None:
    try:
        huge = mmap.mmap(-1, 2**32)  # sparse, never touched: costs no real memory
    except (OSError, OverflowError, ValueError, MemoryError):
        pytest.skip("cannot map 4 GiB of address space here")
    try:
        with pytest.raises(ConfigurationError, match="2\\*\\*32"):
            encode_parts([huge])
    finally:
        huge.close()


@given(parts_strategy)
def test_parts_roundtrip(parts: list[bytes]) -> None:
    data = encode_parts(parts)
    assert decode_parts(data) == parts
    assert len(data) == sum(len(p) + (1 if len(p) < 255 else 5) for p in parts)


def test_decode_accepts_a_short_part_in_the_long_form() -> None:
    # CZMQ and cppzmq decoders accept it; their encoders (and ours) write the short form
    assert decode_parts(b"\xff\x00\x00\x00\x05hello\x00") == [b"hello", b""]
    assert encode_parts([b"hello", b""]) == b"\x05hello\x00"


@given(st.binary(max_size=600))
def test_decode_random_bytes(data: bytes) -> None:
    try:
        parts = decode_parts(data)
    except MalformedError:
        return
    assert decode_parts(encode_parts(parts)) == parts
    assert len(encode_parts(parts)) <= len(data)


@given(parts_strategy, st.data())
def test_decode_truncated(parts: list[bytes], data: st.DataObject) -> None:
    encoded = encode_parts(parts)
    if not encoded:
        return
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    try:
        decoded = decode_parts(encoded[:cut])
    except MalformedError:
        return
    # A cut on a part boundary is a valid, shorter message.
    assert decoded == parts[: len(decoded)]


# ---------------------------------------------------------------------------------------------
# Message


def test_message_known_bytes() -> None:
    msg = known_message()
    assert msg.toparts() == [b"ZIO4TEXThi", KNOWN_COORD, b"x"]
    assert bytes(msg.prefix) == b"ZIO4TEXThi"
    assert bytes(msg.coord) == KNOWN_COORD
    assert msg.encode() == b"\x0aZIO4TEXThi" + b"\x18" + KNOWN_COORD + b"\x01x"
    assert str(msg) == 'zio.Message: "ZIO4TEXThi" + [0x1,2,3] + [1]'
    assert "TEXT" in repr(msg)


def test_message_defaults() -> None:
    msg = Message()
    assert msg.level is MessageLevel.undefined
    assert msg.form == "    "
    assert msg.label == ""
    assert msg.label_object == {}
    assert (msg.origin, msg.granule, msg.seqno) == (0, 0, 0)
    assert msg.routing_id == 0
    assert msg.payload == []
    assert msg.toparts() == [b"ZIO0    ", bytes(24)]
    assert str(msg) == 'zio.Message: "ZIO0    " + [0x0,0,0] + [0]'


def test_message_cascade_parts_then_label() -> None:
    parts = known_message().toparts()
    msg = Message(parts=parts, label="override")
    assert msg.label == "override"
    assert msg.form == "TEXT"
    assert msg.level == MessageLevel.info
    assert msg.coord == CoordHeader(1, 2, 3)
    assert msg.payload == [b"x"]


def test_message_cascade_order() -> None:
    encoded = known_message().encode()
    msg = Message(
        encoded=encoded,
        payload=[b"new"],
        prefix=PrefixHeader(1, "FORM", "prefix-label"),
        coord=CoordHeader(7, 8, 9),
        level=MessageLevel.fatal,
        seqno=10,
    )
    assert msg.toparts() == [b"ZIO8FORMprefix-label", struct.pack("<QQQ", 7, 8, 10), b"new"]

    # parts beat encoded, which beats frame
    other = Message(level=2, payload=[b"p"]).toparts()
    msg = Message(frame=zmq.Frame(encoded), encoded=encoded, parts=other)
    assert msg.toparts() == other
    msg = Message(frame=zmq.Frame(encoded), encoded=Message(seqno=5).encode())
    assert msg.seqno == 5 and msg.payload == []

    # the label beats label_object, form and level beat prefix
    msg = Message(prefix=b"ZIO3ABCDxyz", label_object={"a": 1}, label="plain", form="Q")
    assert bytes(msg.prefix) == b"ZIO3Q   plain"
    msg = Message(label_object={"a": [1, 2]}, origin=3, coord=KNOWN_COORD)
    assert msg.label_object == {"a": [1, 2]}
    assert msg.coord == CoordHeader(3, 2, 3)


def test_message_from_frame() -> None:
    original = known_message()
    msg = Message(frame=zmq.Frame(original.encode()))
    assert msg == original
    assert msg.routing_id == 0
    msg = Message(frame=original.encode(), routing_id=42)  # a plain buffer also works
    assert msg == original and msg.routing_id == 42


def test_message_over_a_socket() -> None:
    ctx = zmq.Context()
    a = ctx.socket(zmq.PAIR)
    b = ctx.socket(zmq.PAIR)
    try:
        a.bind("inproc://zio-test-message")
        b.connect("inproc://zio-test-message")
        original = known_message()
        original.payload = [b"one", b"", b"t" * 300]
        a.send_multipart(original.toparts())
        frames = b.recv_multipart(copy=False)
        received = Message(parts=frames)
        assert received == original
        assert [bytes(p) for p in received.payload] == [b"one", b"", b"t" * 300]
        a.send(original.encode())
        assert Message(frame=b.recv(copy=False)) == original
    finally:
        a.close(linger=0)
        b.close(linger=0)
        ctx.term()


def test_message_level_property() -> None:
    msg = Message()
    msg.level = 6
    assert msg.level is MessageLevel.warning
    msg.level = MessageLevel.debug
    assert msg.prefix.level is MessageLevel.debug
    for bad in (9, -1, "info", None, 2.0):
        with pytest.raises(ConfigurationError):
            msg.level = bad  # type: ignore[assignment]
    with pytest.raises(ConfigurationError):
        Message(level=100)
    with pytest.raises(ConfigurationError):
        Message(form="FIVES")


def test_message_label_object() -> None:
    msg = Message(label_object={"x": 1, "y": "two"})
    assert json.loads(msg.label) == {"x": 1, "y": "two"}
    assert msg.label_object == {"x": 1, "y": "two"}
    msg.label_object = [1, 2]
    assert msg.label == "[1, 2]"
    msg.label = "not json"
    with pytest.raises(MalformedError):
        msg.label_object
    with pytest.raises(ValueError):
        msg.label_object
    with pytest.raises(ConfigurationError):
        msg.label_object = {"x": object()}
    msg.label_object = None
    assert msg.label == "" and msg.label_object == {}


def test_message_payload_setter() -> None:
    msg = Message(payload=b"single")
    assert msg.payload == [b"single"]
    msg.payload = "text \u2603"
    assert msg.payload == ["text \u2603".encode()]
    msg.payload = [b"a", "b", bytearray(b"c"), memoryview(b"d")]
    assert [bytes(p) for p in msg.payload] == [b"a", b"b", b"c", b"d"]
    msg.payload = (p for p in [b"gen"])
    assert msg.payload == [b"gen"]
    msg.payload = None
    assert msg.payload == []
    for bad in (42, [b"ok", 3], [None]):
        with pytest.raises(ConfigurationError):
            msg.payload = bad  # type: ignore[assignment]


def test_message_payload_zero_copy() -> None:
    view = memoryview(b"abc")
    msg = Message(payload=[view])
    assert msg.payload[0] is view
    frame = zmq.Frame(b"frame-data")
    msg = Message(payload=[frame, b"x"])
    assert bytes(msg.payload[0]) == b"frame-data"
    assert memoryview(msg.payload[0])  # bytes-like
    msg = Message(payload=frame)
    assert len(msg.payload) == 1
    assert msg.toparts()[2:] == [b"frame-data"]
    assert msg.encode() == Message(payload=[b"frame-data"]).encode()


def test_message_routing_id() -> None:
    msg = Message(routing_id=5)
    assert msg.routing_id == 5
    msg.routing_id = b"identity"
    assert msg.routing_id == b"identity"
    msg.routing_id = None
    assert msg.routing_id == 0
    for bad in (-1, 2**32, "id", True):
        with pytest.raises(ConfigurationError):
            msg.routing_id = bad  # type: ignore[assignment]


def test_message_headers_setters() -> None:
    msg = Message()
    msg.prefix = "ZIO5ABCDlbl"
    assert msg.level is MessageLevel.summary and msg.label == "lbl"
    msg.prefix = b"ZIO1    "
    assert msg.level is MessageLevel.trace
    header = PrefixHeader(2, "XY", "z")
    msg.prefix = header
    header.label = "changed"  # the message keeps its own copy
    assert msg.label == "z"
    msg.prefix.label = "live"  # but the getter gives the live header
    assert msg.label == "live"
    msg.coord = KNOWN_COORD
    assert (msg.origin, msg.granule, msg.seqno) == (1, 2, 3)
    msg.granule = 20
    assert msg.coord.granule == 20
    with pytest.raises(MalformedError):
        msg.coord = b"short"
    with pytest.raises(MalformedError):
        msg.prefix = b"nope"
    with pytest.raises(ConfigurationError):
        msg.prefix = 4  # type: ignore[assignment]
    with pytest.raises(ConfigurationError):
        msg.coord = 4  # type: ignore[assignment]
    with pytest.raises(ConfigurationError):
        msg.origin = -5


def test_message_equality() -> None:
    a = known_message()
    b = Message(parts=a.toparts(), routing_id=99)
    assert a == b  # routing id is ignored
    b.payload = [memoryview(b"x")]
    assert a == b
    b.payload = [b"y"]
    assert a != b
    b.payload = [b"x", b""]
    assert a != b
    b = Message(parts=a.toparts(), seqno=4)
    assert a != b
    b = Message(parts=a.toparts(), label="other")
    assert a != b
    assert a != a.toparts()


@pytest.mark.parametrize(
    "parts",
    [
        [],
        [b"ZIO4TEXT"],
        [b"ZIX4TEXT", bytes(24)],
        [b"ZIO4TEXT", bytes(23)],
        [b"ZIO4TEXT", bytes(25), b"payload"],
    ],
)
def test_message_malformed_parts(parts: list[bytes]) -> None:
    with pytest.raises(MalformedError):
        Message(parts=parts)
    msg = known_message()
    with pytest.raises(ValueError):
        msg.fromparts(parts)
    assert msg == known_message()  # unchanged on failure


@pytest.mark.parametrize(
    "encoded",
    [
        b"\x05ZIO",  # truncated
        b"\x08ZIO4TEXT",  # only one part
        b"\x08ZIO4TEXT\x17" + bytes(23),  # short coord
        b"\x08ZIO9TEXT\x18" + bytes(24),  # bad level
    ],
)
def test_message_malformed_encoded(encoded: bytes) -> None:
    with pytest.raises(MalformedError):
        Message(encoded=encoded)
    with pytest.raises(MalformedError):
        Message(frame=zmq.Frame(encoded))
    with pytest.raises(MalformedError):
        Message().decode(encoded)


@settings(deadline=None)
@given(messages())
def test_message_roundtrips(msg: Message) -> None:
    parts = msg.toparts()
    assert Message(parts=parts) == msg
    again = Message()
    again.fromparts(parts)
    assert again == msg
    assert again.toparts() == parts
    encoded = msg.encode()
    assert encoded == encode_parts(parts)
    decoded = Message(encoded=encoded)
    assert decoded == msg
    assert decoded.encode() == encoded
    assert Message(frame=zmq.Frame(encoded)) == msg


@given(st.binary(max_size=200))
def test_message_decode_random_bytes(data: bytes) -> None:
    try:
        msg = Message(encoded=data)
    except MalformedError:
        return
    assert msg.encode() == data


# ---------------------------------------------------------------------------------------------
# received messages keep their header bytes until a header is asked for (issue 13)


def test_decoded_headers_are_live_objects_of_the_message_alone():
    parts = known_message().toparts()
    first, second = Message(parts=parts), Message(parts=parts)
    assert first.toparts() == parts  # the received bytes go out again as they came
    first.prefix.label = "changed"
    first.coord.seqno = 99
    assert (first.label, first.seqno) == ("changed", 99)
    assert first.toparts()[:2] == [b"ZIO4TEXTchanged", struct.pack("<QQQ", 1, 2, 99)]
    assert (second.label, second.seqno, second.toparts()) == ("hi", 3, parts)  # not shared
    assert Message(parts=parts).prefix is not Message(parts=parts).prefix


def test_decoding_validates_at_once_whatever_is_asked_later():
    good = known_message().toparts()
    with pytest.raises(MalformedError):
        Message(parts=[b"ZIO4TEXT\xff", good[1]])
    with pytest.raises(MalformedError):
        Message(parts=[good[0], good[1][:23]])
    with pytest.raises(MalformedError):
        Message(encoded=encode_parts([good[0], good[1] + b"x"]))
    long_label = "x" * 2000  # too long for the cache of prefixes: parsed at once
    msg = Message(parts=[b"ZIO4TEXT" + long_label.encode(), good[1], b"p"])
    assert (msg.level, msg.form, msg.label, msg.origin) == (MessageLevel.info, "TEXT", long_label, 1)


def test_new_and_decoded_messages_give_the_same_headers_as_before():
    assert Message().toparts() == [bytes(PrefixHeader()), bytes(CoordHeader())]
    msg = Message(encoded=known_message().encode(), seqno=7, form="DATA")
    assert (msg.level, msg.form, msg.label, msg.origin, msg.granule, msg.seqno) == (4, "DATA", "hi", 1, 2, 7)
    assert Message(parts=[memoryview(p) for p in known_message().toparts()]) == known_message()
    assert Message(parts=iter(known_message().toparts())) == known_message()
