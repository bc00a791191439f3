"""A newcomer's first look around: one DNS-SD query from an ephemeral port, answered by unicast.

Why not just let the ServiceBrowser ask? Its first query goes out after a random 20-120 ms
with the unicast-response ("QU") bit set, from port 5353. zeroconf responders answer a QU
question by *unicast to port 5353* of the asking host. When several mDNS sockets share port
5353 on that host (several zio processes, or avahi), the kernel hands such a unicast packet
to exactly one of them, not necessarily the asker (RFC 6762 section 15.1; on Linux,
SO_REUSEPORT picks the socket by a hash of the addresses, so every answer of a round goes
to the same, possibly wrong, process). The asker then learns nothing until its second
query, one second later, and the multicast answers to that one may be held back another
second by the rule that a record is multicast at most once a second (section 6).

A one-shot query from an ephemeral port (RFC 6762 section 5.1) has neither problem:
responders answer it at once, by unicast to that port, which only the asker holds. So each
new Peer opens a second, unicast-only zeroconf instance on its interface, sends one PTR
query for ``_zio._tcp.local.`` straight away, hands every complete answer (PTR plus the
SRV, TXT and A records that zeroconf responders put beside it) to a callback, and closes
that instance after ``window`` seconds. The backend's main zeroconf instance keeps
browsing as before and takes over (updates, goodbyes).
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from zeroconf import (
    DNSOutgoing,
    DNSQuestion,
    IPVersion,
    RecordUpdate,
    RecordUpdateListener,
    ServiceInfo,
    Zeroconf,
)

log = logging.getLogger(__name__)

TYPE_PTR = 12  # DNS record type PTR (RFC 1035)
CLASS_IN = 1  # DNS class IN
FLAGS_QUERY = 0  # DNS header flags of a standard query (QR bit clear)


class OneShotQuery(RecordUpdateListener):
    """One immediate PTR query from an ephemeral port; complete answers go to ``found(name, info)``.

    ``found`` runs in zeroconf's event loop thread of the one-shot instance: it must be quick
    and must not raise. ``start()`` never raises: a one-shot that cannot run only costs speed
    (the main browser still finds every peer).
    """

    def __init__(self, address: str, service_type: str, found: Callable[[str, ServiceInfo], None], window: float):
        super().__init__()
        self.address = address
        self.service_type = service_type
        self.found = found
        self.window = window
        self.zeroconf: Zeroconf | None = None
        self._names: set[str] = set()  # answered in the packet being processed
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Open the unicast instance, send the query at once, and close again after ``window`` s."""
        try:
            zc = Zeroconf(interfaces=[self.address], unicast=True, ip_version=IPVersion.V4Only)
        except Exception as err:  # noqa: BLE001 - the main browser still works
            log.warning("mdns: one-shot query not sent (no socket on %s: %s)", self.address, err)
            return
        with self._lock:
            if self._closed:
                zc.close()
                return
            self.zeroconf = zc
            self._timer = threading.Timer(self.window, self.close)
            self._timer.daemon = True
        # both are queued to zeroconf's loop in this order: the listener is in before any answer
        zc.add_listener(self, None)
        # The question carries the unicast-response (QU) bit. It changes nothing for the
        # answers (a query from a port other than 5353 is answered by unicast to that port
        # anyway), but zeroconf (a) never ignores a packet with a QU question as a duplicate
        # of one seen in the last 800 ms, so two newcomers starting together are both
        # answered, and (b) keeps QU questions out of its duplicate-question history, so our
        # own main browser, which hears this query too, still sends its first query.
        question = DNSQuestion(self.service_type, TYPE_PTR, CLASS_IN)
        question.unicast = True
        out = DNSOutgoing(FLAGS_QUERY)
        out.add_question(question)
        zc.send(out)
        self._timer.start()

    def close(self) -> None:
        """Close the unicast instance; idempotent, from any thread but its own loop's."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            zc, self.zeroconf = self.zeroconf, None
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        if zc is not None:
            try:
                zc.close()
            except Exception as err:  # noqa: BLE001 - closing must not fail
                log.debug("mdns: closing the one-shot instance failed: %s", err)

    # -- zeroconf's RecordUpdateListener, in the one-shot instance's loop ------------------
    def async_update_records(self, zc: Zeroconf, now: float, records: list[RecordUpdate]) -> None:
        """Note the service instances named by PTR answers (the cache is filled afterwards)."""
        suffix = "." + self.service_type.lower()
        for update in records:
            record = update.new
            if record.type == TYPE_PTR and record.ttl > 0 and record.name.lower() == self.service_type.lower():
                alias = getattr(record, "alias", "")
                if alias.lower().endswith(suffix):
                    self._names.add(alias)

    def async_update_records_complete(self) -> None:
        """The packet is in the cache: hand on each named instance whose records are all there."""
        names, self._names = self._names, set()
        zc = self.zeroconf
        if zc is None:
            return
        for name in names:
            info = ServiceInfo(self.service_type, name)
            if info.load_from_cache(zc):
                self.found(name, info)
            else:  # the main browser resolves it
                log.debug("mdns: one-shot answer for %s came without its records", name)


__all__ = ["OneShotQuery"]
