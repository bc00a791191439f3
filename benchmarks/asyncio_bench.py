"""zio.asyncio: Port throughput against raw zmq.asyncio, and the event loop's lag under churn.

Throughput (TCP on 127.0.0.1 only, no discovery): as ``throughput.py`` does for the sync
Port, in one event loop: PUSH/PULL, the same 100 B messages, batches of ``BATCH`` sends then
``BATCH`` receives (below the high-water marks), rounds alternating zio.asyncio and raw
``zmq.asyncio`` (``await send_multipart`` / ``await recv_multipart``, the same socket
options), the best round of each side reported (noise only slows), the medians too.

Loop lag (discovery; only inside the benchmark's private network namespace): one
``zio.asyncio`` node whose PULL port connects by name to every node called ``churn`` and
whose Peer's events are followed with ``async for``, while a child process
(``python -m benchmarks.asyncio_bench churn ...``) brings 20 such nodes (a bound PUSH port
each, one message sent by each) online and offline, round after round. A task of the loop
sleeps 1 ms over and over and records how late it wakes up: the lag is that lateness, i.e.
how long anything else held the loop (zio's work in it, or the GIL held by zio's
discovery threads). The events, resolved addresses and messages are counted, so the row
also says the port kept up.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time

import zmq
import zmq.asyncio

import zio
import zio.asyncio as zioa

from .throughput import BATCH, _pool

CHURN_NODES = 20
CHURN_NICK = "churn"


# -- throughput ----------------------------------------------------------------------
class _RawAsync:
    def __init__(self, pool: list[zio.Message]):
        ctx = zmq.asyncio.Context.instance()
        self.tx = ctx.socket(zmq.PUSH)
        self.tx.setsockopt(zmq.IMMEDIATE, 1)  # as zio's PUSH (and the sync benchmark's raw side)
        self.rx = ctx.socket(zmq.PULL)
        self.rx.bind("tcp://127.0.0.1:*")
        self.tx.connect(self.rx.getsockopt_string(zmq.LAST_ENDPOINT))
        self.pool = [m.toparts() for m in pool]

    async def ready(self) -> None:
        while True:
            await self.tx.send_multipart(self.pool[0])
            if await self.rx.poll(50):
                await asyncio.sleep(0.05)
                while await self.rx.poll(10):
                    await self.rx.recv_multipart()
                return

    async def round(self, batches: int) -> int:
        send, recv, pool = self.tx.send_multipart, self.rx.recv_multipart, self.pool
        for _ in range(batches):
            for frames in pool:
                await send(frames)
            for _ in range(BATCH):
                await recv()
        return BATCH * batches

    def close(self) -> None:
        self.tx.close(0)
        self.rx.close(0)


class _ZioAsync:
    def __init__(self, pool: list[zio.Message]):
        self.pool = pool
        self.rx = zioa.Port("rx", zmq.PULL)
        self.tx = zioa.Port("tx", zmq.PUSH)
        self.rx.bind()

    async def ready(self) -> None:
        await self.rx.online()
        self.tx.connect(self.rx.bound[0])
        await self.tx.online()
        while True:
            await self.tx.send(self.pool[0])
            if await self.rx.recv(50) is not None:
                await asyncio.sleep(0.05)
                while await self.rx.recv(10) is not None:
                    pass
                return

    async def round(self, batches: int) -> int:
        send, recv, pool = self.tx.send, self.rx.recv, self.pool
        for _ in range(batches):
            for msg in pool:
                await send(msg)
            for _ in range(BATCH):
                await recv()
        return BATCH * batches

    def close(self) -> None:
        self.tx.close()
        self.rx.close()


async def _timed(side: _RawAsync | _ZioAsync, seconds: float) -> float:
    await asyncio.sleep(0.05)
    count = 0
    start = time.perf_counter()
    while True:
        count += await side.round(4)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


async def _throughput(seconds: float, repeats: int) -> dict:
    pool = _pool(100)
    raw, port = _RawAsync(pool), _ZioAsync(pool)
    try:
        await raw.ready()
        await port.ready()
        for side in (raw, port):
            await _timed(side, min(0.1, seconds))
        raw_rates: list[float] = []
        zio_rates: list[float] = []
        for i in range(repeats):
            for side in ((raw, port) if i % 2 == 0 else (port, raw)):
                (raw_rates if side is raw else zio_rates).append(await _timed(side, seconds))
    finally:
        raw.close()
        port.close()
    return {
        "pattern": "PUSH/PULL", "size": "100 B", "size_bytes": 100,
        "raw_best": max(raw_rates), "zio_best": max(zio_rates),
        "raw_median": statistics.median(raw_rates), "zio_median": statistics.median(zio_rates),
        "raw_all": raw_rates, "zio_all": zio_rates,
        "ratio": max(zio_rates) / max(raw_rates),
        "ratio_median": statistics.median(zio_rates) / statistics.median(raw_rates),
    }


def throughput(quick: bool) -> dict:
    """zio.asyncio PUSH/PULL 100 B against raw zmq.asyncio, in one event loop."""
    seconds, repeats = (0.08, 6) if quick else (0.15, 12)
    return asyncio.run(_throughput(seconds, repeats))


# -- loop lag under churn --------------------------------------------------------------
async def _lag(kind: str, beacon_port: int, rounds: int) -> dict:
    """The lag with a zio.asyncio node following the churn (port, events, messages)."""
    async with zioa.Node("lag-watcher", discovery=kind) as node:
        port = node.port("in", zmq.PULL)
        port.connect(CHURN_NICK, "out")
        await node.online(timeout_ms=0)
        assert node.peer is not None
        return await _churn_lag(kind, beacon_port, rounds, node.peer, port)


async def _lag_anchor(kind: str, beacon_port: int, rounds: int) -> dict:
    """The anchor: the same loop and churn, followed by a sync zio.Node (same backend, a
    PULL port connected by name, a thread receiving): the lag zio's threads cause when no
    zio.asyncio object is involved."""
    import threading

    loop = asyncio.get_running_loop()
    received = 0
    done = threading.Event()

    def start() -> zio.Node:
        node = zio.Node("lag-watcher", discovery=kind)
        node.port("in", zmq.PULL).connect(CHURN_NICK, "out")
        node.online(timeout_ms=0)
        return node

    node = await loop.run_in_executor(None, start)

    def receive() -> None:
        nonlocal received
        while not done.is_set():
            if node.port("in").recv(50) is not None:
                received += 1

    receiver = threading.Thread(target=receive)
    receiver.start()
    try:
        result = await _churn_lag(kind, beacon_port, rounds, None, None)
    finally:
        done.set()
        await loop.run_in_executor(None, receiver.join)
        await loop.run_in_executor(None, node.close)
    result["messages"] = received
    return result


async def _churn_lag(kind: str, beacon_port: int, rounds: int, peer: zioa.Peer | None,
                     port: zioa.Port | None) -> dict:
    from . import procs

    lags: list[float] = []
    counts = {"enter": 0, "exit": 0, "messages": 0, "max_connected": 0}
    stop = asyncio.Event()

    async def sample() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.001)
            lags.append(loop.time() - before - 0.001)

    async def follow() -> None:
        assert peer is not None and port is not None
        async for event in peer.events():
            if event.peer.nick == CHURN_NICK and event.kind in counts:
                counts[event.kind] += 1
            counts["max_connected"] = max(counts["max_connected"], len(port.connected))

    async def receive() -> None:
        assert port is not None
        async for _ in port:
            counts["messages"] += 1

    tasks = [asyncio.create_task(f()) for f in (follow, receive)] if port is not None else []
    loop = asyncio.get_running_loop()
    child = procs.Child(["churn", kind, beacon_port, CHURN_NODES, rounds], module="benchmarks.asyncio_bench")
    try:
        ready = await loop.run_in_executor(None, child.expect, "ready", 30.0)
        if ready is None:
            raise RuntimeError("churn child did not start")
        sampler = asyncio.create_task(sample())
        started = time.monotonic()
        child.send("go")
        done = await loop.run_in_executor(None, child.expect, "done", 60.0 * rounds)
        if done is None:
            raise RuntimeError("churn child did not finish")
        await asyncio.sleep(0.5)  # the last exits
        elapsed = time.monotonic() - started
        stop.set()
        await sampler
    finally:
        child.close()
    for task in tasks:
        task.cancel()
    lags.sort()
    return {
        "kind": kind, "nodes": CHURN_NODES, "rounds": rounds, "elapsed_s": elapsed,
        "samples": len(lags), "lag_max": lags[-1], "lag_p99": lags[int(0.99 * (len(lags) - 1))],
        "lag_median": statistics.median(lags), "expected": CHURN_NODES * rounds,
        "sent": done.get("sent", 0), **counts,
    }


def loop_lag(kind: str, beacon_port: int, quick: bool) -> dict:
    """The event loop's lag while 20 peers join and leave, round after round (isolated only)."""
    saved = {k: os.environ.get(k) for k in ("ZIO_INTERFACE", "ZIO_BEACON_PORT")}
    os.environ["ZIO_INTERFACE"] = "localhost"
    os.environ["ZIO_BEACON_PORT"] = str(beacon_port)
    try:
        rounds = 2 if quick else 5
        result = asyncio.run(_lag(kind, beacon_port, rounds))
        anchor = asyncio.run(_lag_anchor(kind, beacon_port, rounds))
        result.update({f"anchor_{k}": anchor[k] for k in ("lag_max", "lag_p99", "lag_median", "samples", "messages",
                                                          "sent")})
        return result
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _churn(kind: str, beacon_port: int, count: int, rounds: int) -> None:
    """The child: ``count`` nodes named CHURN_NICK, each with a bound PUSH port "out", brought
    online together (each sends one message) and offline together, ``rounds`` times."""
    os.environ["ZIO_INTERFACE"] = "localhost"
    os.environ["ZIO_BEACON_PORT"] = str(beacon_port)
    nodes = []
    for _ in range(count):
        node = zio.Node(CHURN_NICK, discovery=kind)
        node.port("out", zmq.PUSH)
        nodes.append(node)
    print(json.dumps({"event": "ready", "t": time.monotonic()}), flush=True)
    sys.stdin.readline()  # "go"
    sent = 0
    for _ in range(rounds):
        for node in nodes:
            node.port("out").bind()
            node.online(timeout_ms=0)
        for node in nodes:
            try:
                node.port("out").send(zio.Message(form="TEXT", label="churn"), timeout_ms=3000)
                sent += 1
            except zio.PortTimeout:
                pass
        time.sleep(0.3)
        for node in nodes:
            node.offline()
        time.sleep(0.3)
    print(json.dumps({"event": "done", "t": time.monotonic(), "sent": sent}), flush=True)
    for node in nodes:
        node.close()


if __name__ == "__main__":
    from ._node import _refuse_host_network

    _refuse_host_network("benchmarks.asyncio_bench")  # first: nothing starts outside the namespace
    if sys.argv[1:2] != ["churn"] or len(sys.argv) != 6:
        raise SystemExit("usage: python -m benchmarks.asyncio_bench churn KIND PORT NODES ROUNDS")
    _churn(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    sys.stdout.flush()
    os._exit(0)
