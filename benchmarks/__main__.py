"""``python -m benchmarks [--quick] [--json PATH] [--only SECTION ...]``: the DESIGN.md targets.

The process first moves itself into a private network namespace (loopback only, multicast
routed to ``lo``), before any thread or socket exists: nothing it or its children send can
leave the machine. If that fails, the discovery sections are refused (the throughput and
codec sections only use TCP on 127.0.0.1 and still run).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Runs of the pool scenarios per backend (each 3 to 4 s: a 2 s idle period, start-up, tear-down).
POOL_RUNS, POOL_RUNS_QUICK = 5, 2
SECTIONS = ["throughput", "codec", "asyncio", "security", "discovery", "exits", "convergence", "pool", "flood"]
#: etcd convergence rows: (nodes, nodes per process, cap in seconds). The 1000-node row
#: (10 processes) takes about 30 s and runs in full runs only.
ETCD_SIZES = [(100, 25, 30.0), (1000, 100, 60.0)]
ETCD_SIZES_QUICK = [(100, 25, 20.0)]
#: the big beacon convergence row (issue 13): this many nodes in one process
BEACON_BIG = 500


def _isolate() -> tuple[bool, str, object]:
    """Enter a private network namespace (tests/netns.py); return (ok, why not, netns module)."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    try:
        import netns  # tests/netns.py: only the standard library
    except ImportError as err:
        return False, f"tests/netns.py not importable: {err}", None
    try:
        ok = netns.enter()
    except Exception as err:  # IsolationError and anything unexpected: refuse discovery
        return False, f"isolation failed: {err}", netns
    if not ok:
        return False, netns.not_isolated_reason(), netns
    import socket

    names = sorted(name for _, name in socket.if_nameindex())
    if names != ["lo"]:
        return False, f"namespace is not private: interfaces {names}", netns
    return True, "", netns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 2 minutes)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    args = parser.parse_args(argv)
    sections = args.only or SECTIONS

    isolated, why, netns = _isolate()  # before zmq, zio or any thread

    from . import report  # noqa: E402  (imports zio and zmq)

    started = time.monotonic()
    run = report.Run(quick=args.quick, isolated=isolated, isolation_note=why)
    if isolated:
        run.note(f"isolated: private network namespace ({netns.isolation_mode()})")
    else:
        run.note(f"NOT isolated ({why}): discovery benchmarks refused")

    from . import procs
    import tempfile

    procs.STDERR_LOG = os.path.join(tempfile.mkdtemp(prefix="zio-bench-"), "children-stderr.log")

    def progress(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {msg}", file=sys.stderr, flush=True)

    if "throughput" in sections:
        from . import throughput

        progress("throughput: zio Port vs raw pyzmq")
        run.throughput = throughput.run(args.quick)
        import zio.port

        run.note("zio's per-message short path (zio/_fastpath.py): "
                 + ("compiled" if zio.port._short.COMPILED else "pure Python (not compiled)"))
    if "codec" in sections:
        from . import codec

        progress("codec: Message encode/decode")
        run.codec = codec.run(args.quick)
    if "security" in sections:
        from . import security

        progress("security: CURVE PUSH/PULL vs raw pyzmq CURVE")
        run.security_throughput = security.curve_throughput(args.quick)
        if isolated:
            progress("security: discovery enter, security on vs off")
            run.security_enter = security.discovery_enter(args.quick)
    if "asyncio" in sections:
        _asyncio(run, args.quick, isolated, progress)
    discovery_wanted = any(s in sections for s in ("discovery", "exits", "convergence", "pool", "flood"))
    if discovery_wanted and not isolated:
        progress("discovery sections refused: not isolated")
    elif discovery_wanted:
        _discovery(run, sections, args.quick, netns, progress)
    tracebacks = procs.child_tracebacks()
    if tracebacks:
        run.note(f"child processes logged {tracebacks} traceback(s): {procs.STDERR_LOG}")
    run.elapsed = time.monotonic() - started
    progress(f"done in {run.elapsed:.0f} s")
    print(run.table())
    if args.json:
        run.write_json(args.json)
        progress(f"wrote {args.json}")
    return 0


def _asyncio(run, quick, isolated, progress) -> None:
    """zio.asyncio: throughput against raw zmq.asyncio; loop lag under churn (isolated only)."""
    import random

    from . import asyncio_bench, discovery

    progress("asyncio: zio.asyncio Port vs raw zmq.asyncio")
    run.asyncio_throughput = asyncio_bench.throughput(quick)
    if not isolated:
        progress("asyncio loop lag refused: not isolated")
        return
    for kind in ("beacon", "mdns"):
        ok, why = discovery.available(kind)
        if not ok:
            run.missing[kind] = why
            continue
        progress(f"asyncio: loop lag while {asyncio_bench.CHURN_NODES} {kind} peers join and leave")
        try:
            run.loop_lag[kind] = asyncio_bench.loop_lag(kind, random.randint(20000, 40000), quick)
        except Exception as err:  # noqa: BLE001 - report and go on
            run.errors[f"loop lag {kind}"] = repr(err)


def _discovery(run, sections, quick, netns, progress) -> None:
    from . import discovery

    kinds = {}
    for kind in ("beacon", "pyre", "mdns", "zeroconf", "etcd"):
        ok, why = discovery.available(kind)
        kinds[kind] = ok
        if not ok:
            run.missing[kind] = why
            progress(f"{kind}: not available ({why})")
    server = None
    if kinds["etcd"] and any(s in sections for s in ("discovery", "exits", "convergence")):
        from . import etcd_server

        try:
            t0 = time.monotonic()
            server = etcd_server.start(isolated=True)  # _discovery only runs isolated
            run.note(f"etcd rows: one etcd 3.5 ({server.url}, pid {server.pid}) for the whole run, "
                     f"healthy {time.monotonic() - t0:.1f} s after its start")
            progress(f"etcd: started at {server.url}")
        except Exception as err:  # noqa: BLE001 - the other backends still run
            kinds["etcd"] = False
            run.missing["etcd"] = f"etcd did not start: {err}"
            progress(f"etcd: not available ({err})")
    try:
        _sections(run, sections, quick, netns, progress, kinds, server)
    finally:
        if server is not None:
            server.stop()


def _sections(run, sections, quick, netns, progress, kinds, server) -> None:
    from . import convergence, discovery, pool

    if "discovery" in sections:
        for kind in ("beacon", "pyre", "mdns", "zeroconf", "etcd"):
            if not kinds[kind]:
                continue
            slow = kind in ("mdns", "zeroconf")
            reps = (2 if quick else 3) if slow else (3 if quick else 7)
            progress(f"discovery: enter/leave, {kind} x{reps}")
            try:
                run.enter_leave[kind] = discovery.enter_leave(
                    kind, reps, enter_timeout=10.0 if slow else 5.0, leave_cap=3.0 if quick else 5.0)
            except Exception as err:  # noqa: BLE001 - report and go on
                run.errors[f"enter_leave {kind}"] = repr(err)
    if "exits" in sections:
        cap = 6.0 if quick else 40.0
        kill = [k for k in ("beacon", "pyre", "mdns", "zeroconf", "etcd") if kinds[k]]
        cut = [k for k in ("beacon", "pyre", "mdns", "etcd") if kinds[k]]
        ok, why = netns.lan_supported()
        if not ok:
            run.missing["lan"] = why
            cut = []
        progress(f"exits: kill {kill}, cable cut {cut} side by side, cap {cap:.0f} s")

        def lan_factory(n):
            return netns.Lan(n, subnet="10.79.0").start()

        def host_env(kind, host):  # etcd nodes on a LAN host reach the run's etcd on the bridge
            if kind == "etcd" and server is not None:
                return {"ZIO_ETCD_ENDPOINTS": server.url_for(host.lan.bridge_address)}
            return {}

        try:
            run.exits = discovery.exits(kill, cut, cap, lan_factory, prepare_timeout=15.0, host_env=host_env)
            run.exit_cap = cap
        except Exception as err:  # noqa: BLE001
            run.errors["exits"] = repr(err)
    if "convergence" in sections:
        sizes = [10, 100] if quick else [10, 50, 100]
        # settle: longer than the beacon hub's deferred work (LATER_WAIT, 1 s), so that the idle
        # window does not count beacons held back by the burst of meetings before it
        window, settle, cap = (2.0, 1.5, 20.0) if quick else (5.0, 1.5, 30.0)
        for kind in ("beacon", "pyre"):
            if not kinds[kind]:
                continue
            for n in sizes:
                progress(f"convergence: {kind}, {n} nodes")
                try:
                    run.convergence.append(convergence.converge(kind, n, cap, settle, window))
                except Exception as err:  # noqa: BLE001
                    run.errors[f"convergence {kind} {n}"] = repr(err)
        if kinds["beacon"]:
            # issue 13: 500 beacon nodes in one process (they share one hub and meet in-process);
            # across processes each pair needs two TCP sessions: 500 nodes in 20 processes
            # would need about 70 000 fds per process, 3.5 times the hard limit here
            progress(f"convergence: beacon, {BEACON_BIG} nodes, 1 process")
            try:
                run.convergence.append(convergence.converge("beacon", BEACON_BIG, cap, settle, window,
                                                            per_process=BEACON_BIG))
            except Exception as err:  # noqa: BLE001
                run.errors[f"convergence beacon {BEACON_BIG}"] = repr(err)
        if kinds["etcd"]:
            # 100 nodes as the others (25 per process); 1000 in 10 processes (full run only)
            for n, per_process, etcd_cap in ETCD_SIZES_QUICK if quick else ETCD_SIZES:
                progress(f"convergence: etcd, {n} nodes ({per_process} per process, cap {etcd_cap:.0f} s)")
                try:
                    run.convergence.append(convergence.converge(
                        "etcd", n, etcd_cap, settle, window, per_process=per_process, server=server))
                except Exception as err:  # noqa: BLE001
                    run.errors[f"convergence etcd {n}"] = repr(err)
    if "pool" in sections:
        runs = POOL_RUNS_QUICK if quick else POOL_RUNS
        for kind in ("beacon", "mdns"):
            if not kinds[kind]:
                continue
            progress(f"pool: burst shares, {kind} x{runs}")
            try:
                run.pool[kind] = pool.measure(kind, runs)
            except Exception as err:  # noqa: BLE001
                run.errors[f"pool {kind}"] = repr(err)
    if "flood" in sections and kinds["beacon"]:
        from . import flood

        seconds = 3.0 if quick else 5.0
        progress(f"flood: 10 k beacons/s for {seconds:.0f} s at one beacon peer")
        try:
            run.flood = flood.flood(10_000, seconds)
        except Exception as err:  # noqa: BLE001
            run.errors["flood"] = repr(err)


if __name__ == "__main__":
    sys.exit(main())
