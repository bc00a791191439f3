"""The ZRE peer engine: one thread that beacons, greets, pings and forgets peers.

Liveness is faster than Zyre's without more idle traffic:

- a peer process that dies closes its TCP connections; the socket monitor of our outbox
  to it sees the disconnect and the peer leaves at once;
- a peer whose host vanishes goes silent: every beacon or message refreshes it, after
  ``evasive`` seconds of silence it is pinged, after ``expired`` seconds it leaves;
- a peer that stops says so with a port-0 beacon.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import os
import socket
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Mapping

import zmq
from zmq.utils.monitor import parse_monitor_message

from zio.discovery import ENTER, EXIT, LEFT, LOST, STOPPED, PeerEvent, PeerInfo, Reporter
from zio.errors import DiscoveryError, MalformedError
from zio.interfaces import Interface
from zio.security import KEY_HEADER, Security, release_zap

from . import wire

log = logging.getLogger(__name__)


#: Outbox events that mean the peer's mailbox is gone: its connection closed (process
#: died or stopped), or connecting was refused (nobody listens there: e.g. a HELLO that
#: arrived after its sender's goodbye must not bring back a ghost).
_MAILBOX_GONE = zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED
#: In secure mode also a refused CURVE handshake (its ZAP does not trust us, yet): libzmq
#: does not dial again, the next beacon does.
_SECURE_GONE = _MAILBOX_GONE | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL

#: ZeroMQ sockets one engine may open (libzmq's default is 1023: about 340 peers).
MAX_SOCKETS = 8192


@dataclass(frozen=True)
class Timing:
    """The engine's clock settings, in seconds."""

    interval: float = 1.0  # between beacons
    evasive: float = 2.0  # silence after which a peer is pinged
    expired: float = 4.0  # silence after which a peer is gone
    tick: float = 0.25  # how often silences are checked


@dataclass
class _Remote:
    """What the engine tracks of one remote peer."""

    uuid: uuidlib.UUID
    endpoint: str
    outbox: zmq.Socket
    monitor: zmq.Socket
    last_seen: float
    name: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)
    ready: bool = False  # its HELLO arrived and its ENTER was reported
    sent_sequence: int = 0
    want_sequence: int = 0
    pinged_at: float = 0.0
    server_key: bytes = b""  # secure mode: the Z85 key its mailbox proved (as CURVE server)


