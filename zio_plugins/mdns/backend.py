"""The "mdns" backend proper: python-zeroconf advertises and browses, the liveness engine watches.

This module imports zeroconf at the top; :mod:`zio_plugins.mdns` imports it only when a
user picks the backend, so zio works without the extra installed.
"""
from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import ipaddress
import itertools
import logging
import re
import threading
import uuid as uuidlib
from typing import Any, Mapping, cast

from zeroconf import DNSQuestionType, IPVersion, ServiceBrowser, ServiceInfo, ServiceListener, Zeroconf

from zio.discovery import Discovery, Reporter
from zio.errors import ConfigurationError, DiscoveryError, MalformedError
from zio.interfaces import Interface, select_interface

from . import txt
from .liveness import MAX_MSG_SIZE, Engine, Limits, Timing
from .oneshot import OneShotQuery

log = logging.getLogger(__name__)

SERVICE_TYPE = "_zio._tcp.local."
MAX_LABEL = 63
SHORT_UUID = 12  # hex digits of the UUID in the instance name
RESOLVE_TIMEOUT_MS = 1500
REGISTER_TIMEOUT_S = 5.0
ONESHOT_WINDOW_S = 2.0  # how long a new Peer listens for answers to its one-shot query
MAX_RESOLVING = 64  # resolves in flight at once; more records wait (in order) for a free slot
MAX_WAITING = 4096  # names waiting to be resolved; past that the oldest waits for its next update


def instance_label(nickname: str, uuid: uuidlib.UUID) -> str:
    """The DNS-SD instance name of a peer: its nickname (letters, digits, '-') plus a short UUID."""
    nick = re.sub(r"[^A-Za-z0-9]+", "-", nickname).strip("-") or "zio"
    suffix = "-" + uuid.hex[:SHORT_UUID]
    return nick[: MAX_LABEL - len(suffix)].rstrip("-") + suffix


class _Listener:
    """zeroconf's ServiceListener: runs in zeroconf's browser thread and never blocks it.

    A record whose SRV, TXT and A records are all cached (zeroconf responders send them
    beside the PTR) is handled at once. Otherwise it is resolved by ``async_request`` on
    zeroconf's event loop, concurrently with any other, and handled when that ends; a
    generation count per name drops a result that a later add, update or removal of the
    same name has overtaken. Before, each service was resolved in this thread, one after
    the other, each waiting up to 1.5 s.
    """

    def __init__(self, backend: "MdnsDiscovery"):
        self.backend = backend
        self._generation: dict[str, int] = {}  # name -> generation of its latest resolve
        self._counter = itertools.count(1)  # generations are never reused
        self._lock = threading.Lock()
        self._resolving = 0  # resolves in flight (a flood of records must not queue thousands)
        self._futures: set[concurrent.futures.Future] = set()
        self._waiting: "collections.OrderedDict[str, tuple[Zeroconf, str]]" = collections.OrderedDict()

    def cancel_all(self) -> None:
        """Cancel the resolves in flight (at stop: zeroconf's loop ends, their tasks must not dangle)."""
        with self._lock:
            futures, self._futures = self._futures, set()
            self._waiting.clear()
        for future in futures:
            future.cancel()

    def _next_generation(self, name: str) -> int:
        with self._lock:
            generation = self._generation[name] = next(self._counter)
            return generation

    def _current(self, name: str, generation: int) -> bool:
        with self._lock:
            return self._generation.get(name) == generation

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        """A service of our type appeared."""
        self._resolve(zc, type_, name)

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        """A service of our type changed or was refreshed."""
        self._resolve(zc, type_, name)

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        """A service of our type said goodbye or expired."""
        with self._lock:
            self._generation.pop(name, None)  # a resolve still running is out of date
        engine = self.backend.engine
        if engine is not None:
            engine.lose(name)

    def _resolve(self, zc: Zeroconf, type_: str, name: str) -> None:
        backend = self.backend
        if backend.engine is None or backend.stopping or name == backend.service_name:
            return
        generation = self._next_generation(name)
        try:
            info = ServiceInfo(type_, name)
            if info.load_from_cache(zc):
                backend.accept(name, info)
                return
            loop = zc.loop
            if loop is None or not loop.is_running() or backend.stopping:
                return  # stopping: nothing more to resolve
            with self._lock:
                if self._resolving >= MAX_RESOLVING:
                    self._waiting.pop(name, None)
                    self._waiting[name] = (zc, type_)
                    while len(self._waiting) > MAX_WAITING:
                        self._waiting.popitem(last=False)
                    return
                self._resolving += 1
            try:
                # multicast answers (QM): a unicast one could be handed to another process
                coro = info.async_request(zc, RESOLVE_TIMEOUT_MS, question_type=DNSQuestionType.QM)
                future = asyncio.run_coroutine_threadsafe(coro, loop)
            except BaseException:
                with self._lock:
                    self._resolving -= 1
                raise
        except Exception:  # never let a record break zeroconf's thread
            if not backend.stopping:  # (a resolve racing stop() fails: no news)
                log.exception("mdns: failed to resolve %r", name)
            return

        def done(future: concurrent.futures.Future) -> None:
            with self._lock:
                self._resolving -= 1
                self._futures.discard(future)
                following = self._waiting.popitem(last=False) if self._waiting else None
            if following is not None:  # a slot is free: the next waiting name
                self._resolve(following[1][0], following[1][1], following[0])
            try:
                complete = not future.cancelled() and future.exception() is None and future.result()
            except Exception:  # noqa: BLE001 - reported below
                complete = False
            if not self._current(name, generation) or self.backend.stopping:
                return  # overtaken by a later add, update or removal, or we stop
            if complete:
                self.backend.accept(name, info)
            else:
                log.debug("mdns: %s did not resolve within %d ms", name, RESOLVE_TIMEOUT_MS)

        with self._lock:
            self._futures.add(future)
        future.add_done_callback(done)


