"""Discovery latencies: enter, graceful leave, killed process, cable cut; per backend.

Every node runs in a ``benchmarks._node`` child process, so that a kill is a real kill and
start-up imports are not timed. Latencies are differences of ``time.monotonic()`` stamps
taken in different processes (one clock per machine):

- *enter*: from just before the subject creates its node (a fresh UUID each time) to the
  observer's ENTER event for that UUID (loopback, in the benchmark's private namespace);
- *newcomer*: the other way round, from just before a fresh node is created to its own
  ENTER event for a node that was already running (for the last of three, in the crowd
  variant); runs 0.2 s apart (:func:`newcomers`);
- *leave*: from just before the subject stops its node to the observer's EXIT;
- *kill*: from just before SIGKILL of the subject's process to the observer's EXIT
  (loopback: the host lives);
- *cut*: observer and subject on two hosts of a pretend LAN (``netns.Lan``: network
  namespaces on a bridge); from just before the subject host's cable is pulled (its bridge
  port goes down: no FIN, no RST) to the observer's EXIT. etcd nodes there reach the
  run's etcd on the LAN's bridge address (``host_env``).

Kill and cut scenarios of every backend run side by side (they are independent processes
in separate namespaces), so a run waits for the slowest of them once, up to a cap.
"""
from __future__ import annotations

import importlib
import importlib.util
import random
import statistics
import time

from .procs import Child, netns_id

NETNS_RUN_DIR = "/run/netns"  # where `ip netns` (and tests/netns.py's Lan) keep named namespaces

#: Beacon ports already handed out in this run (each scenario gets its own).
_ports: set[int] = set()


def fresh_port() -> int:
    while True:
        port = random.randint(20000, 40000)
        if port not in _ports:
            _ports.add(port)
            return port


def available(kind: str) -> tuple[bool, str]:
    """Whether a node kind can run here, and why not."""
    if kind == "beacon":
        return True, ""
    if kind == "pyre":
        if importlib.util.find_spec("pyre") is None:
            return False, "zeromq-pyre is not installed"
        return True, ""
    if kind == "zeroconf":
        if importlib.util.find_spec("zeroconf") is None:
            return False, "python-zeroconf is not installed"
        return True, ""
    if kind == "etcd":
        from . import etcd_server

        return etcd_server.available()
    if kind == "mdns":
        try:
            if importlib.util.find_spec("zio_plugins.mdns") is None:
                return False, "zio_plugins.mdns does not exist (yet)"
            module = importlib.import_module("zio_plugins.mdns")
        except Exception as err:  # noqa: BLE001 - any import failure means "not available"
            return False, f"zio_plugins.mdns does not import: {err!r}"
        if not hasattr(module, "zio_discovery_backends"):
            return False, "zio_plugins.mdns has no zio_discovery_backends hook"
        return True, ""
    return False, f"unknown kind {kind!r}"


def _is(kind: str, uuid: str):
    return lambda e: e.get("event") == kind and e.get("uuid") == uuid


def enter_and_leave(kind: str, observer: Child, subject: Child, enter_timeout: float,
                    leave_cap: float) -> tuple[dict, float | None, float | None]:
    """``subject`` makes a fresh node and stops it: (its "started" event, seconds until
    ``observer`` had the ENTER, seconds from the stop until its EXIT; None: not in time)."""
    subject.send("start")
    started = subject.expect("started", 30)
    if started is None:
        raise RuntimeError(f"{kind}: subject did not start")
    seen = observer.expect(_is("enter", started["uuid"]), enter_timeout)
    subject.send("stop")
    stopped = subject.expect("stopped", 30)
    gone = observer.expect(_is("exit", started["uuid"]), leave_cap)
    return (started, None if seen is None else seen["t"] - started["t0"],
            None if gone is None or stopped is None else gone["t"] - stopped["t0"])


