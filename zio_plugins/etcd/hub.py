"""The per-process hub: one etcd client, one lease, one watch, shared by every etcd Peer of a process.

Peers with equal options (endpoints, prefix, ttl, TLS files, user, password) attach to the
same :class:`Hub`, reference-counted in :data:`_hubs`. That registry is the etcd backend's
only global state (besides zio's plugin manager); it is keyed by process id too, so a
forked child never reuses its parent's connection.

One thread per hub owns the client and does every etcd call, so calls never race and the
peer table changes in one order: the order etcd's watch gives. Peers hand it requests
(register, unregister) and wait, each wait bounded. Watch responses, delivered by the
client library's own thread, are queued to the hub thread as well.

A connection (:meth:`Hub._connect`) is: a gRPC channel to one endpoint (authenticated
when a user is set); the hub's lease (kept if etcd still knows it, else a new one and
every local key put again); keys of Peers that stopped while etcd was away deleted; one
read of the prefix at revision R; a watch of the prefix from R + 1, so nothing between
the read and the watch is missed; local keys missing from the read put again; then the
read is compared with the table the Peers were last told about and only the differences
are reported. The first connection and every reconnection are the same code.
"""
from __future__ import annotations

import collections
import logging
import math
import os
import queue
import threading
import time
import uuid as uuidlib
from typing import Any, Protocol

from zio.discovery import ENTER, EXIT, UPDATE, PeerEvent, PeerInfo
from zio.errors import BackendError, MalformedError

from . import records
from .options import Endpoint, Options

log = logging.getLogger("zio_plugins.etcd")

#: Seconds the first connection of a Peer may take before start() raises BackendError.
START_BUDGET = 4.0
#: Reconnection backoff while etcd is away (seconds): doubles from MIN up to MAX.
BACKOFF_MIN = 0.1
BACKOFF_MAX = 2.0
#: gRPC channel options: read any response size (values are checked one by one instead).
GRPC_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]

_STOP = object()
_WATCH = "watch"


class Member(Protocol):
    """What the hub needs of a Peer's backend."""

    uuid: uuidlib.UUID
    key: bytes
    value: bytes
    active: bool

    def deliver(self, event: PeerEvent) -> None: ...


class _Request:
    """A register/unregister request handed to the hub thread; the caller waits on ``done``."""

    def __init__(self, kind: str, member: Member, deadline: float):
        self.kind = kind
        self.member = member
        self.deadline = deadline
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.abandoned = False

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


def _describe_error(err: BaseException | None) -> str:
    """A one-line reason for a client error (gRPC errors carry their status and details)."""
    if err is None:
        return "the watch stream ended"
    details = getattr(err, "details", None)
    code = getattr(err, "code", None)
    if callable(details) and callable(code):
        try:
            return f"{code().name}: {details()}"
        except Exception:  # a half-built gRPC error: fall back on its text
            pass
    text = str(err) or type(err).__name__
    return f"{type(err).__name__}: {text}" if text != type(err).__name__ else text


