"""Socket types: names, how each carries a zio.Message, and the CLIENT/SERVER stand-ins.

Stock pyzmq wheels lack libzmq's draft API, and their libzmq aborts the process when a
CLIENT/SERVER pair handshakes over TCP. Where ``zmq.has("draft")`` is False, a port asked
for a draft type uses a stand-in with the same semantics, one frame per message:

==========  ==========  ============================================================
requested   stand-in    how
==========  ==========  ============================================================
CLIENT      DEALER      routing ids unneeded; replies come back to the asker
SERVER      ROUTER      integer routing ids on received messages, replies routed by them
SCATTER     PUSH        round-robin to gatherers
GATHER      PULL        fair-queued from scatterers
CHANNEL     PAIR        one peer
RADIO       PUB         ``[group + NUL, message]``; the group is the message's form
DISH        SUB         ``subscribe(group)`` joins the group (exact match)
==========  ==========  ============================================================

PEER has no stand-in (a clear error); STREAM and DGRAM carry raw bytes and are refused.
Stand-ins only talk to stand-ins: a port advertises its ``carrier`` socket type.
"""
from __future__ import annotations

import enum
from typing import NamedTuple

import zmq

from .errors import ConfigurationError


class Framing(enum.Enum):
    """How a socket type carries the parts of a message."""

    MULTIPART = "multipart"  # one frame per part
    DEALER = "dealer"  # an empty delimiter frame, then one frame per part
    ROUTER = "router"  # [routing id, empty delimiter, parts...]
    SINGLE = "single"  # one frame holding all parts, CZMQ-encoded (draft sockets)
    ENCODED = "encoded"  # one frame holding all parts, on a multipart stand-in
    SERVER_OVER_ROUTER = "server-over-router"  # [routing id, one encoded frame] on a ROUTER
    RADIO_OVER_PUB = "radio-over-pub"  # [group + NUL, one encoded frame] on a PUB
    DISH_OVER_SUB = "dish-over-sub"  # the same, received on a SUB


class SocketPlan(NamedTuple):
    """What a port asked for, what socket it really opens, and how messages are framed."""

    requested: int
    name: str
    actual: int
    framing: Framing

    @property
    def emulated(self) -> bool:
        """True when the socket opened is a stand-in for the requested type."""
        return self.actual != self.requested


_NAMES = {
    "PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB",
    "STREAM", "SERVER", "CLIENT", "RADIO", "DISH", "GATHER", "SCATTER", "DGRAM", "PEER",
    "CHANNEL",
}
SOCKET_NAMES: dict[int, str] = {
    int(getattr(zmq, name)): name for name in _NAMES if hasattr(zmq, name)
}

_DRAFT_SINGLE_PART = {"SERVER", "CLIENT", "RADIO", "DISH", "GATHER", "SCATTER", "PEER", "CHANNEL"}
_STAND_INS = {
    "CLIENT": (zmq.DEALER, Framing.ENCODED),
    "SERVER": (zmq.ROUTER, Framing.SERVER_OVER_ROUTER),
    "SCATTER": (zmq.PUSH, Framing.ENCODED),
    "GATHER": (zmq.PULL, Framing.ENCODED),
    "CHANNEL": (zmq.PAIR, Framing.ENCODED),
    "RADIO": (zmq.PUB, Framing.RADIO_OVER_PUB),
    "DISH": (zmq.SUB, Framing.DISH_OVER_SUB),
}


def group_topic(group: str | bytes) -> bytes:
    """The first frame (and SUB filter) of a RADIO/DISH stand-in message for ``group``."""
    raw = group.encode() if isinstance(group, str) else bytes(group)
    if b"\0" in raw:
        raise ConfigurationError(f"a group name cannot contain NUL: {group!r}")
    return raw + b"\0"


def has_draft() -> bool:
    """True when the installed libzmq offers the draft socket types."""
    return bool(zmq.has("draft"))


def plan_socket(socket_type: int) -> SocketPlan:
    """Decide the real socket and framing for a requested ZeroMQ socket type."""
    if isinstance(socket_type, bool) or not isinstance(socket_type, int):
        raise ConfigurationError(f"socket type must be a zmq socket-type constant, not {socket_type!r}")
    name = SOCKET_NAMES.get(int(socket_type))
    if name is None:
        raise ConfigurationError(f"unknown ZeroMQ socket type {socket_type!r}")
    requested = int(socket_type)
    if name in ("STREAM", "DGRAM"):
        raise ConfigurationError(
            f"{name} sockets carry raw bytes, not zio messages; use a plain pyzmq socket"
        )
    if name in _DRAFT_SINGLE_PART:
        if has_draft():
            return SocketPlan(requested, name, requested, Framing.SINGLE)
        if name in _STAND_INS:
            actual, framing = _STAND_INS[name]
            return SocketPlan(requested, name, int(actual), framing)
        raise ConfigurationError(
            f"{name} is a draft socket type and this libzmq has no draft API "
            "(zmq.has('draft') is False); build pyzmq against a draft libzmq to use it"
        )
    if name == "DEALER":
        return SocketPlan(requested, name, requested, Framing.DEALER)
    if name == "ROUTER":
        return SocketPlan(requested, name, requested, Framing.ROUTER)
    return SocketPlan(requested, name, requested, Framing.MULTIPART)


#: Which socket types a socket type can talk to (ZeroMQ's valid pairs, by requested name).
_PARTNERS: dict[str, frozenset[str]] = {
    name: frozenset(partners.split())
    for name, partners in {
        "PAIR": "PAIR", "PUB": "SUB XSUB", "XPUB": "SUB XSUB", "SUB": "PUB XPUB", "XSUB": "PUB XPUB",
        "REQ": "REP ROUTER", "REP": "REQ DEALER", "DEALER": "REP ROUTER DEALER",
        "ROUTER": "REQ DEALER ROUTER", "PUSH": "PULL", "PULL": "PUSH", "CLIENT": "SERVER",
        "SERVER": "CLIENT", "RADIO": "DISH", "DISH": "RADIO", "SCATTER": "GATHER",
        "GATHER": "SCATTER", "PEER": "PEER", "CHANNEL": "CHANNEL",
    }.items()
}


def can_talk(local: str, remote: str) -> bool:
    """True when a ``local`` socket (a ZeroMQ type name) can exchange messages with a ``remote`` one.

    Unknown names (a newer libzmq's, a typo in a peer's header) are given the benefit of the doubt.
    """
    partners = _PARTNERS.get(local.upper())
    return partners is None or remote.upper() not in _PARTNERS or remote.upper() in partners


def routing_id_to_int(rid: bytes) -> int | bytes:
    """Turn a ROUTER's generated 5-byte routing id into the integer a SERVER would give."""
    if len(rid) == 5 and rid[0] == 0:
        return int.from_bytes(rid[1:], "big")
    return bytes(rid)


def routing_id_to_bytes(rid: int | bytes) -> bytes:
    """Inverse of :func:`routing_id_to_int`: the ROUTER routing id for a SERVER-style id."""
    if isinstance(rid, int):
        if not 0 < rid < 2**32:
            raise ConfigurationError(f"routing id {rid!r} is out of range (1 .. 2**32-1)")
        return b"\x00" + rid.to_bytes(4, "big")
    return bytes(rid)