def enter_leave(kind: str, reps: int, enter_timeout: float, leave_cap: float) -> dict:
    """Enter and graceful-leave latencies (seconds) over ``reps`` fresh nodes."""
    port = fresh_port()
    observer = Child(["observer", kind, port, "observer"])
    subject = Child(["subject", kind, port, "subject"])
    enters: list[float] = []
    leaves: list[float | None] = []
    try:
        if observer.expect("ready", 30) is None or subject.expect("ready", 30) is None:
            raise RuntimeError(f"{kind}: node processes did not start")
        time.sleep(0.3)  # let the observer settle (first beacons, mDNS probing)
        for _ in range(reps):
            _, enter, leave = enter_and_leave(kind, observer, subject, enter_timeout, leave_cap)
            enters.append(enter)
            leaves.append(leave)
            time.sleep(0.05)
    finally:
        subject.close()
        observer.close()
    result = {"enter": enters, "leave": leaves, "enter_timeout": enter_timeout, "leave_cap": leave_cap}
    result.update(newcomers(kind, max(NEWCOMER_MIN_REPS, 3 * reps), enter_timeout))
    return result


#: Newcomer rows: at least this many runs each, so that a median and a worst mean something.
NEWCOMER_MIN_REPS = 6
#: Pause between one newcomer's stop and the next one's start: shorter than the one second
#: mDNS responders wait before they multicast the same record again (RFC 6762 section 6),
#: so an implementation that relies on multicast answers shows it here.
NEWCOMER_GAP = 0.2
#: How many running peers the second newcomer row has.
NEWCOMER_CROWD = 3


def _newcomer_runs(kind: str, port: int, running: list[Child], reps: int, timeout: float) -> list[float | None]:
    """Seconds from a fresh node's creation to its ENTER of every running node, ``reps`` times."""
    uuids = set()
    for child in running:
        ready = child.expect("ready", 30)
        if ready is None:
            raise RuntimeError(f"{kind}: a running node did not start")
        uuids.add(ready["uuid"])
    subject = Child(["subject", kind, port, "newcomer"])
    times: list[float | None] = []
    try:
        if subject.expect("ready", 30) is None:
            raise RuntimeError(f"{kind}: newcomer process did not start")
        time.sleep(1.5)  # the running nodes are settled: startup queries and announcements done
        for _ in range(reps):
            subject.backlog.clear()
            subject.send("start")
            started = subject.expect("started", 30)
            if started is None:
                raise RuntimeError(f"{kind}: newcomer did not start")
            t0, seen, last = started["t0"], set(), None
            deadline = time.monotonic() + timeout
            while seen != uuids:
                event = subject.expect(
                    lambda e: e.get("event") == "enter" and e.get("uuid") in uuids - seen and e["t"] >= t0,
                    max(0.0, deadline - time.monotonic()),
                )
                if event is None:
                    break
                seen.add(event["uuid"])
                last = event["t"] - t0
            times.append(last if seen == uuids else None)
            subject.send("stop")
            subject.expect("stopped", 30)
            time.sleep(NEWCOMER_GAP)
    finally:
        subject.close()
    return times


def newcomers(kind: str, reps: int, timeout: float) -> dict:
    """How soon a new node sees nodes that were already running: one of them, then a crowd.

    From just before the newcomer's process creates its node (a fresh UUID each run) to its
    ENTER event for the running node (for the last of the crowd). The running nodes are
    ``observer`` processes started beforehand. The crowd row runs for zio backends only.
    """
    result: dict = {"newcomer_timeout": timeout}
    crowds = [1, NEWCOMER_CROWD] if kind in ("beacon", "mdns") else [1]
    for crowd in crowds:
        port = fresh_port()
        running = [Child(["observer", kind, port, f"running{i}"]) for i in range(crowd)]
        try:
            result["newcomer" if crowd == 1 else "newcomer_crowd"] = _newcomer_runs(kind, port, running, reps, timeout)
        finally:
            for child in running:
                child.close()
    result["newcomer_crowd_size"] = NEWCOMER_CROWD
    return result


