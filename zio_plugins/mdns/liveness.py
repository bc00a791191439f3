"""Liveness for mDNS peers over ZeroMQ: one thread owns every socket, fed through a queue.

Each peer binds a ROUTER "liveness" socket and advertises it in its TXT record. For every
zio record it sees, the observer connects a DEALER there with a socket monitor:

- when the ZMTP handshake succeeds, the DEALER asks ``?`` and the ROUTER answers with its
  16-byte UUID; only a matching answer makes the peer enter (a stale record whose port
  was reused by another process cannot bring a dead peer back);
- ``EVENT_DISCONNECTED`` makes the peer leave at once (a killed process closes its TCP
  connections; a stopped one closes its ROUTER);
- ZMTP heartbeats (PING every ``heartbeat`` s, disconnect after ``expired`` s without
  traffic) catch a host that went silent, within ``heartbeat + expired`` seconds;
- the DEALER keeps redialling (backing off up to 5 s) for as long as zeroconf keeps the
  record, so a peer whose host comes back enters again; a liveness socket that answers
  with another UUID (a stale record, its port reused) is hung up on until the record
  changes.

zeroconf's callbacks only put commands on the queue and wake the thread through a pipe:
no ZeroMQ socket is ever touched outside the engine's thread.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

import zmq
from zmq.utils.monitor import parse_monitor_message

from zio.discovery import ENTER, EXIT, STOPPED, PeerEvent, PeerInfo, Reporter
from zio.errors import DiscoveryError

from .txt import PeerRecord

log = logging.getLogger(__name__)

ASK = b"?"
_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED


@dataclass(frozen=True)
class Timing:
    """Liveness settings, in seconds."""

    heartbeat: float = 1.0  # ZMTP PING interval
    expired: float = 3.0  # silence after a PING before the connection is dropped
    reconnect_max: float = 5.0  # longest pause between redials


@dataclass
class _Remote:
    """One observed service: its record, the DEALER watching it, and whether it is in."""

    name: str
    record: PeerRecord
    dealer: zmq.Socket
    monitor: zmq.Socket
    alive: bool = False

    def info(self) -> PeerInfo:
        """The PeerInfo reported for this remote."""
        return PeerInfo(self.record.uuid, self.record.nick, dict(self.record.headers))


class Engine:
    """The liveness thread: a ROUTER of our own plus one watched DEALER per remote peer."""

    def __init__(self, uuid: uuidlib.UUID, nickname: str, address: str, report: Reporter, timing: Timing):
        self.uuid = uuid
        self.nickname = nickname
        self.report = report
        self.timing = timing
        self.remotes: dict[str, _Remote] = {}
        self._owners: dict[zmq.Socket, _Remote] = {}  # DEALER or monitor -> its remote
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        # no heartbeats of its own: each observer's PINGs carry a TTL after which the ROUTER
        # drops a silent observer's connection, so idle traffic is one PING/PONG per watch
        try:
            self.router.bind(f"tcp://{address}:*")
        except zmq.ZMQError as err:
            self.router.close(0)
            self.ctx.term()
            raise DiscoveryError(f"mdns liveness socket cannot bind on {address}: {err}") from err
        self.endpoint: str = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        self._commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._poller = zmq.Poller()
        self._thread = threading.Thread(target=self._run, name=f"zio-mdns-{nickname}", daemon=True)
        self._lock = threading.Lock()
        self._stopped = False

    # -- commands (any thread) ----------------------------------------------------------
    def _post(self, command: str, arg: Any) -> None:
        with self._lock:
            if self._stopped:
                return
            self._commands.put((command, arg))
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already

    def see(self, name: str, record: PeerRecord) -> None:
        """zeroconf reports the record of service ``name`` (new or refreshed)."""
        self._post("see", (name, record))

    def lose(self, name: str) -> None:
        """zeroconf reports that service ``name`` is gone (goodbye, expiry, or bad record)."""
        self._post("lose", name)

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close every socket (peers see our ROUTER go) and report every remote's exit; idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._commands.put(("stop", None))
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("mdns liveness engine of %s did not stop within %.1f s", self.nickname, timeout)
                return
        if not self._thread.is_alive():
            self._close()
        # else: stop() was called from a report listener; the thread closes on its way out

    def _close(self) -> None:
        if self.ctx.closed:
            return
        for remote in list(self.remotes.values()):
            self._forget(remote, "we stopped", reason=STOPPED)
        self.router.close(0)
        self.ctx.term()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- the loop -------------------------------------------------------------------------
    def _run(self) -> None:
        poller = self._poller
        poller.register(self.router, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        try:
            while True:
                for sock, _ in poller.poll():
                    if sock == self._wake_r:
                        os.read(self._wake_r, 4096)
                        if not self._run_commands():
                            return
                    else:
                        self._dispatch(sock)
        except Exception:
            log.exception("mdns liveness engine of %s failed; peers are no longer watched", self.nickname)
        finally:
            if self._stopped:
                self._close()

    def _run_commands(self) -> bool:
        """Apply queued commands; False once "stop" is among them."""
        while True:
            try:
                command, arg = self._commands.get_nowait()
            except queue.Empty:
                return True
            if command == "stop":
                return False
            if command == "see":
                self._see(*arg)
            elif command == "lose":
                remote = self.remotes.get(arg)
                if remote is not None:
                    self._forget(remote, "its record went away")

    def _dispatch(self, sock: Any) -> None:
        """Handle one ready socket; nothing from the network raises out of here."""
        try:
            if sock is self.router:
                self._answer()
                return
            remote = self._owners.get(sock)
            if remote is None:
                return
            if sock is remote.monitor:
                self._on_monitor(remote)
            else:
                self._on_reply(remote)
        except zmq.Again:
            pass

    # -- our own liveness socket --------------------------------------------------------
    def _answer(self) -> None:
        for _ in range(64):
            frames = self.router.recv_multipart(zmq.NOBLOCK)
            if len(frames) == 2 and frames[1] == ASK:
                try:
                    self.router.send_multipart([frames[0], self.uuid.bytes], zmq.NOBLOCK)
                except zmq.ZMQError as err:
                    log.debug("liveness answer dropped: %s", err)

    # -- remotes ------------------------------------------------------------------------
    def _heartbeats(self, sock: zmq.Socket) -> None:
        sock.setsockopt(zmq.HEARTBEAT_IVL, int(self.timing.heartbeat * 1000))
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(self.timing.expired * 1000))
        sock.setsockopt(zmq.HEARTBEAT_TTL, int((self.timing.heartbeat + self.timing.expired) * 1000))

    def _see(self, name: str, record: PeerRecord) -> None:
        if record.uuid == self.uuid:
            return
        remote = self.remotes.get(name)
        if remote is not None and (remote.record.uuid != record.uuid or remote.record.live != record.live):
            self._forget(remote, f"its record changed to {record.uuid} at {record.live}")
            remote = None
        if remote is None:
            for other in self.remotes.values():
                if other.record.uuid == record.uuid:
                    log.warning("mdns: service %r claims the UUID of %r; ignored", name, other.name)
                    return
            self._dial(name, record)
            return
        if remote.dealer.closed:  # hung up on (wrong UUID); the record is back, try again
            self._forget(remote, "redialling", report=False)
            self._dial(name, record)
            return
        old = remote.info()
        remote.record = record
        if remote.alive and remote.info() != old:
            self.report(PeerEvent(ENTER, remote.info()))  # the peer table turns it into "update"

    def _dial(self, name: str, record: PeerRecord) -> None:
        dealer = self.ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.RECONNECT_IVL, 100)
        dealer.setsockopt(zmq.RECONNECT_IVL_MAX, int(self.timing.reconnect_max * 1000))
        dealer.setsockopt(zmq.CONNECT_TIMEOUT, int((self.timing.heartbeat + self.timing.expired) * 1000))
        self._heartbeats(dealer)
        address = f"inproc://zio-mdns-monitor-{id(dealer):x}"
        dealer.monitor(address, _EVENTS)
        monitor = self.ctx.socket(zmq.PAIR)
        monitor.setsockopt(zmq.LINGER, 0)
        monitor.connect(address)
        remote = _Remote(name, record, dealer, monitor)
        try:
            dealer.connect(record.live)
        except zmq.ZMQError as err:
            log.info("mdns: cannot dial %s (%s) at %s: %s", record.nick, record.uuid, record.live, err)
            self._close_sockets(remote)
            return
        self.remotes[name] = remote
        for sock in (monitor, dealer):
            self._owners[sock] = remote
            self._poller.register(sock, zmq.POLLIN)
        log.debug("%s dials %s (%s) at %s", self.nickname, record.nick, record.uuid, record.live)

    def _on_monitor(self, remote: _Remote) -> None:
        event = parse_monitor_message(remote.monitor.recv_multipart(zmq.NOBLOCK))["event"]
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            try:
                remote.dealer.send(ASK, zmq.NOBLOCK)
            except zmq.ZMQError as err:
                log.debug("liveness question to %s dropped: %s", remote.record.nick, err)
        elif event == zmq.EVENT_DISCONNECTED and remote.alive:
            remote.alive = False
            log.debug("%s lost %s (%s): connection closed", self.nickname, remote.record.nick, remote.record.uuid)
            self.report(PeerEvent(EXIT, remote.info()))

    def _on_reply(self, remote: _Remote) -> None:
        for _ in range(16):
            reply = remote.dealer.recv(zmq.NOBLOCK)
            if reply != remote.record.uuid.bytes:
                log.warning(
                    "mdns: %s at %s answered %r, not UUID %s; hung up until its record changes",
                    remote.name, remote.record.live, reply[:32], remote.record.uuid,
                )
                if remote.alive:
                    remote.alive = False
                    self.report(PeerEvent(EXIT, remote.info()))
                self._close_sockets(remote)
                return
            if not remote.alive:
                remote.alive = True
                self.report(PeerEvent(ENTER, remote.info()))

    def _close_sockets(self, remote: _Remote) -> None:
        for sock in (remote.monitor, remote.dealer):
            self._owners.pop(sock, None)
            try:
                self._poller.unregister(sock)
            except KeyError:
                pass
        if not remote.dealer.closed:
            try:
                remote.dealer.disable_monitor()
            except zmq.ZMQError:
                pass
        remote.monitor.close(0)
        remote.dealer.close(0)

    def _forget(self, remote: _Remote, why: str, report: bool = True, reason: str = "") -> None:
        if self.remotes.pop(remote.name, None) is None:
            return
        self._close_sockets(remote)
        log.debug("%s forgets %s (%s): %s", self.nickname, remote.record.nick, remote.record.uuid, why)
        if remote.alive and report:
            self.report(PeerEvent(EXIT, remote.info(), reason))


__all__ = ["Engine", "Timing", "ASK"]
