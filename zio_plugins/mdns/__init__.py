"""Backend "mdns": DNS-SD over multicast DNS (python-zeroconf), with liveness over ZeroMQ.

Install with ``pip install 'zio[mdns]'``; this module imports without zeroconf and only
the factory needs it. Each peer registers one ``_zio._tcp.local.`` instance named
``<nickname>-<12 hex digits of its UUID>`` with its nickname, UUID, liveness endpoint and
headers in TXT (layout and split rule: :mod:`zio_plugins.mdns.txt`).

Options (keyword arguments of ``zio.make_backend("mdns", ...)``):

=============  =====================  ==============================================
``interface``  ``$ZIO_INTERFACE``     name, address, ``localhost`` or ``subnet``
``heartbeat``                         seconds between ZMTP heartbeats (default 1.0)
``expired``                           silence after a heartbeat before a peer is
                                      gone (default 3.0 s)
``max_peers``                         most remote services watched at a time (default
                                      0: what the fd budget allows, see liveness)
``max_msg_size``                      ZMQ_MAXMSGSIZE of liveness sockets (256 bytes)
=============  =====================  ==============================================

No probing. RFC 6762 has a responder probe its names for about 1.2 s before it
announces them; python-zeroconf's ``register_service`` does that (plus a random
150-250 ms). zio's instance names embed 48 bits of the peer's random UUID, so they are
unique by construction, and the backend registers with ``cooperating_responders=True``,
which in zeroconf skips the probe and announces at once (the same option zeroconf offers
for responders that share names on purpose). A new peer is seen in milliseconds, not
1.2 s. The rare clash (two live peers with the same nickname and UUID prefix, about
one chance in 2**48 per pair) is not detected; peers are told apart by the full UUID
in TXT all the same.

Newcomers. A new peer finds the peers already running with one query sent at once from
an ephemeral port, which responders answer by unicast to that port alone
(:mod:`zio_plugins.mdns.oneshot`): answers to a query from port 5353 with the QU bit,
zeroconf's default first query, go to whichever process on the host the kernel picks
when several share port 5353 (RFC 6762 section 15.1). The main browser asks QM
questions (multicast answers, which every process receives).

Liveness. mDNS only forgets a crashed responder when its records expire (minutes), so
each peer binds a ZeroMQ ROUTER whose address is in TXT; every observer connects a
DEALER to it and watches the connection (:mod:`zio_plugins.mdns.liveness`). A peer enters
once that connection is up and the peer answered with its UUID; it leaves on an mDNS
goodbye, when the connection closes (killed process: at once), or when ZMTP heartbeats
go unanswered (cut host: within ``heartbeat + expired`` = 4 s).

One backend per Peer. A Peer is fed by exactly one backend, and a backend object
serves one Peer. A program that wants to be found both by ZRE beacons and by mDNS
creates two Peers (or two Nodes), one per backend. A composite backend would have to
merge one remote program seen twice under two UUIDs (the UUID is per Peer) and pick one
``bind_host`` for two interfaces; neither has a right answer in general, so zio does
not guess.
"""
from __future__ import annotations

from typing import Any, Mapping

from zio.discovery import Discovery
from zio.errors import BackendError
from zio.hookspecs import hookimpl

EXTRA_HINT = "pip install 'zio[mdns]'"


def create(**options: Any) -> Discovery:
    """Build an mdns backend; BackendError naming the extra when zeroconf is missing."""
    try:
        from .backend import MdnsDiscovery
    except ImportError as err:
        raise BackendError(
            f"discovery backend 'mdns' needs python-zeroconf ({err}); install it with: {EXTRA_HINT}"
        ) from err
    return MdnsDiscovery(**options)


@hookimpl
def zio_discovery_backends() -> Mapping[str, Any]:
    """The built-in "mdns" backend (its factory imports zeroconf lazily)."""
    return {"mdns": create}
