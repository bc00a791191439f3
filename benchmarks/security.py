"""Issue 12: what CURVE trust costs.

- Port PUSH/PULL 100 B and 100 kB with CURVE against raw pyzmq sockets with the same CURVE
  keys (same ZAP handler, same options), measured exactly as ``throughput`` measures the
  plain ports (interleaved batches, alternating rounds, best round; median in the JSON).
- Discovery enter with security on against off: one Peer runs; a new Peer starts and the
  time until the running one has it in its table is taken (with security on that includes
  the proof: a CURVE handshake with the newcomer's proof socket). Beacon and mdns, in one
  process on loopback; needs the private network namespace (``python -m benchmarks``).
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time

import zmq

import zio
from zio.security import write_certificates

from .throughput import SIZES, _pool, _Raw, _raw_socket, _timed, _wait_connected, _Zio


class _Keys:
    """Two certificates trusted by each other, in a temporary directory."""

    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="zio-bench-keys-")
        trusted = os.path.join(self.root, "trusted")
        for name in ("rx", "tx"):
            _, _ = write_certificates(self.root, name)
            os.makedirs(trusted, exist_ok=True)
            shutil.copy(os.path.join(self.root, f"{name}.key"), trusted)
        self.rx = zio.Security(os.path.join(self.root, "rx.key_secret"), trusted)
        self.tx = zio.Security(os.path.join(self.root, "tx.key_secret"), trusted)

    def close(self) -> None:
        self.rx.close()
        self.tx.close()
        shutil.rmtree(self.root, ignore_errors=True)


class _RawCurve(_Raw):
    """Raw pyzmq PUSH/PULL with the same CURVE keys and ZAP handler as the zio ports."""

    def __init__(self, pattern: str, pool: list[zio.Message], keys: _Keys):
        ctx = zmq.Context.instance()
        self.pattern = pattern
        self.tx = _raw_socket(ctx, zmq.PUSH)
        self.rx = _raw_socket(ctx, zmq.PULL)
        keys.rx.apply_server(self.rx)
        self.rx.bind("tcp://127.0.0.1:*")
        keys.tx.apply_client(self.tx, keys.rx.public_key)
        self.tx.connect(self.rx.getsockopt_string(zmq.LAST_ENDPOINT))
        self.pool = [m.toparts() for m in pool]
        self.rx_poll = lambda ms: bool(self.rx.poll(ms))
        _wait_connected(lambda: self.tx.send_multipart(self.pool[0]), self.rx_poll, self._drain)


class _ZioCurve(_Zio):
    """zio PUSH/PULL ports with security on (a direct connect with the server key)."""

    def __init__(self, pattern: str, pool: list[zio.Message], keys: _Keys):
        self.pattern = pattern
        self.pool = pool
        self.rx = zio.Port("rx", zmq.PULL, security=keys.rx)
        self.tx = zio.Port("tx", zmq.PUSH, security=keys.tx)
        self.rx.bind()
        address = self.rx.do_binds()["zio.port.rx.address"]
        self.rx.online()
        self.tx.connect(address, server_key=keys.rx.public_key)
        self.tx.online()
        _wait_connected(lambda: self.tx.send(pool[0]), lambda ms: self.rx.recv(ms) is not None, self._drain)


def curve_throughput(quick: bool) -> list[dict]:
    """PUSH/PULL rates with CURVE, zio against raw pyzmq."""
    seconds, repeats = (0.08, 6) if quick else (0.15, 12)
    keys = _Keys()
    results = []
    try:
        for label, size in SIZES.items():
            pool = _pool(size)
            raw, port = _RawCurve("PUSH/PULL", pool, keys), _ZioCurve("PUSH/PULL", pool, keys)
            try:
                for side in (raw, port):
                    _timed(side, min(0.1, seconds))
                raw_rates, zio_rates = [], []
                for i in range(repeats):
                    for side in ((raw, port) if i % 2 == 0 else (port, raw)):
                        (raw_rates if side is raw else zio_rates).append(_timed(side, seconds))
            finally:
                raw.close()
                port.close()
            results.append({
                "pattern": "PUSH/PULL", "size": label, "size_bytes": size,
                "raw_best": max(raw_rates), "zio_best": max(zio_rates),
                "raw_median": statistics.median(raw_rates), "zio_median": statistics.median(zio_rates),
                "ratio": max(zio_rates) / max(raw_rates),
                "ratio_median": statistics.median(zio_rates) / statistics.median(raw_rates),
            })
    finally:
        keys.close()
    return results


def _enter_once(kind: str, security_for, nick: str) -> float | None:
    """Seconds from a newcomer's start until the running peer has it (None: not within 5 s)."""
    with zio.Peer("old", discovery=kind, security=security_for("rx")) as old:
        time.sleep(0.3)  # the running peer is settled
        started = time.perf_counter()
        with zio.Peer(nick, discovery=kind, security=security_for("tx")) as new:
            seen = old.waituntil(new.uuid, 5000)
            took = time.perf_counter() - started
        return took if seen is not None else None


def discovery_enter(quick: bool, kinds: tuple[str, ...] = ("beacon", "mdns")) -> dict[str, dict]:
    """Median enter time per backend with security off and on (alternating runs)."""
    reps = 5 if quick else 15
    os.environ.setdefault("ZIO_INTERFACE", "localhost")
    keys = _Keys()
    results: dict[str, dict] = {}
    try:
        for kind in kinds:
            try:
                zio.make_backend(kind).stop()
            except zio.ZioError as err:
                results[kind] = {"error": str(err)}
                continue
            off: list[float | None] = []
            on: list[float | None] = []
            for i in range(reps):
                off.append(_enter_once(kind, lambda _: False, f"new-off-{i}"))
                on.append(_enter_once(kind, lambda who: getattr(keys, who), f"new-on-{i}"))
            good_off = [t for t in off if t is not None]
            good_on = [t for t in on if t is not None]
            results[kind] = {
                "off_median": statistics.median(good_off) if good_off else None,
                "on_median": statistics.median(good_on) if good_on else None,
                "off_all": off, "on_all": on, "runs": reps,
            }
    finally:
        keys.close()
    return results


if __name__ == "__main__":
    import sys

    for row in curve_throughput("--quick" in sys.argv):
        print(f"CURVE {row['pattern']} {row['size']:7} zio {row['zio_best']:9.0f}  raw {row['raw_best']:9.0f}  "
              f"ratio {row['ratio']:.2f} (median {row['ratio_median']:.2f})")