class ExitScenario:
    """An observer and a subject that sees it, waiting for the subject's end (kill or cut)."""

    def __init__(self, kind: str, how: str, hosts=None, host_env=None):
        """``host_env(kind, host)``: more environment for a node on a LAN host (etcd: its URL)."""
        self.kind, self.how = kind, how
        port = fresh_port()
        popen_obs = popen_sub = None
        env_obs = env_sub = None
        if hosts is not None:  # a Lan: observer on hosts[0], subject on hosts[1]
            self.observer_host, self.subject_host = hosts
            popen_obs, popen_sub = hosts[0].popen, hosts[1].popen
            env_obs = {"ZIO_INTERFACE": hosts[0].interface, "ZBENCH_ADDRESS": hosts[0].address,
                       "ZIO_BENCH_NETNS": netns_id(f"{NETNS_RUN_DIR}/{hosts[0].name}")}
            env_sub = {"ZIO_INTERFACE": hosts[1].interface, "ZBENCH_ADDRESS": hosts[1].address,
                       "ZIO_BENCH_NETNS": netns_id(f"{NETNS_RUN_DIR}/{hosts[1].name}")}
            if host_env is not None:
                env_obs.update(host_env(kind, hosts[0]))
                env_sub.update(host_env(kind, hosts[1]))
        kw_obs = {"popen": popen_obs} if popen_obs else {}
        kw_sub = {"popen": popen_sub} if popen_sub else {}
        self.observer = Child(["observer", kind, port, "observer"], env=env_obs, **kw_obs)
        self.subject = Child(["subject", kind, port, "subject"], env=env_sub, **kw_sub)
        self.uuid = None
        self.t0 = None
        self.error = ""

    def prepare(self, timeout: float) -> bool:
        """Start both and wait until the observer sees the subject."""
        if self.observer.expect("ready", 30) is None or self.subject.expect("ready", 30) is None:
            self.error = "node processes did not start"
            return False
        time.sleep(0.3)
        self.subject.send("start")
        started = self.subject.expect("started", 30)
        if started is None:
            self.error = "subject did not start"
            return False
        self.uuid = started["uuid"]
        if self.observer.expect(_is("enter", self.uuid), timeout) is None:
            self.error = f"observer did not see the subject within {timeout:.0f} s"
            return False
        return True

    def trigger(self) -> None:
        if self.how == "kill":
            self.t0 = self.subject.kill()
        else:
            self.t0 = time.monotonic()
            self.subject_host.cut()

    def result(self, cap: float) -> float | None:
        """Seconds until the observer's EXIT, or None when it did not come within ``cap``."""
        left = max(0.0, self.t0 + cap - time.monotonic())
        gone = self.observer.expect(_is("exit", self.uuid), left)
        return None if gone is None else gone["t"] - self.t0

    def close(self) -> None:
        if self.how == "cut":
            try:
                self.subject_host.restore()
            except Exception:  # noqa: BLE001 - the Lan is torn down anyway
                pass
        self.subject.close(timeout=3)
        self.observer.close(timeout=3)


def exits(kinds_kill: list[str], kinds_cut: list[str], cap: float, lan_factory, prepare_timeout: float,
          host_env=None) -> dict:
    """Kill and cable-cut latencies of several backends, measured side by side.

    ``host_env(kind, host)`` gives the nodes on LAN hosts more environment (see :class:`ExitScenario`).
    """
    results: dict[str, dict] = {}
    scenarios: list[ExitScenario] = []
    lan = None
    try:
        for kind in kinds_kill:
            scenarios.append(ExitScenario(kind, "kill"))
        if kinds_cut:
            lan = lan_factory(2 * len(kinds_cut))
            for i, kind in enumerate(kinds_cut):
                scenarios.append(ExitScenario(kind, "cut", hosts=lan.hosts[2 * i:2 * i + 2], host_env=host_env))
        ready = []
        for s in scenarios:
            if s.prepare(prepare_timeout):
                ready.append(s)
            else:
                results.setdefault(s.kind, {})[s.how] = {"value": None, "error": s.error, "cap": cap}
        for s in ready:
            s.trigger()
        for s in ready:
            value = s.result(cap)
            results.setdefault(s.kind, {})[s.how] = {"value": value, "cap": cap}
    finally:
        for s in scenarios:
            s.close()
        if lan is not None:
            lan.close()
    return results


def summary(values: list[float | None]) -> dict:
    got = [v for v in values if v is not None]
    return {
        "median": statistics.median(got) if got else None,
        "min": min(got) if got else None,
        "max": max(got) if got else None,
        "missed": len(values) - len(got),
        "all": values,
    }
