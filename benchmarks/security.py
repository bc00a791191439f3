"""Issue 12: what CURVE trust costs.

- Port PUSH/PULL 100 B and 100 kB with CURVE against raw pyzmq sockets with the same CURVE
  keys (same ZAP handler, same options), measured exactly as ``throughput`` measures the
  plain ports (interleaved batches, alternating rounds, best round; median in the JSON).
- Discovery enter with security on against off: an observer node runs; a new node starts
  in another process and the time until the observer has it is taken, as the discovery
  section measures enter (with security on that includes the proof of the key). Beacon
  and mdns, on loopback; needs the private network namespace (``python -m benchmarks``).
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


def _child_env(keys: _Keys | None, who: str) -> dict[str, str]:
    """A node process's environment: security on through ``$ZIO_CERT``/``$ZIO_TRUSTED``, or off."""
    if keys is None:
        return {"ZIO_CERT": "", "ZIO_TRUSTED": ""}
    return {"ZIO_CERT": os.path.join(keys.root, f"{who}.key_secret"), "ZIO_TRUSTED": os.path.join(keys.root, "trusted")}


def discovery_enter(quick: bool, kinds: tuple[str, ...] = ("beacon", "mdns")) -> dict[str, dict]:
    """Median enter time per backend with security off and on, runs alternating.

    Nodes run in ``benchmarks._node`` processes, as the discovery section measures enter:
    an observer runs; a subject process creates a node on command; the time is from just
    before that creation to the observer's ENTER for its UUID (stamps of one clock in two
    processes). An observer and a subject with security on (``$ZIO_CERT``, ``$ZIO_TRUSTED``:
    two keys that trust each other) and a pair with it off take turns, each pair on its own
    beacon port. With security on the time includes the proof of the key (beacon: the two
    mailbox connections' CURVE handshakes and ZAP decisions; mdns: the liveness handshake).
    """
    from .discovery import enter_and_leave, fresh_port
    from .procs import Child

    reps = 7 if quick else 21
    keys = _Keys()
    results: dict[str, dict] = {}
    try:
        for kind in kinds:
            try:
                zio.make_backend(kind).stop()
            except zio.ZioError as err:
                results[kind] = {"error": str(err)}
                continue
            pairs: dict[str, tuple[Child, Child]] = {}
            times: dict[str, list[float | None]] = {"off": [], "on": []}
            made: dict[str, list[float]] = {"off": [], "on": []}  # the subject's node creation
            try:
                for mode in ("off", "on"):
                    port = fresh_port()
                    on = keys if mode == "on" else None
                    pairs[mode] = (Child(["observer", kind, port, f"old-{mode}"], env=_child_env(on, "rx")),
                                   Child(["subject", kind, port, f"new-{mode}"], env=_child_env(on, "tx")))
                for observer, subject in pairs.values():
                    if observer.expect("ready", 30) is None or subject.expect("ready", 30) is None:
                        raise RuntimeError(f"{kind}: node processes did not start")
                time.sleep(0.5)  # the observers are settled (first beacons, mDNS probing)
                for i in range(-1, reps):  # -1: a first node per pair, not timed (lazy imports)
                    for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
                        observer, subject = pairs[mode]
                        started, enter, _ = enter_and_leave(kind, observer, subject, 5.0, 5.0)
                        if i >= 0:
                            times[mode].append(enter)
                            made[mode].append(started["t"] - started["t0"])
                        time.sleep(0.3)  # the observer has settled again
            finally:
                for pair in pairs.values():
                    for child in pair:
                        child.close()
            good_off = [t for t in times["off"] if t is not None]
            good_on = [t for t in times["on"] if t is not None]
            results[kind] = {
                "off_median": statistics.median(good_off) if good_off else None,
                "on_median": statistics.median(good_on) if good_on else None,
                "off_all": times["off"], "on_all": times["on"], "runs": reps,
                "off_made_median": statistics.median(made["off"]), "on_made_median": statistics.median(made["on"]),
            }
    finally:
        keys.close()
    return results


if __name__ == "__main__":
    import sys

    for row in curve_throughput("--quick" in sys.argv):
        print(f"CURVE {row['pattern']} {row['size']:7} zio {row['zio_best']:9.0f}  raw {row['raw_best']:9.0f}  "
              f"ratio {row['ratio']:.2f} (median {row['ratio_median']:.2f})")
