"""The trust gate: a secure Peer admits only peers that prove they hold a trusted key.

It sits between any discovery backend and the Peer's table. Our advert carries our public
key (header ``X-PUBLICKEY``, as Zyre's secure mode) and a *proof* endpoint: a ROUTER that is
a CURVE server behind the ZAP allow-list and answers ``?`` with our UUID. For every peer a
backend reports, the gate checks that the advertised key is trusted (and, when its
certificate pins a nickname, that it is that nickname), then dials the peer's proof endpoint
as a CURVE client expecting that key: the CURVE handshake succeeds only if the peer holds
the secret key (and trusts ours), and the answer must be the advertised UUID. Only then is
the peer reported to the table, headers and key included, so ports connecting by name pin
``curve_serverkey`` to a proven key. Peers that fail are logged once at WARNING.

The trusted directory is watched: when keys come, waiting peers are proved; when keys go,
admitted peers holding them are reported gone (reason ``lost``).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field

import zmq

from .discovery import ENTER, EXIT, LOST, UPDATE, PeerEvent, PeerInfo, Reporter
from .security import KEY_HEADER, Security, private_context

log = logging.getLogger(__name__)

#: The peer header carrying the proof endpoint.
PROOF_HEADER = "zio.proof"
ASK = b"?"
#: ZMQ_MAXMSGSIZE of proof sockets: room for the CURVE handshake commands (HELLO 200 B,
#: INITIATE about 260 B plus metadata), far less than any flood needs.
MAX_MSG_SIZE = 1024
#: A proof not done within this long is logged (once); it goes on while the peer is there.
PROOF_WARN_S = 3.0
#: A proof refused (the peer's ZAP does not trust us yet: libzmq then stops reconnecting)
#: is dialled again after this pause, doubled each time up to the maximum (seconds).
PROOF_RETRY_S = (0.25, 2.0)
_WARNED_MAX = 1000


@dataclass
class _Proof:
    info: PeerInfo
    key: bytes
    endpoint: str
    sock: zmq.Socket | None = None
    started: float = field(default_factory=time.monotonic)
    retry_s: float = 0.0  # pause before the next dial
    next_dial: float = 0.0  # when the socket is replaced by a fresh dial


class TrustGate:
    """Admit peers into a Peer's table only once they proved a trusted key (see the module)."""

    def __init__(self, security: Security, uuid: uuidlib.UUID, nickname: str, host: str, report: Reporter,
                 context: zmq.Context | None = None, prove: bool = True):
        self.security = security
        self.uuid = uuid
        self.nickname = nickname
        self._forward = report
        #: False for a backend that proves keys itself (beacon in Zyre's secure mode): the
        #: gate then only checks trust and pins, and drops what the trusted directory loses
        self.prove = prove
        self.endpoint = ""
        if prove:
            self.ctx = context or private_context()
            self.server = self.ctx.socket(zmq.ROUTER)
            self.server.setsockopt(zmq.LINGER, 0)
            self.server.setsockopt(zmq.MAXMSGSIZE, MAX_MSG_SIZE)
            security.apply_server(self.server)
            self.server.bind(f"tcp://{host}:*")
            self.endpoint = self.server.getsockopt_string(zmq.LAST_ENDPOINT)
        self._lock = threading.RLock()  # state and the order of reports
        self.latest: dict[uuidlib.UUID, PeerInfo] = {}  # present by the backend, admitted or not
        self.admitted: dict[uuidlib.UUID, tuple[PeerInfo, bytes, str]] = {}
        self.proving: dict[uuidlib.UUID, _Proof] = {}
        self._warned: set[tuple[uuidlib.UUID, str]] = set()
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"zio-trust-{nickname}", daemon=True)
        if prove:
            self._thread.start()
        security.add_listener(self._on_trust_change)

    def headers(self) -> dict[str, str]:
        """What our advert carries: our public key and proof endpoint."""
        if not self.prove:
            return {KEY_HEADER: self.security.public_key.decode()}
        return {KEY_HEADER: self.security.public_key.decode(), PROOF_HEADER: self.endpoint}

    def status(self) -> list[tuple[PeerInfo, str]]:
        """Every peer the backend reports now, with ``"trusted"``, ``"proving"`` or why it is refused."""
        with self._lock:
            result = []
            for uuid, info in self.latest.items():
                if uuid in self.admitted:
                    state = "trusted"
                elif uuid in self.proving:
                    state = "proving (not proved yet: does it trust our key?)"
                else:
                    key = info.headers.get(KEY_HEADER, "").encode()
                    state = "refused: " + (self.security.refusal(key, info.nick) or "no proof endpoint")
                result.append((info, state))
            return result

    # -- from the backend (any thread) ----------------------------------------------------
    def report(self, event: PeerEvent) -> None:
        """The Reporter given to the backend: admit, hold or drop the peer."""
        info = event.peer
        with self._lock:
            if event.kind == EXIT:
                self.latest.pop(info.uuid, None)
                proof = self.proving.pop(info.uuid, None)
                if proof is not None:
                    self._post("close", proof)
                if self.admitted.pop(info.uuid, None) is not None:
                    self._forward(event)
                return
            if event.kind not in (ENTER, UPDATE):
                return
            self.latest[info.uuid] = info
            self._evaluate(info)

    def _warn_once(self, info: PeerInfo, why: str) -> None:
        mark = (info.uuid, why)
        if mark in self._warned:
            return
        if len(self._warned) >= _WARNED_MAX:
            self._warned.clear()
        self._warned.add(mark)
        log.warning("secure peer %s: ignoring peer %r (%s): it %s", self.nickname, info.nick, info.uuid, why)

    def _evaluate(self, info: PeerInfo) -> None:
        """Decide on the latest advert of one peer (holding the lock)."""
        key = info.headers.get(KEY_HEADER, "").encode()
        endpoint = info.headers.get(PROOF_HEADER, "")
        why = self.security.refusal(key, info.nick)
        if why is None and self.prove and not endpoint.startswith("tcp://"):
            why = "advertises no proof endpoint"
        admitted = self.admitted.get(info.uuid)
        if why is not None:
            self._warn_once(info, why)
            self._drop(info.uuid, why)
            return
        if not self.prove:  # the backend proved the key
            self.admitted[info.uuid] = (info, key, endpoint)
            self._forward(PeerEvent(ENTER, info))
            return
        if admitted is not None and admitted[1:] == (key, endpoint):
            self.admitted[info.uuid] = (info, key, endpoint)
            self._forward(PeerEvent(ENTER, info))  # the table makes it an update
            return
        if admitted is not None:  # a new key or endpoint: prove it again
            self._drop(info.uuid, "changed its key or proof endpoint")
        proof = self.proving.get(info.uuid)
        if proof is not None and (proof.key, proof.endpoint) == (key, endpoint):
            proof.info = info
            return
        if proof is not None:
            self._post("close", self.proving.pop(info.uuid))
        proof = self.proving[info.uuid] = _Proof(info, key, endpoint)
        self._post("prove", proof)

    def _drop(self, uuid: uuidlib.UUID, why: str) -> None:
        proof = self.proving.pop(uuid, None)
        if proof is not None:
            self._post("close", proof)
        admitted = self.admitted.pop(uuid, None)
        if admitted is not None:
            log.warning("secure peer %s: dropping peer %r (%s): it %s", self.nickname, admitted[0].nick, uuid, why)
            self._forward(PeerEvent(EXIT, admitted[0], LOST))

    def _on_trust_change(self, added: frozenset, removed: frozenset) -> None:
        """The trusted directory changed: decide again on every peer present."""
        with self._lock:
            self._warned.clear()  # what was refused may be admitted now, and the reverse
            for info in list(self.latest.values()):
                self._evaluate(info)

    # -- the proof thread -----------------------------------------------------------------
    def _post(self, command: str, proof: _Proof) -> None:
        self._commands.put((command, proof))
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.server, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        owners: dict[zmq.Socket, _Proof] = {}
        try:
            while True:
                for sock, _ in poller.poll(100 if owners else 500):
                    if sock == self._wake_r:
                        os.read(self._wake_r, 4096)
                        if not self._commands_run(poller, owners):
                            return
                    elif sock is self.server:
                        self._answer()
                    else:
                        self._on_answer(sock, owners, poller)
                self._tend(owners, poller)
        except Exception:
            log.exception("trust gate of %s failed: no more peers are admitted", self.nickname)
        finally:
            for sock in list(owners):
                sock.close(0)
            self.server.close(0)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _commands_run(self, poller: zmq.Poller, owners: dict) -> bool:
        while True:
            try:
                command, proof = self._commands.get_nowait()
            except queue.Empty:
                return True
            if command == "stop":
                return False
            if command == "close":
                if proof.sock is not None:
                    owners.pop(proof.sock, None)
                    poller.unregister(proof.sock)
                    proof.sock.close(0)
                    proof.sock = None
                continue
            self._dial(proof, poller, owners)

    def _dial(self, proof: _Proof, poller: zmq.Poller, owners: dict) -> None:
        """Dial the proof endpoint of ``proof`` as a CURVE client expecting its key."""
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MSG_SIZE)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        try:
            self.security.apply_client(sock, proof.key)
            sock.connect(proof.endpoint)
            sock.send(ASK, zmq.NOBLOCK)  # queued until the handshake is done
        except zmq.ZMQError as err:
            sock.close(0)
            with self._lock:
                self._warn_once(proof.info, f"advertises an unusable proof endpoint {proof.endpoint!r}: {err}")
            return
        with self._lock:
            if self.proving.get(proof.info.uuid) is not proof:  # overtaken meanwhile
                sock.close(0)
                return
            proof.sock = sock
        low, high = PROOF_RETRY_S
        proof.retry_s = min(high, proof.retry_s * 2) if proof.retry_s else low
        proof.next_dial = time.monotonic() + proof.retry_s
        owners[sock] = proof
        poller.register(sock, zmq.POLLIN)

    def _answer(self) -> None:
        for _ in range(64):
            try:
                frames = self.server.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) == 2 and frames[1] == ASK:
                try:
                    self.server.send_multipart([frames[0], self.uuid.bytes], zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass

    def _on_answer(self, sock: zmq.Socket, owners: dict, poller: zmq.Poller) -> None:
        proof = owners.pop(sock, None)
        try:
            answer = sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            if proof is not None:
                owners[sock] = proof
            return
        poller.unregister(sock)
        sock.close(0)
        if proof is None:
            return
        self._settle(proof, answer)

    def _settle(self, proof: "_Proof", answer: bytes) -> None:
        """A proof's answer arrived: admit the peer if it answered with its own UUID."""
        with self._lock:
            proof.sock = None
            if self.proving.get(proof.info.uuid) is not proof:
                return  # overtaken by a later advert or an exit
            del self.proving[proof.info.uuid]
            if answer != proof.info.uuid.bytes:
                self._warn_once(proof.info, "proved its key at another node's proof endpoint")
                return
            info = proof.info
            self.admitted[info.uuid] = (info, proof.key, proof.endpoint)
            log.debug("secure peer %s: %r (%s) proved key %s", self.nickname, info.nick, info.uuid, proof.key.decode())
            self._forward(PeerEvent(ENTER, info))

    def _tend(self, owners: dict, poller: zmq.Poller) -> None:
        """Dial again the proofs still waiting; warn (once) about those waiting long."""
        now = time.monotonic()
        for sock, proof in list(owners.items()):
            if now >= proof.next_dial:
                owners.pop(sock)
                poller.unregister(sock)
                sock.close(0)
                proof.sock = None
                self._dial(proof, poller, owners)
            if now - proof.started > PROOF_WARN_S:
                with self._lock:
                    self._warn_once(proof.info, f"has not proved key {proof.key.decode()} within "
                                    f"{PROOF_WARN_S:.0f} s (does it trust ours?); still trying")

    def stop(self) -> None:
        """Stop the proof thread and close its sockets; idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._commands.put(("stop", None))
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self.prove and threading.current_thread() is not self._thread:
            self._thread.join(5.0)
        elif not self.prove:
            os.close(self._wake_r)
            os.close(self._wake_w)


__all__ = ["PROOF_HEADER", "TrustGate"]
