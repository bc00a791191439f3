"""The benchmark command runs (its quick codec section only: the full run is not a test),
and so does one short run of the pool section."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def test_benchmark_command_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "codec", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "| Message encode, multipart" in done.stdout
    report = json.loads(out.read_text())
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


@pytest.mark.parametrize("module", ["benchmarks._node", "benchmarks._pool_node"])
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
