"""Port send+recv rates against raw pyzmq, one process, TCP loopback.

Design, applied identically to zio and to raw pyzmq:

- one process, one thread, one shared ``zmq.Context.instance()``; the receiving side binds
  ``tcp://127.0.0.1:*``, the sending side connects;
- the same socket options (zio sets IMMEDIATE on PUSH/DEALER and ROUTER_MANDATORY on ROUTER:
  the raw sockets get them too);
- interleaved batches: send ``BATCH`` messages, then receive them (below every high-water
  mark, so nothing is dropped or blocks); for DEALER/ROUTER and CLIENT/SERVER every received
  request is answered and the answers are received too, so both directions (and the routing
  id path) are exercised; every message received counts;
- the same three parts: prefix (``ZIO4FLOW`` + a small JSON label), the 24-byte coord and
  one payload of 100 B or 100 kB. A batch sends ``BATCH`` different messages with
  different payload buffers (10 MB for 100 kB payloads), so that no side profits from
  sending one cache-hot buffer over and over. The raw side sends prebuilt frame lists with
  plain ``send_multipart`` / ``recv_multipart`` (default ``copy=True``), as a user would
  write it; the zio side sends the same prebuilt messages as ``zio.Message`` objects with
  ``Port.send`` and gets a new ``zio.Message`` from ``Port.recv`` each time;
- each (pattern, size) runs ``repeats`` rounds of every side (zio, raw and, for PUSH/PULL,
  tuned), in an order that rotates from one repeat to the next; a round lasts at least
  ``seconds``; the best round of each side is reported (noise only slows), the median too
  (in the JSON), and the median of the per-repeat ratios (rounds run next to each other
  share the machine's load of the moment). The zio/tuned target is judged on that paired
  median: on a shared 2-core machine one side's lucky round moves the best-against-best
  ratio by 20 % or more from one run to the next (tuned's rounds ranged 75-130 k msg/s
  within one row of STOP14), the paired median much less; many short rounds serve it
  better than a few long ones.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable

import zmq

import zio
import zio.port
from zio import _shortpath

BATCH = 100
SIZES = {"100 B": 100, "100 kB": 100_000}
PATTERNS = ["PUSH/PULL", "DEALER/ROUTER", "CLIENT/SERVER", "PUB/SUB"]


def _message(size: int, seqno: int = 1) -> zio.Message:
    payload = bytes([seqno % 256]) * size  # a buffer of its own
    return zio.Message(level=zio.MessageLevel.info, form="FLOW", label='{"flow":"DAT"}',
                       origin=42, granule=7, seqno=seqno, payload=payload)


def _pool(size: int) -> list[zio.Message]:
    """BATCH different messages (one payload buffer each)."""
    return [_message(size, i) for i in range(BATCH)]


def _raw_socket(ctx: zmq.Context, kind: int) -> zmq.Socket:
    sock = ctx.socket(kind)
    if kind == zmq.ROUTER:
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    if kind in (zmq.PUSH, zmq.DEALER, zmq.REQ):
        sock.setsockopt(zmq.IMMEDIATE, 1)
    return sock


def _wait_connected(send_once: Callable[[], None], poll_in: Callable[[int], bool], drain: Callable[[], None]) -> None:
    """Send until the receiving side gets something (PUB/SUB subscriptions, connects), then drain."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        send_once()
        if poll_in(50):
            time.sleep(0.05)
            drain()
            return
    raise RuntimeError("benchmark sockets did not connect within 5 s")


class _Raw:
    """The raw pyzmq side of one pattern."""

    def __init__(self, pattern: str, pool: list[zio.Message]):
        ctx = zmq.Context.instance()
        self.pattern = pattern
        kinds = {
            "PUSH/PULL": (zmq.PUSH, zmq.PULL),
            "PUB/SUB": (zmq.PUB, zmq.SUB),
            "DEALER/ROUTER": (zmq.DEALER, zmq.ROUTER),
            "CLIENT/SERVER": (zmq.DEALER, zmq.ROUTER),  # the anchor of the emulation
        }[pattern]
        self.tx = _raw_socket(ctx, kinds[0])
        self.rx = _raw_socket(ctx, kinds[1])
        if pattern == "PUB/SUB":
            self.rx.setsockopt(zmq.SUBSCRIBE, b"")
        self.rx.bind("tcp://127.0.0.1:*")
        self.tx.connect(self.rx.getsockopt_string(zmq.LAST_ENDPOINT))
        self.pool = [[b"", *m.toparts()] if kinds[0] == zmq.DEALER else m.toparts() for m in pool]
        self.rx_poll = lambda ms: bool(self.rx.poll(ms))
        _wait_connected(lambda: self.tx.send_multipart(self.pool[0]), self.rx_poll, self._drain)

    def _drain(self) -> None:
        while self.rx.poll(10):
            self.rx.recv_multipart()

    def round(self, batches: int) -> int:
        tx, rx, pool = self.tx, self.rx, self.pool
        send, recv = tx.send_multipart, rx.recv_multipart
        if self.pattern in ("DEALER/ROUTER", "CLIENT/SERVER"):
            reply, back = rx.send_multipart, tx.recv_multipart
            for _ in range(batches):
                for frames in pool:
                    send(frames)
                for _ in range(BATCH):
                    reply(recv())  # [routing id, b"", parts...] goes back as it came
                for _ in range(BATCH):
                    back()
            return 2 * BATCH * batches
        for _ in range(batches):
            for frames in pool:
                send(frames)
            for _ in range(BATCH):
                recv()
        return BATCH * batches

    def close(self) -> None:
        self.tx.close(0)
        self.rx.close(0)