class Hub:
    """One etcd connection, lease and watch for every Peer of a process that uses the same options."""

    def __init__(self, options: Options):
        import grpc  # the extra; checked by the factory before a hub is built
        import pyetcd

        self._grpc = grpc
        self._pyetcd = pyetcd
        self.options = options
        self.refs = 0
        self.closing = False
        self._queue: queue.Queue[Any] = queue.Queue()
        self._members: dict[uuidlib.UUID, Member] = {}
        self._table: dict[uuidlib.UUID, PeerInfo] = {}
        self._orphans: set[bytes] = set()       # keys of Peers that stopped while etcd was away
        self._warned: set[bytes] = set()        # keys whose bad value was logged already
        self._client: Any = None
        self._endpoint: Endpoint | None = None
        self._endpoint_index = 0
        self._lease_id: int | None = None
        self._granted_ttl = options.ttl
        self._watch_gen = 0
        self._connected = False
        self._restore_keys = False
        self._next_keepalive = math.inf
        self._next_retry = math.inf
        self._backoff = BACKOFF_MIN
        self._outage_since: float | None = None
        self._last_error = "not tried yet"
        #: what the hub did, for tools and tests: clients (connections opened), leases
        #: (granted), watches (created), keepalives, resyncs, outages, bad_records
        self.stats: collections.Counter[str] = collections.Counter()
        self._thread = threading.Thread(target=self._run, name=f"zio-etcd-hub-{options.prefix}", daemon=True)
        self._thread.start()

    # -- called from other threads ---------------------------------------------------------
    def register(self, member: Member) -> None:
        """Put ``member``'s key and tell it every peer known; BackendError when etcd is unreachable."""
        req = _Request("register", member, time.monotonic() + START_BUDGET)
        if threading.current_thread() is self._thread:  # a Peer started from a listener
            self._handle_request(req)
        else:
            self._queue.put(req)
        if not req.done.wait(START_BUDGET + 0.8):
            with req.lock:
                if not req.done.is_set():
                    req.abandoned = True
                    raise BackendError(
                        f"etcd at {self.options.urls} did not answer within {START_BUDGET + 0.8:.1f} s "
                        f"({self._last_error}); set ZIO_ETCD_ENDPOINTS or endpoints= to a running etcd"
                    )
        if req.error is not None:
            raise req.error

    def unregister(self, member: Member) -> None:
        """Delete ``member``'s key (others see it leave at once); waits a bounded time."""
        member.active = False
        req = _Request("unregister", member, time.monotonic() + self.options.timeout)
        if threading.current_thread() is self._thread:  # a Peer stopped from a listener
            self._handle_request(req)
            return
        self._queue.put(req)
        req.done.wait(self.options.timeout + 0.5)

    def close(self) -> None:
        """Revoke the lease (if etcd is there) and end the thread; bounded."""
        self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(self.options.timeout + 1.0)

    def describe(self) -> dict[str, Any]:
        """Where the hub is connected, its lease and its counters."""
        return {
            "connected": self._connected,
            "endpoint": self._endpoint.url if self._endpoint and self._connected else None,
            "lease": f"{self._lease_id:x}" if self._lease_id else None,
            "ttl": self._granted_ttl,
            "peers_here": len(self._members),
            "stats": dict(self.stats),
        }

    # -- the hub thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._wait_seconds())
            except queue.Empty:
                item = None
            if item is _STOP:
                self._shutdown()
                return
            try:
                if isinstance(item, _Request):
                    self._handle_request(item)
                elif item is not None:
                    self._handle_watch(*item[1:])
                self._tick()
            except Exception:  # never let the thread die: Peers would stop hearing anything
                log.exception("etcd hub: unexpected error (continuing)")

    def _wait_seconds(self) -> float | None:
        now = time.monotonic()
        if self._connected:
            due = 0.0 if self._restore_keys else self._next_keepalive - now
        elif self._members:
            due = self._next_retry - now
        else:
            return None
        return max(0.0, due)

    def _tick(self) -> None:
        now = time.monotonic()
        if self._connected:
            if self._restore_keys:
                self._restore_keys = False
                self._keepalive(put_missing=True)
            elif now >= self._next_keepalive:
                self._keepalive()
        elif self._members and now >= self._next_retry:
            if self._attempt(now + self.options.timeout, tries=1):
                return
            self._next_retry = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    # -- requests --------------------------------------------------------------------------
    def _handle_request(self, req: _Request) -> None:
        member = req.member
        if req.kind == "unregister":
            self._members.pop(member.uuid, None)
            if self._connected:
                try:
                    self._set_timeout()
                    self._client.delete(member.key)
                except Exception as err:
                    self._orphans.add(member.key)
                    self._lost(err)
            else:
                self._orphans.add(member.key)
            req.done.set()
            return
        if not self._connected and not self._attempt(req.deadline, tries=len(self.options.endpoints)):
            req.fail(BackendError(
                f"cannot use etcd at {self.options.urls} ({self._last_error}); "
                "set ZIO_ETCD_ENDPOINTS or endpoints= to a running etcd (and its user/password or TLS files)"
            ))
            return
        try:
            self._set_timeout()
            self._client.put(member.key, member.value, lease=self._lease_id)
        except Exception as err:
            self._lost(err)
            req.fail(BackendError(f"etcd at {self.options.urls} failed to store the peer: {_describe_error(err)}"))
            return
        self._orphans.discard(member.key)
        with req.lock:
            if req.abandoned:  # the caller gave up waiting: take the key back
                self._orphans.add(member.key)
                self._restore_keys = True
                return
            self._members[member.uuid] = member
            known = dict(self._table)
            known.pop(member.uuid, None)  # a Peer does not hear of itself
            for info in known.values():
                self._deliver(member, PeerEvent(ENTER, info))
            req.done.set()

    # -- connection ---------------------------------------------------------------------------
    def _set_timeout(self, deadline: float | None = None) -> None:
        """Give the next client call the normal timeout, or what is left before ``deadline``."""
        timeout = self.options.timeout
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0.01:
                raise TimeoutError("out of time")
            timeout = min(timeout, left)
        self._client.timeout = timeout

    def _make_client(self, endpoint: Endpoint, deadline: float) -> Any:
        pyetcd = self._pyetcd
        creds = None
        if endpoint.secure:
            creds = pyetcd.MultiEndpointEtcd3Client.get_secure_creds(
                self.options.ca_cert, self.options.cert_key, self.options.cert_cert
            ) if self.options.ca_cert else self._grpc.ssl_channel_credentials()
        ep = pyetcd.Endpoint(endpoint.host, endpoint.port, secure=endpoint.secure, creds=creds, opts=GRPC_OPTIONS)
        try:
            left = deadline - time.monotonic()
            if left <= 0.01:
                raise TimeoutError("out of time")
            client = pyetcd.MultiEndpointEtcd3Client(
                endpoints=[ep], timeout=min(self.options.timeout, left),
                user=self.options.user, password=self.options.password,
            )
            # The client sends the auth token twice: as plain metadata and as gRPC call
            # credentials, which gRPC refuses on a plaintext channel ("does not have a
            # sufficient security level"). The metadata alone is what etcd reads.
            client.call_credentials = None
            return client
        except BaseException:
            ep.close()
            raise

    def _attempt(self, deadline: float, tries: int) -> bool:
        """Try up to ``tries`` endpoints (from the last good one) before ``deadline``."""
        endpoints = self.options.endpoints
        for i in range(tries):
            if time.monotonic() >= deadline - 0.01:
                break
            index = (self._endpoint_index + i) % len(endpoints)
            try:
                self._connect(endpoints[index], deadline)
            except Exception as err:
                self._last_error = f"{endpoints[index].url}: {_describe_error(err)}"
                log.debug("etcd: connecting to %s failed: %s", endpoints[index].url, self._last_error)
                self._drop_client()
                continue
            self._endpoint_index = index
            return True
        self._endpoint_index = (self._endpoint_index + max(1, tries)) % len(endpoints)
        return False

    def _connect(self, endpoint: Endpoint, deadline: float) -> None:
        self._client = client = self._make_client(endpoint, deadline)
        self.stats["clients"] += 1
        prefix = self.options.prefix
        lease_ok = False
        if self._lease_id is not None:
            self._set_timeout(deadline)
            answers = list(client.refresh_lease(self._lease_id))
            lease_ok = bool(answers) and answers[0].TTL > 0
        if not lease_ok:
            self._set_timeout(deadline)
            lease = client.lease(self.options.ttl)
            self._lease_id, self._granted_ttl = lease.id, lease.ttl
            self.stats["leases"] += 1
            for member in list(self._members.values()):
                self._set_timeout(deadline)
                client.put(member.key, member.value, lease=self._lease_id)
        for key in list(self._orphans):
            self._set_timeout(deadline)
            client.delete(key)
            self._orphans.discard(key)
        for _ in range(3):
            self._set_timeout(deadline)
            response = client.get_prefix_response(prefix)
            revision = response.header.revision
            fresh: dict[uuidlib.UUID, PeerInfo] = {}
            stored: dict[uuidlib.UUID, bytes] = {}
            for kv in response.kvs:
                info = self._decode(kv.key, kv.value)
                if info is not None:
                    fresh[info.uuid] = info
                    stored[info.uuid] = kv.value
            self._watch_gen += 1
            gen = self._watch_gen
            self._set_timeout(deadline)
            try:
                client.add_watch_prefix_callback(
                    prefix, lambda response, gen=gen: self._queue.put((_WATCH, gen, response)),
                    start_revision=revision + 1,
                )
            except self._pyetcd.exceptions.RevisionCompactedError as err:
                # compacted between the read and the watch: the watch cannot start there
                log.info("etcd compacted to revision %s right after the read at %s: reading again",
                         err.compacted_revision, revision)
                self.stats["compacted"] += 1
                continue
            break
        else:
            raise RuntimeError("etcd compacts the history faster than zio can read and watch it")
        self.stats["watches"] += 1
        for member in list(self._members.values()):
            if stored.get(member.uuid) != member.value:
                self._set_timeout(deadline)
                client.put(member.key, member.value, lease=self._lease_id)
        client.timeout = self.options.timeout
        self._endpoint = endpoint
        self._connected = True
        self._backoff = BACKOFF_MIN
        self._next_keepalive = time.monotonic() + self._granted_ttl / 3.0
        if self._outage_since is not None:
            log.info("etcd back at %s after %.1f s; peers re-registered and re-read",
                        endpoint.url, time.monotonic() - self._outage_since)
            self._outage_since = None
        self._resync(fresh)

    def _resync(self, fresh: dict[uuidlib.UUID, PeerInfo]) -> None:
        """Report the differences between what Peers were told and what etcd holds now."""
        self.stats["resyncs"] += 1
        old = self._table
        for uuid, info in fresh.items():
            before = old.get(uuid)
            if before != info:
                self._fan_out(PeerEvent(ENTER if before is None else UPDATE, info))
        merged = dict(fresh)
        for uuid, info in old.items():
            if uuid in fresh:
                continue
            if uuid in self._members:
                merged[uuid] = info  # ours, put again just now
            else:
                self._fan_out(PeerEvent(EXIT, info))
        self._table = merged

    def _keepalive(self, put_missing: bool = False) -> None:
        client = self._client
        try:
            self._set_timeout()
            answers = list(client.refresh_lease(self._lease_id))
            self.stats["keepalives"] += 1
            if not answers or answers[0].TTL <= 0:
                log.warning("etcd lease %x expired: granting a new one and storing %d peer(s) again",
                            self._lease_id, len(self._members))
                lease = client.lease(self.options.ttl)
                self._lease_id, self._granted_ttl = lease.id, lease.ttl
                self.stats["leases"] += 1
                put_missing = True
                missing = list(self._members.values())
            else:
                missing = [m for m in self._members.values() if m.uuid not in self._table]
            if put_missing:
                for member in missing:
                    client.put(member.key, member.value, lease=self._lease_id)
        except Exception as err:
            self._lost(err)
            return
        self._next_keepalive = time.monotonic() + self._granted_ttl / 3.0

    def _lost(self, err: BaseException | None) -> None:
        """etcd went away: keep the table, warn once per outage, reconnect with backoff."""
        if self._connected:
            self._connected = False
            self._outage_since = time.monotonic()
            self.stats["outages"] += 1
            log.warning(
                "etcd at %s lost (%s): keeping the last %d peer(s), reconnecting with backoff (endpoints %s)",
                self._endpoint.url if self._endpoint else "?", _describe_error(err),
                len(self._table), self.options.urls,
            )
        self._last_error = _describe_error(err)
        self._drop_client()
        self._next_retry = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    def _drop_client(self) -> None:
        self._watch_gen += 1  # responses of the old watch are ignored from now on
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken channel may complain; it is closed all the same
                log.debug("etcd: closing the client failed", exc_info=True)

    def _shutdown(self) -> None:
        if self._connected and self._lease_id is not None:
            try:
                self._client.timeout = min(self.options.timeout, 1.0)
                self._client.revoke_lease(self._lease_id)
            except Exception as err:
                log.debug("etcd: revoking lease %x failed: %s", self._lease_id, _describe_error(err))
        self._connected = False
        self._drop_client()

    # -- the watch -------------------------------------------------------------------------------
    def _handle_watch(self, gen: int, response: Any) -> None:
        if gen != self._watch_gen or not self._connected:
            return  # a watch of an earlier connection
        if response is None or isinstance(response, BaseException):
            if isinstance(response, self._pyetcd.exceptions.RevisionCompactedError):
                # the history we watch from is gone: read everything again, at once, quietly
                log.info("etcd watch fell behind compaction (revision %s): reading again",
                         response.compacted_revision)
                self.stats["compacted"] += 1
                self._connected = False
                self._drop_client()
                self._next_retry = time.monotonic()
                return
            self._lost(response)
            return
        delete_type = self._pyetcd.events.DeleteEvent
        for event in response.events:
            key = bytes(event.key)
            if isinstance(event, delete_type):
                self._warned.discard(key)
                try:
                    uuid = records.uuid_of(self.options.prefix, key)
                except MalformedError:
                    continue
                info = self._table.pop(uuid, None)
                if info is not None:
                    self._fan_out(PeerEvent(EXIT, info))
                if uuid in self._members:
                    self._restore_keys = True  # deleted by someone else, or the lease expired
                continue
            info = self._decode(key, bytes(event.value))
            if info is None:
                continue
            before = self._table.get(info.uuid)
            if before == info:
                continue
            self._table[info.uuid] = info
            self._fan_out(PeerEvent(ENTER if before is None else UPDATE, info))

    def _decode(self, key: bytes, value: bytes) -> PeerInfo | None:
        try:
            return records.decode(self.options.prefix, key, value)
        except MalformedError as err:
            self.stats["bad_records"] += 1
            if key not in self._warned:
                self._warned.add(key)
                log.warning("etcd: skipping a key that is not a zio peer: %s", err)
            return None

    # -- reporting ---------------------------------------------------------------------------------
    def _fan_out(self, event: PeerEvent) -> None:
        """Tell every local Peer but the one the event is about.

        Per event one dict lookup rather than a UUID comparison per Peer: the 100 Peers of a
        process hear about 100 000 events on the way to 1000 nodes (``python -m benchmarks``).
        """
        own = self._members.get(event.peer.uuid)
        deliver = self._deliver
        for member in list(self._members.values()):
            if member is not own:
                deliver(member, event)

    @staticmethod
    def _deliver(member: Member, event: PeerEvent) -> None:
        if not member.active:
            return
        try:
            member.deliver(event)
        except Exception:
            log.exception("etcd: reporting %s of %s failed", event.kind, event.peer.nick)


# -- the per-process registry ------------------------------------------------------------------

_hubs: dict[tuple[int, Options], Hub] = {}
_hubs_lock = threading.Lock()


def acquire(options: Options) -> Hub:
    """The hub of this process for ``options`` (created on first use); pair with :func:`release`."""
    key = (os.getpid(), options)
    with _hubs_lock:
        hub = _hubs.get(key)
        if hub is None:
            hub = _hubs[key] = Hub(options)
        hub.refs += 1
        return hub


def release(hub: Hub) -> None:
    """Drop one reference; the last one revokes the lease and ends the hub's thread."""
    with _hubs_lock:
        hub.refs -= 1
        last = hub.refs <= 0
        if last:
            hub.closing = True
            for key, known in list(_hubs.items()):
                if known is hub:
                    del _hubs[key]
    if last:
        hub.close()


def hubs() -> list[Hub]:
    """The hubs of this process (for tools and tests)."""
    with _hubs_lock:
        return [hub for (pid, _), hub in _hubs.items() if pid == os.getpid()]
