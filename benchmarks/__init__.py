"""zio benchmarks: every target of DESIGN.md beside its anchor, measured in one run.

Run ``python -m benchmarks`` from the repository root (see ``benchmarks/README.md``).
The package isolates itself in a private network namespace before any socket or thread
exists; discovery benchmarks refuse to run when that fails.
"""