class _RawTuned:
    """PUSH/PULL only: the fastest pyzmq code we know, the ceiling for zio's PUSH/PULL.

    One send per frame with the compiled send of pyzmq's base class
    (``zmq.backend.Socket.send``: ``zmq.Socket.send`` is a Python wrapper around it that
    costs as much as the send itself for small frames), frames of 64 kB or more sent
    without copying; ``recv(copy=False)`` per frame, following ``Frame.more``, small
    frames turned into bytes, large ones kept as memoryviews of the zmq message (reading
    ``RCVMORE`` with ``get`` after a copying ``recv`` costs more). The same tricks as
    zio's short path, without zio's work (its lock, checks and ``zio.Message``). zio's
    compiled short path makes the same pyzmq calls from C (no Python call, no argument
    parsing), which Python code cannot: that is how zio gets past this ceiling.
    """

    def __init__(self, pattern: str, pool: list[zio.Message]):
        ctx = zmq.Context.instance()
        self.tx = _raw_socket(ctx, zmq.PUSH)
        self.rx = _raw_socket(ctx, zmq.PULL)
        self.rx.bind("tcp://127.0.0.1:*")
        self.tx.connect(self.rx.getsockopt_string(zmq.LAST_ENDPOINT))
        self.pool = [m.toparts() for m in pool]
        _wait_connected(lambda: self.tx.send_multipart(self.pool[0]), lambda ms: bool(self.rx.poll(ms)), self._drain)

    def _drain(self) -> None:
        while self.rx.poll(10):
            self.rx.recv_multipart()

    def round(self, batches: int) -> int:
        tx, recv, pool = self.tx, self.rx.recv, self.pool
        send = zmq.backend.Socket.send
        more = int(zmq.SNDMORE)
        big = zmq.COPY_THRESHOLD
        for _ in range(batches):
            for frames in pool:
                send(tx, frames[0], more)
                send(tx, frames[1], more)
                send(tx, frames[2], 0, len(frames[2]) < big)
            for _ in range(BATCH):
                parts = []
                while True:
                    f = recv(0, False)
                    parts.append(f.bytes if len(f) < big else f.buffer)
                    if not f.more:
                        break
        return BATCH * batches

    def close(self) -> None:
        self.tx.close(0)
        self.rx.close(0)


class _Zio:
    """The zio side of one pattern."""

    def __init__(self, pattern: str, pool: list[zio.Message]):
        self.pattern = pattern
        self.pool = pool
        kinds = {
            "PUSH/PULL": (zmq.PUSH, zmq.PULL),
            "PUB/SUB": (zmq.PUB, zmq.SUB),
            "DEALER/ROUTER": (zmq.DEALER, zmq.ROUTER),
            "CLIENT/SERVER": (zmq.CLIENT, zmq.SERVER),
        }[pattern]
        self.rx = zio.Port("rx", kinds[1])
        self.tx = zio.Port("tx", kinds[0])
        if pattern == "PUB/SUB":
            self.rx.subscribe("")
        self.rx.bind()
        address = self.rx.do_binds()["zio.port.rx.address"]
        self.rx.online()
        self.tx.connect(address)
        self.tx.online()
        _wait_connected(lambda: self.tx.send(pool[0]), lambda ms: self.rx.recv(ms) is not None, self._drain)

    def _drain(self) -> None:
        while self.rx.recv(10) is not None:
            pass

    def round(self, batches: int) -> int:
        pool = self.pool
        send, recv = self.tx.send, self.rx.recv
        if self.pattern in ("DEALER/ROUTER", "CLIENT/SERVER"):
            reply, back = self.rx.send, self.tx.recv
            for _ in range(batches):
                for msg in pool:
                    send(msg)
                for _ in range(BATCH):
                    reply(recv())  # the received message carries its routing id back
                for _ in range(BATCH):
                    back()
            return 2 * BATCH * batches
        for _ in range(batches):
            for msg in pool:
                send(msg)
            for _ in range(BATCH):
                recv()
        return BATCH * batches

    def close(self) -> None:
        self.tx.close()
        self.rx.close()


