"""zio.Message encode and decode rates (messages per second, one thread, no sockets).

- multipart encode: ``msg.seqno = n; msg.toparts()`` (what ``Port.send`` puts on
  multipart sockets; a new sequence number each time, as a stream would);
- multipart decode: ``zio.Message(parts=parts)`` (the public constructor; ``Port.recv``
  uses a faster private path);
- single-frame encode: ``msg.seqno = n; msg.encode()`` (CLIENT/SERVER frames, CZMQ encoding);
- single-frame decode: ``zio.Message(encoded=data)``.

The message is the one of the throughput benchmark: prefix ``ZIO4FLOW{"flow":"DAT"}``, a
coord, one 100-byte payload. The anchor is the bare struct work a hand-written codec
could not avoid: ``struct.pack``/``unpack`` of the coord plus one bytes concatenation
(encode) or slicing (decode).
"""
from __future__ import annotations

import struct
import time

import zio

_COORD = struct.Struct("<QQQ")


def _rate(fn, seconds: float, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        n = 0
        start = time.perf_counter()
        while True:
            for i in range(1000):
                fn(i)
            n += 1000
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        best = max(best, n / elapsed)
    return best


def run(quick: bool) -> list[dict]:
    seconds, repeats = (0.1, 3) if quick else (0.3, 5)
    msg = zio.Message(level=zio.MessageLevel.info, form="FLOW", label='{"flow":"DAT"}',
                      origin=42, granule=7, seqno=1, payload=b"x" * 100)
    parts = msg.toparts()
    encoded = msg.encode()
    prefix_text = b'ZIO4FLOW{"flow":"DAT"}'
    payload = b"x" * 100

    def anchor_encode(i):
        return [prefix_text, _COORD.pack(42, 7, i), payload]

    def encode_multipart(i):
        msg.seqno = i
        return msg.toparts()

    def encode_single(i):
        msg.seqno = i
        return msg.encode()

    def anchor_decode(i):
        p = parts[0]
        return (p[:3], p[3] - 48, p[4:8].decode("ascii"), p[8:].decode("utf-8"),
                _COORD.unpack(parts[1]), parts[2:])

    rows = [
        ("encode, multipart (seqno=n; toparts)", encode_multipart, anchor_encode),
        ("decode, multipart (Message(parts=))", lambda i: zio.Message(parts=parts), anchor_decode),
        ("encode, single frame (seqno=n; encode)", encode_single, anchor_encode),
        ("decode, single frame (Message(encoded=))", lambda i: zio.Message(encoded=encoded), anchor_decode),
    ]
    results = []
    for name, fn, anchor in rows:
        results.append({"what": name, "zio": _rate(fn, seconds, repeats), "anchor": _rate(anchor, seconds, repeats)})
    return results