class Engine:
    """A ZRE node without a public API of its own: it feeds a Reporter."""

    def __init__(
        self,
        uuid: uuidlib.UUID,
        nickname: str,
        headers: Mapping[str, str],
        report: Reporter,
        interface: Interface,
        beacon_port: int,
        timing: Timing,
        security: Security | None = None,
    ):
        self.uuid = uuid
        #: Zyre's draft secure mode when set: version 3 beacons with our key, mailboxes over CURVE
        self.security = security
        self._warned: set[tuple[uuidlib.UUID, str]] = set()
        #: secure mode: peers whose beacons or HELLOs were refused: uuid -> (key, why, when)
        self.refused: dict[uuidlib.UUID, tuple[bytes, str, float]] = {}
        self._refused_lock = threading.Lock()
        self.nickname = nickname
        self.headers = dict(headers)
        self.report = report
        self.interface = interface
        self.beacon_port = beacon_port
        self.timing = timing
        self.remotes: dict[uuidlib.UUID, _Remote] = {}
        # validate our own HELLO before anything is opened, so bad names or headers fail in
        # start() and leave no socket behind (the endpoint is not known yet: any will do)
        wire.encode_message(wire.Hello(1, "tcp://0.0.0.0:0", (), 0, nickname, self.headers))
        self.ctx = zmq.Context()
        self.ctx.max_sockets = MAX_SOCKETS  # three sockets per remote peer
        self.inbox = self.ctx.socket(zmq.ROUTER)
        self.inbox.setsockopt(zmq.LINGER, 0)
        self.inbox.setsockopt(zmq.ROUTER_HANDOVER, 1)
        try:
            if security is not None:
                security.apply_server(self.inbox)  # CURVE server behind the ZAP allow-list
            self.inbox.bind(f"tcp://{interface.address}:*")
            self.recv_udp, self.send_udp = self._open_udp()
        except (zmq.ZMQError, OSError) as err:
            self.inbox.close(0)
            release_zap(self.ctx)
            self.ctx.term()
            raise DiscoveryError(f"beacon discovery cannot start on {interface}: {err}") from err
        self.endpoint = self.inbox.getsockopt_string(zmq.LAST_ENDPOINT)
        self.mailbox_port = int(self.endpoint.rsplit(":", 1)[1])
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"zio-beacon-{nickname}", daemon=True)
        self._stopped = False
        self._stop_lock = threading.Lock()
        self._stopped_from_inside = False  # stop() ran in the engine's thread: it closes the pipe
        self._monitor_ids = itertools.count()  # makes every monitor's inproc address new

    # -- sockets ---------------------------------------------------------------------
    def _open_udp(self) -> tuple[socket.socket, socket.socket]:
        iface = self.interface
        target = iface.beacon_target
        recv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            recv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            recv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # binding to the broadcast (or group) address receives only beacons, only there
            recv.bind((target, self.beacon_port))
            if iface.loopback:
                mreq = socket.inet_aton(target) + socket.inet_aton(iface.address)
                recv.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface.address))
                send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
                send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            else:
                send.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                send.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.name.encode())
            send.bind((iface.address, 0))
            recv.setblocking(False)
        except OSError:
            recv.close()
            send.close()
            raise
        return recv, send

    def _beacon(self, port: int) -> None:
        key = zmq.utils.z85.decode(self.security.public_key) if self.security is not None else b""
        data = wire.Beacon(self.uuid, port, key).encode()
        try:
            self.send_udp.sendto(data, (self.interface.beacon_target, self.beacon_port))
        except OSError as err:
            log.warning("beacon to %s:%d failed: %s", self.interface.beacon_target, self.beacon_port, err)

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine's thread; the first beacon leaves at once."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to say goodbye and close everything; idempotent.

        Called from the engine's own thread (a peer-event listener that stops its Peer),
        it cannot wait for that thread: it only asks, and the loop says goodbye and closes
        everything as soon as the current event has been handled.
        """
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        if threading.current_thread() is self._thread:
            self._stopped_from_inside = True
            return
        if self._thread.is_alive():
            os.write(self._stop_w, b"x")
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("beacon engine of %s did not stop within %.1f s", self.nickname, timeout)
                return
        else:
            self._close()
        os.close(self._stop_r)
        os.close(self._stop_w)

    def _close(self) -> None:
        # every peer we reported leaves with us, so that nobody keeps connecting to it
        for remote in list(self.remotes.values()):
            self._forget(remote, "this engine stopped", STOPPED)
        self.recv_udp.close()
        self.send_udp.close()
        self.inbox.close(0)
        release_zap(self.ctx)
        # destroy, not term: a socket left open by mistake must not hang stop() forever
        self.ctx.destroy(linger=0)

    # -- the loop ---------------------------------------------------------------------
    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.inbox, zmq.POLLIN)
        poller.register(self.recv_udp.fileno(), zmq.POLLIN)
        poller.register(self._stop_r, zmq.POLLIN)
        self._poller = poller
        next_beacon = time.monotonic()
        next_tick = next_beacon + self.timing.tick
        try:
            while True:
                now = time.monotonic()
                if now >= next_beacon:
                    self._beacon(self.mailbox_port)
                    next_beacon = now + self.timing.interval
                if now >= next_tick:
                    self._check_silences(now)
                    next_tick = now + self.timing.tick
                wait_ms = max(0, math.ceil((min(next_beacon, next_tick) - time.monotonic()) * 1000.0))
                ready = dict(poller.poll(wait_ms))
                if self._stop_r in ready:
                    break
                for sock in ready:
                    if self._stopped:
                        break
                    if isinstance(sock, zmq.Socket) and sock.closed:
                        continue  # the monitor of a peer forgotten earlier in this round
                    self._dispatch(sock)
                if self._stopped:
                    break
        except Exception:
            log.exception("beacon engine of %s failed; leaving the network", self.nickname)
        finally:
            self._beacon(0)
            self._close()
            if self._stopped_from_inside:
                # stop() returned without waiting for us, and will never touch the pipe again
                os.close(self._stop_r)
                os.close(self._stop_w)

    def _dispatch(self, sock: object) -> None:
        """Handle one ready socket; network input never raises out of here."""
        try:
            if sock is self.inbox and self.security is not None:
                frames = self.inbox.recv_multipart(zmq.NOBLOCK, copy=False)
                user = frames[-1].get("User-Id") if frames else ""
                self._on_mail([f.bytes for f in frames], user)
            elif sock is self.inbox:
                self._on_mail(self.inbox.recv_multipart(zmq.NOBLOCK))
            elif sock == self.recv_udp.fileno():
                self._on_udp()
            else:
                self._on_monitor(sock)
        except zmq.Again:
            pass
        except MalformedError as err:
            log.info("dropped malformed input: %s", err)
        except Exception:  # a bug must cost one input, not the whole discovery
            log.exception("%s: unexpected error handling network input; dropped it", self.nickname)

    # -- beacons ---------------------------------------------------------------------
    def _on_udp(self) -> None:
        for _ in range(64):  # drain what is queued, but let other sockets have a turn
            try:
                data, (ip, _port) = self.recv_udp.recvfrom(64)
            except BlockingIOError:
                return
            try:
                beacon = wire.Beacon.decode(data, secure=self.security is not None)
            except MalformedError as err:
                log.debug("dropped beacon from %s: %s", ip, err)
                if self.security is not None:
                    self._downgrade(data)
                continue
            server_key = b""
            if beacon.public_key:
                server_key = zmq.utils.z85.encode(beacon.public_key)
                if not beacon.is_leaving and not self._trusts(beacon.uuid, server_key):
                    continue
            if beacon.uuid == self.uuid:
                continue
            remote = self.remotes.get(beacon.uuid)
            if beacon.is_leaving:
                if remote is not None:
                    self._forget(remote, "said goodbye", LEFT)
                continue
            endpoint = f"tcp://{ip}:{beacon.port}"
            if remote is not None and (
                not remote.endpoint.endswith(f":{beacon.port}") or remote.server_key != server_key
            ):
                self._forget(remote, f"moved to {endpoint}")
                remote = None
            if remote is None:
                self._meet(beacon.uuid, endpoint, server_key)
            else:
                remote.last_seen = time.monotonic()

    # -- remotes -------------------------------------------------------------------------
    def _trusts(self, uuid: uuidlib.UUID, key: bytes, nick: str | None = None) -> bool:
        """Secure mode: True if ``key`` is trusted (and may be ``nick``); else log once."""
        assert self.security is not None
        if not key:
            why = "sends beacons without a key: its security is off"
        elif nick is not None:
            why = self.security.refusal(key, nick)
        else:
            why = None if self.security.is_trusted(key) else f"advertises key {key.decode()}, which is not trusted"
        with self._refused_lock:
            if why is None:
                self.refused.pop(uuid, None)
                return True
            if len(self.refused) >= 1000:
                self.refused.clear()  # bounded, whatever a noisy network sends
            self.refused[uuid] = (key, why, time.monotonic())
        if (uuid, why) not in self._warned:
            if len(self._warned) >= 1000:
                self._warned.clear()
            self._warned.add((uuid, why))
            log.warning("secure beacon %s: ignoring peer %s: it %s", self.nickname, uuid, why)
        return False

    def _downgrade(self, data: bytes) -> None:
        """Secure mode: a plain beacon is tossed (no downgrade); say so once per peer."""
        try:
            plain = wire.Beacon.decode(data)
        except MalformedError:
            return
        if not plain.is_leaving and plain.uuid != self.uuid:
            self._trusts(plain.uuid, b"")

    def _meet(self, uuid: uuidlib.UUID, endpoint: str, server_key: bytes = b"") -> _Remote | None:
        """Open an outbox to a new peer and greet it; None if the sockets for it cannot be had.

        A peer costs three ZeroMQ sockets (its outbox, the outbox's monitor and our end of
        it) and a context holds 1023: past about 340 peers, newcomers are logged and
        dropped (they are met at a later beacon if room was made), never fatal.
        """
        outbox = monitor = None
        try:
            outbox = self.ctx.socket(zmq.DEALER)
            outbox.setsockopt(zmq.LINGER, 0)
            outbox.setsockopt(zmq.ROUTING_ID, wire.routing_id_for(self.uuid))
            outbox.setsockopt(zmq.SNDHWM, 1000)
            # a new address every time: the one of a monitor just closed may still be bound
            monitor_address = f"inproc://zio-monitor-{uuid.hex}-{next(self._monitor_ids)}"
            outbox.monitor(monitor_address, _MAILBOX_GONE if self.security is None else _SECURE_GONE)
            monitor = self.ctx.socket(zmq.PAIR)
            monitor.setsockopt(zmq.LINGER, 0)
            monitor.connect(monitor_address)
        except zmq.ZMQError as err:
            log.warning("%s cannot open a mailbox to peer %s now: %s", self.nickname, uuid, err)
            for sock in (monitor, outbox):
                if sock is not None:
                    sock.close(0)
            return None
        try:
            if self.security is not None:
                self.security.apply_client(outbox, server_key)
            outbox.connect(endpoint)
        except zmq.ZMQError as err:
            log.info("cannot reach peer %s at %s: %s", uuid, endpoint, err)
            monitor.close(0)
            outbox.close(0)
            raise MalformedError(f"unusable endpoint {endpoint!r}") from err
        remote = _Remote(uuid, endpoint, outbox, monitor, time.monotonic(), server_key=server_key)
        self.remotes[uuid] = remote
        self._poller.register(monitor, zmq.POLLIN)
        self._send(remote, self._hello(0))
        log.debug("%s meets %s at %s", self.nickname, uuid, endpoint)
        return remote

    def _hello(self, sequence: int) -> wire.Hello:
        return wire.Hello(sequence, self.endpoint, (), 0, self.nickname, self.headers)

    def _send(self, remote: _Remote, msg: wire.ZreMessage) -> None:
        """Send ``msg`` with the next sequence number for ``remote``; never blocks."""
        remote.sent_sequence = wire.next_sequence(remote.sent_sequence)
        msg = dataclasses.replace(msg, sequence=remote.sent_sequence)
        try:
            remote.outbox.send_multipart(wire.encode_message(msg), zmq.NOBLOCK)
        except zmq.ZMQError as err:
            log.debug("send to %s dropped: %s", remote.uuid, err)

    def _drop_sockets(self, remote: _Remote) -> None:
        try:
            self._poller.unregister(remote.monitor)
        except (KeyError, AttributeError):
            pass
        try:
            remote.outbox.disable_monitor()
        except zmq.ZMQError:
            pass
        remote.monitor.close(0)
        remote.outbox.close(0)

    def _forget(self, remote: _Remote, why: str, reason: str = LOST) -> None:
        """Remove a peer; report its exit (with ``reason``) if its entry was reported."""
        if self.remotes.pop(remote.uuid, None) is None:
            return
        self._drop_sockets(remote)
        log.debug("%s forgets %s (%s): %s", self.nickname, remote.name, remote.uuid, why)
        if remote.ready:
            self.report(PeerEvent(EXIT, PeerInfo(remote.uuid, remote.name, dict(remote.headers)), reason))

    def _on_monitor(self, monitor: zmq.Socket) -> None:
        event = parse_monitor_message(monitor.recv_multipart(zmq.NOBLOCK))
        if not event["event"] & _SECURE_GONE:
            return
        why = "its connection closed" if event["event"] == zmq.EVENT_DISCONNECTED else "its mailbox refused us"
        for remote in list(self.remotes.values()):
            if remote.monitor is monitor:
                self._forget(remote, why)

    def _check_silences(self, now: float) -> None:
        for remote in list(self.remotes.values()):
            if self.security is not None and not self.security.is_trusted(remote.server_key):
                self._forget(remote, "its key is no longer trusted")
                continue
            silent = now - remote.last_seen
            if silent >= self.timing.expired:
                self._forget(remote, f"silent for {silent:.1f} s")
            elif silent >= self.timing.evasive and now - remote.pinged_at >= self.timing.evasive:
                remote.pinged_at = now
                self._send(remote, wire.Ping(0))

    # -- mail ---------------------------------------------------------------------------
    def _on_mail(self, frames: list[bytes], user: str | None = None) -> None:
        """One message on our mailbox; in secure mode ``user`` is the Z85 key its connection proved."""
        if len(frames) < 2:
            raise MalformedError(f"mailbox message of {len(frames)} frame(s)")
        sender = wire.uuid_from_routing_id(frames[0])
        if sender == self.uuid:
            # only an impostor, or our own outbox lured to our inbox, writes in our name
            raise MalformedError("mail in our own name: a peer never meets itself")
        msg = wire.decode_message(frames[1:])
        remote = self.remotes.get(sender)
        if isinstance(msg, wire.Hello):
            if self.security is not None:
                key = msg.headers.get(KEY_HEADER, "")
                if not user or key != user:
                    raise MalformedError(f"HELLO from {sender} claims key {key!r}, its connection proved {user!r}")
                if not self._trusts(sender, key.encode(), msg.name):
                    return
                if remote is not None and remote.server_key != key.encode():
                    self._forget(remote, "its HELLO has another key than its beacon")
                    remote = None
            self._on_hello(sender, msg, remote)
            return
        if remote is None or not remote.ready:
            log.debug("ignored %s from a peer that has not said HELLO: %s", type(msg).__name__, sender)
            return
        if not wire.sequence_follows(wire.next_sequence(remote.want_sequence), msg.sequence):
            self._forget(remote, f"lost messages (sequence {msg.sequence})")
            return
        remote.want_sequence = msg.sequence
        remote.last_seen = time.monotonic()
        if isinstance(msg, wire.Ping):
            self._send(remote, wire.PingOk(0))
        elif isinstance(msg, wire.Join):
            remote.groups.add(msg.group)
        elif isinstance(msg, wire.Leave):
            remote.groups.discard(msg.group)
        elif isinstance(msg, (wire.Whisper, wire.Shout)):
            log.debug("%s from %s not delivered: zio does not expose ZRE groups yet", type(msg).__name__, remote.name)

    def _on_hello(self, sender: uuidlib.UUID, hello: wire.Hello, remote: _Remote | None) -> None:
        if remote is not None and remote.ready:
            # a second HELLO: the peer restarted its session; start over with it
            self._forget(remote, "said HELLO again")
            remote = None
        if remote is None:
            key = hello.headers.get(KEY_HEADER, "").encode() if self.security is not None else b""
            remote = self._meet(sender, hello.endpoint, key)
            if remote is None:
                return
        remote.name = hello.name
        remote.headers = dict(hello.headers)
        remote.groups = set(hello.groups)
        remote.want_sequence = hello.sequence
        remote.last_seen = time.monotonic()
        remote.ready = True
        self.report(PeerEvent(ENTER, PeerInfo(sender, hello.name, dict(hello.headers))))

    def refused_peers(self) -> list[tuple[uuidlib.UUID, bytes, str]]:
        """Secure mode: peers refused within the last ``expired`` seconds (uuid, key, why)."""
        now = time.monotonic()
        with self._refused_lock:
            return [(u, k, why) for u, (k, why, when) in self.refused.items() if now - when < self.timing.expired]

    def groups_of(self, uuid: uuidlib.UUID) -> set[str]:
        """The ZRE groups a peer has joined (for tests and tools; zio has no group API yet)."""
        remote = self.remotes.get(uuid)
        return set(remote.groups) if remote else set()


__all__ = ["Engine", "Timing"]
