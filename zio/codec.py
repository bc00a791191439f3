"""The CZMQ ``zmsg_encode`` / cppzmq multipart encoding: several parts in one frame.

Each part is preceded by its length: one byte when it is shorter than 255 bytes, else the
byte ``0xFF`` followed by the length as a big-endian ``uint32``. Single-frame sockets
(CLIENT, SERVER and the other draft types, and their stand-ins) carry messages this way.
"""
from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, Union

from .errors import ConfigurationError, MalformedError

__all__ = ["BytesLike", "encode_parts", "decode_parts"]

#: Anything exposing the buffer protocol: bytes, bytearray, memoryview, zmq.Frame...
BytesLike = Union[bytes, bytearray, memoryview]

_UINT32_MAX = 2**32 - 1
_LONG_LENGTH = struct.Struct(">BI")
_UINT32_BE = struct.Struct(">I")
#: Length prefixes of the parts shorter than 255 bytes, computed once (immutable).
_SHORT_LENGTHS: tuple[bytes, ...] = tuple(bytes((n,)) for n in range(255))


def _buffer(data: Any) -> memoryview:
    """Return a flat byte view of ``data`` (any buffer-protocol object), without copying."""
    if type(data) is memoryview and data.format == "B" and data.ndim == 1:
        return data
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"expected a bytes-like object, got {type(data).__name__}") from None
    if view.format == "B" and view.ndim == 1:
        return view
    if view.c_contiguous:
        return view.cast("B")
    return memoryview(view.tobytes())


def _to_bytes(data: Any) -> bytes:
    """Return ``data`` (any buffer-protocol object) as ``bytes``; no copy when it already is."""
    if type(data) is bytes:
        return data
    return _buffer(data).tobytes()


def encode_parts(parts: Iterable[BytesLike]) -> bytes:
    """Join ``parts`` into one buffer with the CZMQ ``zmsg_encode`` / cppzmq encoding.

    Each part is preceded by its length: one byte when shorter than 255 bytes, else ``0xFF``
    and the big-endian uint32 length. A part of 2**32 bytes or more is a ConfigurationError.
    """
    chunks: list[Any] = []
    append = chunks.append
    short = _SHORT_LENGTHS
    pack_long = _LONG_LENGTH.pack
    for part in parts:
        if type(part) is not bytes:
            try:
                part = _buffer(part)
            except TypeError as err:
                raise TypeError(f"encode_parts: {err}") from None
        size = len(part)
        if size < 255:
            append(short[size])
        elif size <= _UINT32_MAX:
            append(pack_long(0xFF, size))
        else:
            raise ConfigurationError(f"message part of {size} bytes exceeds the 2**32-1 limit")
        append(part)
    return b"".join(chunks)


def decode_parts(data: BytesLike) -> list[bytes]:
    """Split a buffer made by :func:`encode_parts` (or CZMQ/cppzmq) back into its parts.

    Raises MalformedError when a length runs past the end of the data or a ``0xFF`` marker
    is not followed by 4 length bytes. Like CZMQ and cppzmq, it accepts a short part written
    in the long form (encoders never write one; re-encoding then gives the short form).
    """
    return _decode_parts(data, None)


def _decode_parts(data: BytesLike, views_from: int | None) -> list[Any]:
    """:func:`decode_parts`; parts of ``views_from`` bytes or more (if not None) are returned
    as memoryviews into ``data`` instead of copies."""
    if type(data) is bytes and views_from is None:
        return _decode_bytes(data)
    try:
        view = _buffer(data)
    except TypeError as err:
        raise MalformedError(f"encoded message must be bytes-like: {err}") from None
    if views_from is not None and len(view) < views_from:
        return _decode_bytes(view.tobytes())  # no part can be a view: one copy, then slices
    total = len(view)
    unpack_u32 = _UINT32_BE.unpack_from
    parts: list[bytes | memoryview] = []
    append = parts.append
    pos = 0
    while pos < total:
        size = view[pos]
        pos += 1
        if size == 0xFF:
            if total - pos < 4:
                raise MalformedError(
                    f"truncated encoded message: long length marker at offset {pos - 1} "
                    f"followed by {total - pos} bytes instead of 4"
                )
            (size,) = unpack_u32(view, pos)  # a short part in the long form is accepted too
            pos += 4
        end = pos + size
        if end > total:
            raise MalformedError(
                f"truncated encoded message: part {len(parts)} claims {size} bytes "
                f"but only {total - pos} remain"
            )
        if views_from is not None and size >= views_from:
            append(view[pos:end])
        else:
            append(view[pos:end].tobytes())
        pos = end
    return parts


def _decode_bytes(data: bytes) -> list[bytes]:
    """:func:`decode_parts` of ``bytes``: slicing bytes makes each part in one step."""
    total = len(data)
    parts: list[bytes] = []
    append = parts.append
    pos = 0
    while pos < total:
        size = data[pos]
        pos += 1
        if size == 0xFF:
            if total - pos < 4:
                raise MalformedError(
                    f"truncated encoded message: long length marker at offset {pos - 1} "
                    f"followed by {total - pos} bytes instead of 4"
                )
            (size,) = _UINT32_BE.unpack_from(data, pos)  # a short part in the long form too
            pos += 4
        end = pos + size
        if end > total:
            raise MalformedError(
                f"truncated encoded message: part {len(parts)} claims {size} bytes "
                f"but only {total - pos} remain"
            )
        append(data[pos:end])
        pos = end
    return parts
