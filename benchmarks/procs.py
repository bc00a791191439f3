"""Child processes of the benchmark (``benchmarks._node``, ``benchmarks._pool_node``) and their JSON lines."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Where the children's stderr goes (None: inherited). Set by ``benchmarks.__main__``.
STDERR_LOG: str | None = None


def child_tracebacks() -> int:
    """How many tracebacks the children wrote to ``STDERR_LOG`` so far."""
    if not STDERR_LOG or not os.path.exists(STDERR_LOG):
        return 0
    with open(STDERR_LOG, errors="replace") as f:
        return sum(line.startswith("Traceback") for line in f)


class Child:
    """One ``benchmarks._node`` process (or ``module``): stdin commands, JSON events with a deadline."""

    def __init__(self, args: list[str], popen=subprocess.Popen, env: dict[str, str] | None = None,
                 module: str = "benchmarks._node"):
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env["ZIO_BENCH_NETNS"] = netns_id()  # the child checks it is where we think
        full_env.update(env or {})
        argv = [sys.executable, "-u", "-m", module, *map(str, args)]
        stderr = open(STDERR_LOG, "ab") if STDERR_LOG else None
        try:
            self.proc = popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                              env=full_env, cwd=ROOT)
        finally:
            if stderr is not None:
                stderr.close()
        self.fd = self.proc.stdout.fileno()
        self.buf = b""
        self.backlog: list[dict] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, line: str) -> None:
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the child is gone: its events will not come

    def _next(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = max(0.0, deadline - time.monotonic())
            if not select.select([self.fd], [], [], left)[0]:  # data already there counts
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return {"event": "garbage", "line": line.decode(errors="replace")}

    def expect(self, match, timeout: float) -> dict | None:
        """The first event (backlog first) for which ``match(event)`` is true, or None."""
        if isinstance(match, str):
            name = match
            match = lambda e: e.get("event") == name  # noqa: E731
        for i, event in enumerate(self.backlog):
            if match(event):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            event = self._next(max(0.0, deadline - time.monotonic()))
            if event is None:
                return None
            if match(event):
                return event
            self.backlog.append(event)

    def kill(self) -> float:
        """SIGKILL; returns the monotonic time just before."""
        t = time.monotonic()
        os.kill(self.proc.pid, signal.SIGKILL)
        return t

    def close(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


def netns_id(path: str = "/proc/self/ns/net") -> str:
    """``st_dev:st_ino`` of a network namespace (ours, or a ``/run/netns/NAME``)."""
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def lo_packets() -> int:
    """Packets sent on this namespace's loopback so far."""
    with open("/proc/self/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[9])  # transmit packets
    return 0
