"""Compare two etcd v3 client libraries for zio's etcd backend: ``etcd3gw`` and ``etcd-sdk-python``.

Run it isolated, from the repository root (it starts its own etcd on 127.0.0.1 in a
temporary data dir, with ``tests/etcd_support.py`` like the tests and ``python -m benchmarks``)::

    /work/shared/tools/isolated .venv/bin/python -m benchmarks.etcd_clients

It prints, per library: put -> watch event latency (median and p99 of 300 puts, one
process, loopback), whether a prefix watch delivers events after etcd is killed and
restarted on the same data dir and whether the library tells the program that the
stream broke, what a watch from a compacted revision does, how long a call to a dead
endpoint takes to fail, and the installed size of the library with its dependencies.
Also the lease TTL etcd grants when asked for 1 s (its minimum), and when it deletes the key.
It is not a section of ``python -m benchmarks``: it needs ``etcd3gw``, which zio does not use.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import queue
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from etcd_support import Member, free_port  # noqa: E402  (tests/etcd_support.py: the standard library only)


class Etcd:
    """One etcd member on 127.0.0.1 in ``data_dir``; start()/kill() keep the same dir and ports."""

    def __init__(self, data_dir: str):
        self.member = Member("m", data_dir)
        self.url = self.member.url

    def start(self) -> "Etcd":
        self.member.start().wait_healthy(10)
        return self

    def kill(self) -> None:
        self.member.kill()


def installed_size(dist: str, seen: set[str]) -> int:
    """Bytes of ``dist`` and its (non-optional) requirements not counted yet."""
    import re

    key = dist.lower().replace("_", "-")
    if key in seen:
        return 0
    seen.add(key)
    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError:
        return 0
    total = 0
    for f in d.files or []:
        p = d.locate_file(f)
        if os.path.isfile(p):
            total += os.path.getsize(p)
    for req in d.requires or []:
        if "extra ==" in req:
            continue
        total += installed_size(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0], seen)
    return total


# -- the two libraries behind one tiny interface ---------------------------------------------


class GW:
    name = "etcd3gw"

    def __init__(self, url: str, timeout: float = 2.0):
        import etcd3gw

        host, port = url.rsplit("/", 1)[1].split(":")
        self.c = etcd3gw.client(host=host, port=int(port), timeout=timeout)
        self.broke = threading.Event()

    def put(self, k, v):
        self.c.put(k, v)

    def compact_to_latest(self):
        rev = int(self.c.status()["header"]["revision"])
        self.c.post(self.c.get_url("/kv/compaction"), json={"revision": rev, "physical": True})
        return rev

    def watch(self, prefix, start_revision=None):
        from etcd3gw.utils import _increment_last_byte
        from etcd3gw.watch import Watcher

        q: queue.Queue = queue.Queue()
        w = Watcher(self.c, prefix, lambda ev: q.put(ev), range_end=_increment_last_byte(prefix),
                    start_revision=start_revision)
        # the library keeps the stream's future to itself: the only sign of a broken stream
        # would be the callback going quiet
        return q, w.stop


class SDK:
    name = "etcd-sdk-python"

    def __init__(self, url: str, timeout: float = 2.0):
        import pyetcd

        host, port = url.rsplit("/", 1)[1].split(":")
        self.c = pyetcd.client(host=host, port=int(port), timeout=timeout)

    def put(self, k, v):
        self.c.put(k, v)

    def compact_to_latest(self):
        rev = self.c.put("/cmp/x", "x").header.revision  # the kv revision, from a put
        self.c.compact(rev, physical=True)
        return rev

    def watch(self, prefix, start_revision=None):
        q: queue.Queue = queue.Queue()

        def cb(resp):
            if isinstance(resp, Exception):
                q.put(resp)
            else:
                for ev in resp.events:
                    q.put(ev)

        wid = self.c.add_watch_prefix_callback(prefix, cb, start_revision=start_revision)
        return q, lambda: self.c.cancel_watch(wid)


def drain_until(q: queue.Queue, timeout: float):
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        return None


def measure(lib_cls, tmp: str) -> dict:
    out: dict = {}
    etcd = Etcd(os.path.join(tmp, lib_cls.__name__)).start()
    try:
        lib = lib_cls(etcd.url)
        q, cancel = lib.watch("/lat/")
        lat = []
        for i in range(300):
            t0 = time.perf_counter()
            lib.put(f"/lat/{i % 10}", str(i))
            ev = drain_until(q, 5)
            assert ev is not None and not isinstance(ev, Exception), ev
            lat.append((time.perf_counter() - t0) * 1000)
        out["latency_ms"] = (statistics.median(lat), sorted(lat)[int(0.99 * len(lat))])
        cancel()

        # restart on the same data dir while a watch is open
        q, cancel = lib.watch("/rs/")
        lib.put("/rs/a", "1")
        assert drain_until(q, 5) is not None
        etcd.kill()
        t_kill = time.monotonic()
        err = drain_until(q, 3)
        out["error_reported"] = (
            f"yes, {type(err).__name__} after {1000 * (time.monotonic() - t_kill):.0f} ms"
            if isinstance(err, Exception) else "no"
        )
        etcd.start()
        try:
            lib.put("/rs/b", "2")
        except Exception as exc:  # the first call after a restart may fail once
            out["first_call_after_restart"] = type(exc).__name__
            lib.put("/rs/b", "2")
        ev = drain_until(q, 3)
        while isinstance(ev, Exception):
            ev = drain_until(q, 3)
        out["watch_survives_restart"] = "yes" if ev is not None else "no (silent)"
        try:
            cancel()
        except Exception:
            pass

        # a watch from a compacted revision
        for i in range(5):
            lib.put("/cmp/k", str(i))
        lib.compact_to_latest()
        try:
            q, cancel = lib.watch("/cmp/", start_revision=2)
            ev = drain_until(q, 2)
            out["compacted_watch"] = "silent: no event, no error" if ev is None else f"delivered {type(ev).__name__}"
            cancel()
        except Exception as exc:
            out["compacted_watch"] = f"raises {type(exc).__name__}"

        if lib_cls is SDK:  # etcd's minimum lease: ask for 1 s, see what is granted and when the key goes
            lease = lib.c.lease(1)
            lib.c.put("/ttl/k", "x", lease=lease.id)
            t0 = time.monotonic()
            while lib.c.get("/ttl/k")[0] is not None and time.monotonic() - t0 < 10:
                time.sleep(0.02)
            out["lease_asked_1s"] = f"granted {lease.ttl} s, key deleted after {time.monotonic() - t0:.2f} s"
    finally:
        etcd.kill()

    # a dead endpoint: nothing listens there
    dead = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    try:
        lib_cls(dead).put("/x", "y")
        out["dead_endpoint"] = "no error?"
    except Exception as exc:
        out["dead_endpoint"] = f"{type(exc).__name__} in {1000 * (time.monotonic() - t0):.0f} ms"
    return out


def main() -> None:
    names = sorted(n for _, n in socket.if_nameindex())
    if names != ["lo"]:
        sys.exit(f"refusing to run outside a private network namespace (interfaces: {names})")
    tmp = tempfile.mkdtemp(prefix="zio-etcd-cmp-")
    try:
        for lib_cls, dist in ((GW, "etcd3gw"), (SDK, "etcd-sdk-python")):
            size = installed_size(dist, set())
            if dist == "etcd-sdk-python":  # imports google.protobuf without requiring it
                size += installed_size("protobuf", set())
            res = measure(lib_cls, tmp)
            print(f"{lib_cls.name}: installed with dependencies {size / 1e6:.1f} MB")
            for k, v in res.items():
                if k == "latency_ms":
                    v = f"median {v[0]:.2f} ms, p99 {v[1]:.2f} ms"
                print(f"  {k}: {v}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
