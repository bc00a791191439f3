"""A pool of same-named workers: does a burst reach every worker, also one that just joined?

DESIGN.md ("Live resolution"): a pool of same-named workers shares a burst sent right
after ``online()``, and a worker that joined while the port sat idle gets its share of the
next. Five ``benchmarks._pool_node`` processes (four workers, one client; a beacon port of
their own) serve a few runs; each run has fresh nodes and a worker nickname of its own, and
all of them leave before the next run, so runs cannot see each other. One run:

1. three workers ``zio.Node(NICK)``, each with a PULL port ``in`` (bound, online), report
   ``online`` (their ``online()`` returned), and the benchmark waits until each of them
   sees the two others (the pool is established on the network: its adverts are out);
2. *after online()*: a client ``zio.Node("client")`` with a PUSH port that does
   ``connect(NICK, "in")`` calls ``online()`` and sends a burst of messages at once;
3. *after a join*: the client closes that node and starts a fresh one the same way
   (``online()``, no burst); once it returned, a fourth worker starts and reports
   ``online``; the client then sits idle (no send, no recv) for ``idle`` seconds and sends
   the next burst.

After each burst the benchmark asks every worker for the sequence numbers of that burst it
received, until all sent messages are accounted for or ``drain`` seconds pass: what was
sent and never received is *lost*. The figures are shares of the burst: the smallest
worker's share after online() (ideal 1/3) and the newcomer's share after a join (ideal 1/4).
"""
from __future__ import annotations

import time

from .discovery import fresh_port
from .procs import Child

MODULE = "benchmarks._pool_node"
ONLINE_WORKERS = 3


def _count_event(tag: str):
    return lambda e: e.get("event") == "count" and e.get("tag") == tag


def collect(workers: list[Child], tag: str, sent: int, drain: float) -> dict:
    """Every worker's sequence numbers of burst ``tag``, once ``sent`` arrived or ``drain`` passed."""
    start = time.monotonic()
    deadline = start + drain
    while True:
        seqnos = []
        for w in workers:
            w.send(f"count {tag}")
        for w in workers:
            event = w.expect(_count_event(tag), 10)
            if event is None:
                raise RuntimeError(f"a worker did not report its count of burst {tag}")
            seqnos.append(event["seqnos"])
        received = sum(len(s) for s in seqnos)
        if received >= sent or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    distinct = set().union(*map(set, seqnos))
    return {
        "counts": [len(s) for s in seqnos],
        "received": received,
        "lost": len(set(range(sent)) - distinct),
        "duplicates": received - len(distinct),
        "drain_s": time.monotonic() - start,
    }


def wait_pool(workers: list[Child], timeout: float) -> None:
    """Until every worker's node sees all the others (an explicit handshake, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        for w in workers:
            w.send("mates")
        seen = [_expect(w, "mates", 10, "worker")["n"] for w in workers]
        if all(n >= len(workers) - 1 for n in seen):
            return
        if time.monotonic() >= deadline:
            raise RuntimeError(f"the workers did not see each other within {timeout:.0f} s: {seen}")
        time.sleep(0.02)


def _expect(child: Child, event: str, timeout: float, what: str) -> dict:
    got = child.expect(event, timeout)
    if got is None:
        raise RuntimeError(f"{what}: no {event!r} within {timeout:.0f} s")
    return got


def run_once(workers: list[Child], client: Child, kind: str, run: int, online_burst: int,
             join_burst: int, idle: float, drain: float) -> dict:
    """One run of both scenarios with fresh nodes; counts, losses and shares of each burst."""
    nick = f"worker{run}"
    originals, newcomer = workers[:ONLINE_WORKERS], workers[ONLINE_WORKERS]
    result: dict = {"run": run}
    for w in originals:
        w.send(f"start {nick}")
    for w in originals:
        _expect(w, "online", 30, f"{kind} worker")
    wait_pool(originals, 15)

    # 1. a burst right after online()
    tag = f"A{run}"
    client.send(f"online {nick} {online_burst} {tag}")
    sent = _expect(client, "sent", 60, f"{kind} client (burst after online)")
    online = _expect(client, "online", 5, f"{kind} client")
    a = collect(originals, tag, sent["sent"], drain)
    a.update(burst=online_burst, sent=sent["sent"], unsent=sent["unsent"], seen=sent["seen"],
             connected=sent["connected"], online_s=online["t"] - online["t0"], burst_s=sent["t"] - sent["t0"],
             share=min(a["counts"]) / online_burst)
    result["online"] = a

    # 2. a fresh client node goes online, a fourth worker joins, the client sits idle, a burst
    tag = f"B{run}"
    client.send(f"online {nick} 0 {tag}")
    online = _expect(client, "online", 60, f"{kind} client (second node)")
    newcomer.send(f"start {nick}")
    joined = _expect(newcomer, "online", 30, f"{kind} newcomer")
    time.sleep(idle)  # the scenario: the client does nothing while the newcomer is there
    client.send(f"burst {join_burst} {tag}")
    sent = _expect(client, "sent", 60, f"{kind} client (burst after a join)")
    b = collect(workers, tag, sent["sent"], drain)
    b.update(burst=join_burst, sent=sent["sent"], unsent=sent["unsent"], seen=sent["seen"],
             connected=sent["connected"], online_s=online["t"] - online["t0"], burst_s=sent["t"] - sent["t0"],
             idle_s=sent["t0"] - joined["t"], share=b["counts"][-1] / join_burst)
    result["join"] = b
    for c in (*workers, client):  # every node of this run leaves before the next run begins
        c.send("stop")
    for c in (*workers, client):
        _expect(c, "stopped", 30, f"{kind} pool process")
    return result


def measure(kind: str, runs: int, online_burst: int = 300, join_burst: int = 400,
            idle: float = 2.0, drain: float = 3.0) -> dict:
    """``runs`` runs of both scenarios; the worst share of each, and every run's figures.

    The processes (four workers, one client) serve every run; each run has fresh nodes
    under a nickname of its own, so a run cannot see the nodes of another."""
    t0 = time.monotonic()
    port = fresh_port()
    workers = [Child(["worker", kind, port], module=MODULE) for _ in range(ONLINE_WORKERS + 1)]
    client = Child(["client", kind, port], module=MODULE)
    everyone = [*workers, client]
    try:
        for c in everyone:
            _expect(c, "ready", 60, f"{kind} pool process")
        done = [run_once(workers, client, kind, i, online_burst, join_burst, idle, drain) for i in range(runs)]
    finally:
        for c in everyone:  # EOF to all first: they end side by side
            try:
                c.proc.stdin.close()
            except OSError:
                pass
        for c in everyone:
            c.close(timeout=10)
    out: dict = {"kind": kind, "runs": runs, "idle_s": idle, "drain_s": drain}
    for scenario in ("online", "join"):
        rows = [r[scenario] for r in done]
        worst = min(rows, key=lambda r: r["share"])
        out[scenario] = {
            "workers": len(worst["counts"]),
            "burst": worst["burst"],
            "worst_share": worst["share"],
            "worst_counts": worst["counts"],
            "lost": sum(r["lost"] for r in rows),
            "unsent": sum(r["unsent"] for r in rows),
            "duplicates": sum(r["duplicates"] for r in rows),
            "sent": sum(r["sent"] for r in rows),
            "runs": rows,
        }
    out["seconds"] = time.monotonic() - t0
    return out
