"""N nodes on one machine: time to a full mesh, then CPU, memory and traffic while idle.

The N nodes live in a few ``benchmarks._node swarm`` processes (N/25 of them, at least
one; the same split for every backend; the 1000-node etcd row: N/100, that is 10). The clock starts just before the benchmark tells
every process to start its nodes and stops when the last process reports that each of its
nodes sees all N-1 others. Then, after a short settling time, over an idle window:

- CPU: user+system seconds of the swarm processes (all threads) / N / window;
- memory: the processes' RSS after convergence minus their RSS before any node existed
  (interpreter and libraries already imported), / N;
- beacons: valid ZRE beacons (22 bytes, version 1, port != 0) heard on the UDP port by a
  listener of the benchmark's own, / N / window;
- loopback packets: every packet of the namespace's ``lo`` (beacons, TCP pings, acks) / N / window;
- etcd: the same CPU and RSS figures for the etcd server (``server``), per node, beside
  the nodes' own.
"""
from __future__ import annotations

import socket
import struct
import threading
import time

from .discovery import fresh_port
from .procs import Child, lo_packets, proc_cpu_seconds, proc_rss_kb

NODES_PER_PROCESS = 25
LOOPBACK_GROUP = "225.25.25.25"


class BeaconCounter:
    """Counts the ZRE beacons sent to the loopback group on ``port``."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.bind(("", port))
        mreq = socket.inet_aton(LOOPBACK_GROUP) + socket.inet_aton("127.0.0.1")
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        self.sock.settimeout(0.2)
        self.count = 0
        self.counting = False
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                data = self.sock.recv(64)
            except (socket.timeout, OSError):
                continue
            if self.counting and len(data) == 22 and data[:4] == b"ZRE\x01":
                if struct.unpack(">H", data[20:22])[0] != 0:
                    self.count += 1

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


def converge(kind: str, n: int, cap: float, settle: float, window: float,
             per_process: int = NODES_PER_PROCESS, server=None) -> dict:
    """Time to a full mesh of ``n`` nodes (``per_process`` per process), then the idle figures.

    ``server``: the run's etcd (``etcd_server.BenchEtcd``), whose CPU and RSS are measured too.
    """
    port = fresh_port()
    procs = max(1, (n + per_process - 1) // per_process)
    split = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    counter = BeaconCounter(port)
    children = [Child(["swarm", kind, port, f"n{i}", local, n]) for i, local in enumerate(split)]
    result: dict = {"kind": kind, "n": n, "processes": procs, "cap": cap, "window": window}
    try:
        for c in children:
            if c.expect("ready", 60) is None:
                raise RuntimeError(f"{kind}: swarm process did not start")
        rss0 = sum(proc_rss_kb(c.pid) for c in children)
        server_rss0 = server.rss_kb() if server is not None else 0
        t0 = time.monotonic()
        for c in children:
            c.send("start")
        times = []
        created = []
        for c in children:
            event = c.expect("converged", max(0.0, t0 + cap - time.monotonic()))
            times.append(None if event is None else event["t"])
            started = c.expect("started", 0)
            created.append(None if started is None else started["t"] - t0)
        result["created_s"] = created  # per process: time to create its nodes
        if any(t is None for t in times):
            result["seconds"] = None
            result["converged_processes"] = sum(t is not None for t in times)
        else:
            result["seconds"] = max(times) - t0
            time.sleep(settle)
            cpu0 = sum(proc_cpu_seconds(c.pid) for c in children)
            server_cpu0 = server.cpu_seconds() if server is not None else 0.0
            pk0 = lo_packets()
            counter.count, counter.counting = 0, True
            w0 = time.monotonic()
            time.sleep(window)
            counter.counting = False
            elapsed = time.monotonic() - w0
            cpu1 = sum(proc_cpu_seconds(c.pid) for c in children)
            server_cpu1 = server.cpu_seconds() if server is not None else 0.0
            pk1 = lo_packets()
            rss1 = sum(proc_rss_kb(c.pid) for c in children)
            result.update(
                cpu_per_node=(cpu1 - cpu0) / n / elapsed,  # fraction of one core
                rss_kb_per_node=(rss1 - rss0) / n,
                beacons_per_node_s=counter.count / n / elapsed,
                lo_packets_per_node_s=(pk1 - pk0) / n / elapsed,
            )
            if server is not None:
                result.update(
                    server_cpu_per_node=(server_cpu1 - server_cpu0) / n / elapsed,
                    server_rss_kb_per_node=(server.rss_kb() - server_rss0) / n,
                )
    finally:
        t_stop = time.monotonic()
        for c in children:
            c.send("stop")
        for c in children:
            c.expect("stopped", 60)
            c.close()
        counter.close()
        result["stop_s"] = time.monotonic() - t_stop  # every node stopped, processes gone
    return result
