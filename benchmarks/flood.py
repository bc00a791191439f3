"""A beacon flood (issue 15): a zio beacon peer's fds and RSS while 10 k made-up UUIDs a
second beacon at it, whether a real peer is found meanwhile, and how soon it recovers.

One ``benchmarks._node observer`` process holds the *target*: a zio beacon Peer alone on a
beacon port of its own, with the common soft limit of 1024 open files. The benchmark process measures its open fds (``/proc/PID/fd``) and
RSS, then sends ``rate`` ZRE beacons a second, each from a new random UUID naming the
mailbox port of a TCP listener that accepts connections and never speaks (the worst case
for the target: every connection it opens there succeeds and waits for a HELLO that never
comes). One second into the flood a fresh zio peer starts (a ``subject`` process); the
time from its start to the target's ENTER is "found during the flood"; it stops once
found. The flood lasts ``seconds``; fds and RSS are sampled every 50 ms throughout, and
after it every 100 ms until both are back within 20 % of the baseline (``recovery``).
"""
from __future__ import annotations

import functools
import os
import resource
import socket
import subprocess
import time
import uuid as uuidlib

from .convergence import LOOPBACK_GROUP
from .discovery import fresh_port
from .procs import Child, proc_rss_kb

#: The target's soft open-files limit: the common default, where a flood used to exhaust it.
TARGET_FD_LIMIT = 1024
#: Back within this factor of the baseline counts as recovered (the issue's 20 %).
RECOVERED = 1.2


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _beacon_sender() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    return sock


def _is_enter(uuid: str):
    return lambda e: e.get("event") == "enter" and e.get("uuid") == uuid


def flood(rate: int = 10_000, seconds: float = 5.0, recovery_cap: float = 20.0) -> dict:
    """Run one flood against a fresh target; every figure of the rows, as a dict."""
    from zio_plugins.beacon import wire  # the benchmark's own beacons: ZRE's 22-byte format

    port = fresh_port()
    mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    mute.bind(("127.0.0.1", 0))
    mute.listen(4096)
    mute_port = mute.getsockname()[1]
    sender = _beacon_sender()
    target = Child(["observer", "beacon", port, "target"], popen=functools.partial(subprocess.Popen, preexec_fn=_low_fd_limit))
    fresh = Child(["subject", "beacon", port, "fresh"])
    try:
        if target.expect("ready", 30) is None or fresh.expect("ready", 30) is None:
            raise RuntimeError("flood: a node process did not start")
        pid = target.pid
        time.sleep(1.0)  # its first beacons are out; its fds and RSS settle
        base_fds, base_rss = _fds(pid), proc_rss_kb(pid)
        peak_fds, peak_rss, sent = base_fds, base_rss, 0
        batch = max(1, rate // 200)  # 200 batches a second
        t0 = time.monotonic()
        fresh_t0 = fresh_uuid = found_after = None
        next_sample = t0
        while (now := time.monotonic()) - t0 < seconds:
            due = int((now - t0) * rate)
            while sent < due:
                for _ in range(min(batch, due - sent)):
                    sender.sendto(wire.Beacon(uuidlib.uuid4(), mute_port).encode(), (LOOPBACK_GROUP, port))
                    sent += 1
            if fresh_t0 is None and now - t0 >= 1.0:
                fresh_t0 = time.monotonic()
                fresh.send("start")
                started = fresh.expect("started", 10)
                fresh_uuid = started and str(started["uuid"])
            if fresh_uuid and found_after is None:
                if target.expect(_is_enter(fresh_uuid), 0) is not None:
                    found_after = time.monotonic() - fresh_t0
                    fresh.send("stop")
            if now >= next_sample:
                peak_fds, peak_rss = max(peak_fds, _fds(pid)), max(peak_rss, proc_rss_kb(pid))
                next_sample = now + 0.05
            time.sleep(0.004)
        flood_s = time.monotonic() - t0
        if fresh_uuid and found_after is None:
            seen = target.expect(_is_enter(fresh_uuid), 0.5)
            if seen is not None:
                found_after = seen["t"] - fresh_t0  # after the flood: reported, not a PASS
            fresh.send("stop")
        end = time.monotonic()
        recovered_after = None
        fds_now, rss_now = _fds(pid), proc_rss_kb(pid)
        while time.monotonic() - end < recovery_cap:
            fds_now, rss_now = _fds(pid), proc_rss_kb(pid)
            if fds_now <= base_fds * RECOVERED and rss_now <= base_rss * RECOVERED:
                recovered_after = time.monotonic() - end
                break
            time.sleep(0.1)
        return {
            "rate": rate, "seconds": flood_s, "sent": sent, "achieved_rate": sent / flood_s,
            "base_fds": base_fds, "peak_fds": peak_fds, "base_rss_kb": base_rss, "peak_rss_kb": peak_rss,
            "fd_soft_limit": _soft_limit(pid),
            "found_after_s": found_after, "found_during_flood": found_after is not None and found_after + 1.0 < flood_s,
            "recovered_after_s": recovered_after, "recovery_cap_s": recovery_cap,
            "end_fds": fds_now, "end_rss_kb": rss_now,
        }
    finally:
        for child in (fresh, target):
            child.close()
        sender.close()
        mute.close()


def _low_fd_limit() -> None:
    """In the target process, before exec: the soft open-files limit at TARGET_FD_LIMIT."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(TARGET_FD_LIMIT, hard), hard))


def _soft_limit(pid: int) -> int | None:
    """The soft open-files limit of process ``pid`` (/proc/PID/limits)."""
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError):
        pass
    return None
