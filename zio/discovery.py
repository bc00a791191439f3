"""The discovery backend interface: one small abstract class that every backend implements."""
from __future__ import annotations

import abc
import uuid as uuidlib
from typing import Any, Callable, Mapping, NamedTuple


class PeerInfo(NamedTuple):
    """What is known of one peer: its UUID, nickname and advertised headers."""

    uuid: uuidlib.UUID
    nick: str
    headers: dict[str, str]


class PeerEvent(NamedTuple):
    """A change in the peer table: ``kind`` is "enter", "exit" or "update".

    ``reason`` says why an "exit" happened, where the backend knows: :data:`LEFT` (the
    peer said goodbye), :data:`LOST` (it went silent or its connection closed) or
    :data:`STOPPED` (*this* Peer stopped: the peer may well be alive, we just stopped
    watching). It is "" when nobody said; ``PeerEvent(kind, peer)`` stays valid.
    """

    kind: str
    peer: PeerInfo
    reason: str = ""


ENTER = "enter"
EXIT = "exit"
UPDATE = "update"

#: Exit reasons (:attr:`PeerEvent.reason`).
LEFT = "left"
LOST = "lost"
STOPPED = "stopped"

#: Signature of the callable a backend reports peers through (called from any thread).
Reporter = Callable[[PeerEvent], None]


class Discovery(abc.ABC):
    """A discovery backend: advertises one local peer and reports the others it finds.

    The life cycle is ``start()`` once, then ``stop()`` (idempotent). Backends run in
    their own threads and must never block the caller for long, never raise out of
    their threads because of network input, and must report an "exit" for every
    peer they reported an "enter" for, or the stop of the backend ends them all.
    An exit may say why (``PeerEvent(EXIT, info, LEFT)``); exits reported during
    ``stop()`` are given reason :data:`STOPPED` by the Peer if they carry none.
    """

    #: the name the backend is registered under (informational)
    name: str = "?"

    #: Milliseconds of quiet after which a newly started backend has normally reported the
    #: peers already on the network (after the first of a name, others may still come).
    #: ``Port.online()`` waits that long for more same-named peers, so that a pool of them
    #: shares the first burst. 0 for a backend that knows every peer when start() returns.
    settle_ms: float = 100.0

    @abc.abstractmethod
    def start(
        self,
        uuid: uuidlib.UUID,
        nickname: str,
        headers: Mapping[str, str],
        report: Reporter,
    ) -> None:
        """Begin advertising ``nickname``/``headers`` under ``uuid`` and report peers."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Say goodbye to the network and release every resource; safe to call twice."""

    @property
    def bind_host(self) -> str | None:
        """The address ports should bind to so that peers found by this backend can reach them."""
        return None

    def describe(self) -> dict[str, Any]:
        """Facts about where the backend talks (interface, addresses, ports), for logs and tools."""
        return {"backend": self.name}
