"""The benchmark command runs (its quick codec section only: the full run is not a test)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)


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
