"""A third-party zio plugin used by the tests: backend "memory", peers meet inside one process.

It is found only through its entry point (see the dist-info beside it), exactly as an
installed package would be.
"""
from __future__ import annotations

import threading

import zio

_lock = threading.Lock()
_members: dict = {}  # uuid -> (PeerInfo, report)


class MemoryDiscovery(zio.Discovery):
    """Every MemoryDiscovery in the process sees every other one, at once."""

    name = "memory"

    def __init__(self, **options):
        self.options = options
        self.uuid = None

    def start(self, uuid, nickname, headers, report):
        me = zio.PeerInfo(uuid, nickname, dict(headers))
        with _lock:
            others = list(_members.values())
            _members[uuid] = (me, report)
        self.uuid = uuid
        for info, their_report in others:
            their_report(zio.PeerEvent(zio.ENTER, me))
            report(zio.PeerEvent(zio.ENTER, info))

    def stop(self):
        with _lock:
            entry = _members.pop(self.uuid, None)
            others = list(_members.values())
        if entry is not None:
            for _, their_report in others:
                their_report(zio.PeerEvent(zio.EXIT, entry[0]))


@zio.hookimpl
def zio_discovery_backends():
    return {"memory": MemoryDiscovery}