class MdnsDiscovery(Discovery):
    """Discovery by DNS-SD over mDNS (python-zeroconf), with liveness over ZeroMQ."""

    name = "mdns"
    #: Running peers answer a newcomer's first query within a few ms (the one-shot unicast
    #: query) or, multicast, after RFC 6762's 20-120 ms delay: wait that long for more.
    settle_ms = 150.0

    def __init__(
        self,
        interface: str | None = None,
        heartbeat: float = 1.0,
        expired: float = 3.0,
        max_peers: int = 0,
        max_msg_size: int = MAX_MSG_SIZE,
    ):
        self.interface: Interface = select_interface(interface)
        if not 0 < heartbeat < expired:
            raise ConfigurationError(f"mdns timing needs 0 < heartbeat < expired, got {heartbeat}, {expired}")
        self.timing = Timing(heartbeat=heartbeat, expired=expired)
        for option, value, least in (("max_peers", max_peers, 0), ("max_msg_size", max_msg_size, 17)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigurationError(f"mdns {option} must be an int >= {least}, got {value!r}")
        self.limits = Limits(max_remotes=max_peers, max_msg_size=max_msg_size)
        self.engine: Engine | None = None
        self.zeroconf: Zeroconf | None = None
        self.browser: ServiceBrowser | None = None
        self.listener: _Listener | None = None
        self.oneshot: OneShotQuery | None = None
        self._warned: set[tuple[str, int]] = set()  # (name, hash of TXT) already logged as dropped
        self._warned_lock = threading.Lock()
        self.info: ServiceInfo | None = None
        self.service_name: str | None = None
        self._announcing: Any = None
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self.security: Any = None

    def use_security(self, security: Any) -> bool:
        """Secure mode (issue 12): the key travels in TXT (header ``X-PUBLICKEY``), the liveness
        socket is a CURVE server behind the ZAP allow-list, and observers dial it as CURVE
        clients expecting the key in TXT: the liveness handshake proves the key, the UUID
        answer ties it to the record. Returns True: this backend proves keys itself."""
        self.security = security
        return True

    def refused_peers(self) -> list:
        """Secure mode: peers refused (uuid, Z85 key, why), for ``zio peers``."""
        return self.engine.refused_peers() if self.engine is not None else []

    @property
    def stopping(self) -> bool:
        """True from the moment stop() begins: zeroconf callbacks then do nothing."""
        return self._stopped

    @property
    def bind_host(self) -> str:
        """Ports bind on the discovery interface's address, where peers can reach them."""
        return self.interface.address

    def check_range(self, record: txt.PeerRecord) -> None:
        """Raise MalformedError when a peer's liveness address is not on our interface's network."""
        host, _, port = record.live[len("tcp://"):].rpartition(":")
        try:
            address = ipaddress.IPv4Address(host)
            if not 0 < int(port) < 65536:
                raise ValueError(port)
        except ValueError:
            raise MalformedError(f"liveness endpoint {record.live!r} is not tcp://<IPv4>:<port>") from None
        if address not in self.interface.network:
            raise MalformedError(f"liveness endpoint {record.live} is not on {self.interface.network}")

    def accept(self, name: str, info: ServiceInfo) -> None:
        """Hand a resolved record to the engine, or drop and log it (once) if it is not a good one.

        Called from zeroconf's threads (browser thread, event loops): never raises.
        """
        engine = self.engine
        if engine is None or name == self.service_name:
            return
        try:
            size = len(info.text or b"")
            if size > txt.MAX_TXT_BYTES:  # refused before any parsing: no zio peer sends one
                raise MalformedError(f"TXT record of {size} bytes, more than {txt.MAX_TXT_BYTES}")
            record = txt.decode(info.properties)
            self.check_range(record)
        except MalformedError as err:
            key = (name, hash(bytes(info.text or b"")))
            with self._warned_lock:
                fresh = key not in self._warned
                if fresh:
                    if len(self._warned) >= 1000:
                        self._warned.clear()  # bounded, whatever a noisy network sends
                    self._warned.add(key)
            if fresh:
                log.warning("mdns: dropped the record of %r: %s", name, err)
            engine.lose(name)
            return
        except Exception:  # never let a record break zeroconf's threads
            log.exception("mdns: failed to handle the record of %r", name)
            return
        engine.see(name, record)

    # -- life cycle ---------------------------------------------------------------------
    def start(self, uuid: uuidlib.UUID, nickname: str, headers: Mapping[str, str], report: Reporter) -> None:
        """Bind the liveness socket, register our service (no probing) and browse for others."""
        with self._lock:
            if self._started:
                raise ConfigurationError("an mdns backend object serves one Peer; make a new one")
            self._started = True
        address = self.interface.address
        # validate the headers before opening anything
        txt.encode(txt.PeerRecord(uuid, nickname, f"tcp://{address}:65535", dict(headers)))
        self.engine = Engine(uuid, nickname, address, report, self.timing, self.limits, self.security)
        if self.security is not None:
            self.security.add_listener(self.engine.on_trust_change)
        label = instance_label(nickname, uuid)
        self.service_name = f"{label}.{SERVICE_TYPE}"
        record = txt.PeerRecord(uuid, nickname, self.engine.endpoint, dict(headers))
        self.info = ServiceInfo(
            SERVICE_TYPE,
            self.service_name,
            port=self.engine.port,
            properties=txt.encode_properties(record),
            server=f"zio-{uuid.hex}.local.",
            parsed_addresses=[address],
        )
        try:
            self.engine.start()
            self.zeroconf = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
            self._register()
            # QM: answers come by multicast, which every process on the host receives
            self.listener = _Listener(self)
            self.browser = ServiceBrowser(
                # _Listener has ServiceListener's methods (duck-typed, as zeroconf accepts)
                self.zeroconf, SERVICE_TYPE, cast(ServiceListener, self.listener), question_type=DNSQuestionType.QM
            )
            # and the peers already running answer this one at once, by unicast, to us alone
            self.oneshot = OneShotQuery(address, SERVICE_TYPE, self.accept, ONESHOT_WINDOW_S)
            self.oneshot.start()
        except Exception as err:
            self.stop()
            if isinstance(err, (ConfigurationError, DiscoveryError)):
                raise
            raise DiscoveryError(f"mdns discovery cannot start on {self.interface}: {err}") from err
        atexit.register(self.stop)
        log.info(
            "mdns discovery for %s on %s (%s) as %r, liveness %s",
            nickname, self.interface.name, address, self.service_name, self.engine.endpoint,
        )

    def _register(self) -> None:
        """Register without probing and return once the first announcement is queued."""
        zc, info = self.zeroconf, self.info
        assert zc is not None and zc.loop is not None and info is not None
        coro = zc.async_register_service(info, cooperating_responders=True)
        future = asyncio.run_coroutine_threadsafe(coro, zc.loop)
        # the announcements go on in zeroconf's loop; keep their task to cancel it at stop
        self._announcing = future.result(REGISTER_TIMEOUT_S)

    def _goodbye(self) -> None:
        """Send one goodbye packet for our service (TTL 0), from zeroconf's loop."""
        zc = self.zeroconf
        if zc is None or zc.loop is None or not zc.loop.is_running():
            return

        async def send() -> None:
            if self._announcing is not None:
                self._announcing.cancel()  # no announcement may follow the goodbye
            out = zc.generate_unregister_all_services()
            if out is not None:
                zc.async_send(out)

        try:
            asyncio.run_coroutine_threadsafe(send(), zc.loop).result(REGISTER_TIMEOUT_S)
        except Exception as err:  # stopping must not fail
            log.warning("mdns: goodbye not sent: %s", err)

    def stop(self) -> None:
        """Say goodbye (mDNS goodbye and closed liveness socket), then close everything; idempotent."""
        with self._lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
        atexit.unregister(self.stop)
        self._goodbye()
        if self.browser is not None and self.browser is not threading.current_thread():
            # its thread would outlive the Peer (one thread, about 60 kB, per stopped Peer)
            try:
                self.browser.cancel()
            except Exception as err:  # noqa: BLE001 - stopping must not fail
                log.debug("mdns: cancelling the browser failed: %s", err)
        if self.listener is not None:
            self.listener.cancel_all()
        if self.engine is not None:
            self.engine.stop()
        if self.oneshot is not None:
            self.oneshot.close()
        if self.zeroconf is not None:
            try:
                self.zeroconf.close()
            except Exception as err:
                log.warning("mdns: closing zeroconf failed: %s", err)

    def describe(self) -> dict[str, Any]:
        """Where this backend talks."""
        facts: dict[str, Any] = {
            "backend": self.name,
            "interface": self.interface.name,
            "address": self.interface.address,
            "service_type": SERVICE_TYPE,
        }
        if self.service_name is not None:
            facts["service"] = self.service_name
        if self.engine is not None:
            facts["liveness"] = self.engine.endpoint
        return facts


__all__ = ["MdnsDiscovery", "SERVICE_TYPE", "instance_label"]