def _timed(side, seconds: float) -> float:
    """Messages per second of one round lasting at least ``seconds``."""
    # let background work of the previous round finish first (pyzmq's zero-copy sends are
    # released by its garbage-collector thread, which would otherwise compete with this round)
    time.sleep(0.05)
    count = 0
    start = time.perf_counter()
    while True:
        count += side.round(4)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def _order(i: int, raw, port, tuned) -> list:
    """The sides' order in repeat ``i``: zio and tuned next to each other (their ratio is
    judged per repeat), each first in turn; raw before them, then after them. Over every
    four repeats zio and tuned each follow raw once: the round right after raw's copying
    sends of 100 kB runs slower, and an order that put zio there more often than tuned read
    PUSH/PULL 100 kB about 10 % low."""
    pair = [port] if tuned is None else ([port, tuned] if i % 2 == 0 else [tuned, port])
    return [raw, *pair] if (i // 2) % 2 == 0 else [*pair, raw]


def measure(pattern: str, size: int, seconds: float, repeats: int) -> dict:
    pool = _pool(size)
    raw = _Raw(pattern, pool)
    port = _Zio(pattern, pool)
    tuned = _RawTuned(pattern, pool) if pattern == "PUSH/PULL" else None
    tuned_rates: list[float] = []
    try:
        # warm up (caches, TCP windows, allocator)
        for side in (raw, port, tuned):
            if side is not None:
                _timed(side, min(0.1, seconds))
        raw_rates, zio_rates = [], []
        for i in range(repeats):
            for side in _order(i, raw, port, tuned):
                rates = raw_rates if side is raw else zio_rates if side is port else tuned_rates
                rates.append(_timed(side, seconds))
    finally:
        raw.close()
        port.close()
        if tuned is not None:
            tuned.close()
    return {
        "tuned_best": max(tuned_rates) if tuned_rates else None,
        "tuned_median": statistics.median(tuned_rates) if tuned_rates else None,
        "tuned_all": tuned_rates,
        "ratio_tuned": max(zio_rates) / max(tuned_rates) if tuned_rates else None,
        "ratio_tuned_paired": statistics.median(z / t for z, t in zip(zio_rates, tuned_rates)) if tuned_rates else None,
        "raw_best": max(raw_rates), "zio_best": max(zio_rates),
        "raw_median": statistics.median(raw_rates), "zio_median": statistics.median(zio_rates),
        "raw_all": raw_rates, "zio_all": zio_rates,
        "ratio": max(zio_rates) / max(raw_rates),
        "ratio_median": statistics.median(zio_rates) / statistics.median(raw_rates),
    }


def _as_pure_python(pattern: str, size: int, seconds: float, repeats: int) -> dict:
    """``measure`` in a new process with ZIO_PURE_PYTHON=1: zio's short path and its
    message storage run as Python, as an install without a C compiler has them (both
    are chosen when zio is imported, so this takes a process of its own)."""
    env = dict(os.environ, **{_shortpath.PURE_PYTHON_VARIABLE: "1"})
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import json, sys; from benchmarks import throughput as t; "
            "print(json.dumps(t.measure(*json.loads(sys.argv[1]))))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps([pattern, size, seconds, repeats])],
                         env=env, cwd=root, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"the pure-Python throughput run failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool, patterns: list[str] | None = None) -> list[dict]:
    """Every (pattern, size) with zio as installed (``short_path``: "compiled" where
    zio/_fastpath.py was built, else "python"); where it is compiled, PUSH/PULL 100 B once
    more as pure Python (what an install without a C compiler gets)."""
    seconds, repeats = (0.03, 20) if quick else (0.05, 40)
    as_built = "compiled" if zio.port._short.COMPILED else "python"
    results = []
    for pattern in patterns or PATTERNS:
        for label, size in SIZES.items():
            r = measure(pattern, size, seconds, repeats)
            r.update(pattern=pattern, size=label, size_bytes=size, short_path=as_built)
            results.append(r)
    if as_built == "compiled" and "PUSH/PULL" in (patterns or PATTERNS):
        r = _as_pure_python("PUSH/PULL", SIZES["100 B"], seconds, repeats)
        r.update(pattern="PUSH/PULL", size="100 B", size_bytes=SIZES["100 B"], short_path="python")
        results.append(r)
    return results


if __name__ == "__main__":
    # python -m benchmarks.throughput [--quick] [PATTERN...], e.g. PUSH/PULL
    for row in run("--quick" in sys.argv, [a for a in sys.argv[1:] if a in PATTERNS] or None):
        tuned = ""
        if row["tuned_best"]:
            tuned = (f"  tuned {row['tuned_best']:9.0f} zio/tuned {row['ratio_tuned']:.2f}"
                     f" (paired median {row['ratio_tuned_paired']:.2f})")
        print(f"{row['pattern']:14} {row['size']:7} {row['short_path']:8} zio {row['zio_best']:9.0f}  raw {row['raw_best']:9.0f}  "
              f"ratio {row['ratio']:.2f} (median {row['ratio_median']:.2f}){tuned}")
