"""Backend "etcd": peers found through an etcd cluster, past one broadcast domain.

Install with ``pip install 'zio[etcd]'`` (the gRPC client ``etcd-sdk-python``, its
``grpcio``, and ``protobuf``, which it imports without declaring it). This module imports
without them; only the factory needs them.

Options (keyword arguments of ``zio.make_backend("etcd", ...)``, else the environment):

=============  ========================  ===============================================
``endpoints``  ``$ZIO_ETCD_ENDPOINTS``   list, or comma-separated ``http(s)://host:port``
                                         (default ``http://127.0.0.1:2379``)
``prefix``     ``$ZIO_ETCD_PREFIX``      key prefix (default ``/zio/``)
``ttl``        ``$ZIO_ETCD_TTL``         lease seconds (default 2)
``ca_cert``    ``$ZIO_ETCD_CA_CERT``     CA file for https endpoints (else system roots)
``cert_cert``  ``$ZIO_ETCD_CERT``        client certificate (with ``cert_key``)
``cert_key``   ``$ZIO_ETCD_KEY``         client key
``user``       ``$ZIO_ETCD_USER``        etcd user (with ``password``)
``password``   ``$ZIO_ETCD_PASSWORD``
``interface``  ``$ZIO_INTERFACE``        pins the address ports bind to
``timeout``                              seconds per etcd call (default 2.0)
=============  ========================  ===============================================

What is stored. Each Peer puts one key ``<prefix><uuid>`` whose value is the JSON object
``{"nick": ..., "headers": {...}}``. Anything else under the prefix (another program's
keys, bad JSON, wrong types, values over 64 kB) is logged once per key and skipped.

Where ports bind (``bind_host``). The local address of the route toward the first
endpoint (a UDP socket's ``connect()`` picks it; nothing is sent), so a node on subnet A
advertises the address that a node on subnet B, which reaches the same etcd, can route
to. ``interface``/``$ZIO_INTERFACE`` pins it instead.

One hub per process (:mod:`.hub`). Peers of one process with the same options share one
gRPC channel (one TCP connection to one endpoint), one watch of the prefix, and **one
lease**, kept alive every ttl/3 by one thread. 1000 Peers in 10 processes are 10
connections, 10 watches and 10 leases for etcd, not 1000 of each. One lease per process
rather than per Peer because a lease stands for what can die, and what dies is a process
(killed) or its host (cut off): all the Peers of a process go at once either way, and
per-Peer leases would multiply keep-alive traffic by the number of Peers for nothing.
A Peer that stops deletes its own key (the others see it leave as soon as the watch
delivers the delete: milliseconds); the last Peer of the hub revokes the lease. The hub
registry is the one piece of global state of the backend (besides zio's plugin
manager); it is reference-counted and keyed by process id.

Liveness. A killed process or a cut-off host stops refreshing the lease; etcd deletes
the keys when it expires: ttl (2 s) after the last refresh plus etcd's expiry check
(every 0.5 s), so at most about 2.5 s with the defaults. etcd grants no lease under 2 s
with its default 1 s election timeout (asked for 1 s, etcd 3.5.1 grants 2).

Watch. The hub reads the prefix once at revision R and watches from R + 1, so no peer
that comes or goes between the read and the watch is missed. If etcd compacted its
history past R + 1 meanwhile, it cancels the watch; the hub then reads again (quietly,
at INFO) and reports only the differences.

Faults. etcd unreachable when a Peer starts: ``BackendError`` naming the endpoints
within 5 s (4 s budget, calls bounded by ``timeout``). etcd lost while running (the
watch stream breaks, or a keep-alive fails): the Peers keep their table, the hub logs
ONE warning (and one INFO line when etcd is back), and retries the endpoints in turn
with backoff (0.1 s doubling to 2 s). When one answers (etcd restarted on its data
dir, or another cluster member), the hub
keeps its lease if etcd still has it (else grants a new one and puts every local key
again), deletes the keys of Peers that stopped meanwhile, reads again, watches again,
and reports only what changed. ``stop()`` waits at most ``timeout + 0.5`` s for the hub,
so nothing hangs at exit while etcd is away; an unrevoked lease expires by itself.
"""
from __future__ import annotations

from typing import Any, Mapping

from zio.discovery import Discovery
from zio.errors import BackendError
from zio.hookspecs import hookimpl

EXTRA_HINT = "pip install 'zio[etcd]'"


def create(**options: Any) -> Discovery:
    """Build an etcd backend; BackendError naming the extra when the client library is missing."""
    try:
        import grpc  # noqa: F401
        import pyetcd  # noqa: F401
    except ImportError as err:
        raise BackendError(
            f"discovery backend 'etcd' needs the etcd client etcd-sdk-python ({err}); install it with: {EXTRA_HINT}"
        ) from err
    from .backend import EtcdDiscovery

    return EtcdDiscovery(**options)


@hookimpl
def zio_discovery_backends() -> Mapping[str, Any]:
    """The built-in "etcd" backend (its factory imports the client lazily)."""
    return {"etcd": create}
