"""zio: talk over ZeroMQ by name.

A :class:`Port` wraps a pyzmq socket and binds/connects to plain ZeroMQ addresses or to
``(node, port)`` names that a discovery backend (:class:`Peer`) resolves on the LAN.
A :class:`Node` owns ports and brings them online together. See the README.
"""
import logging as _logging

# A library leaves logging to the application: without a configured handler, zio's
# warnings (e.g. a node not found by online()) are not printed by Python's last resort.
_logging.getLogger("zio").addHandler(_logging.NullHandler())
_logging.getLogger("zio_plugins").addHandler(_logging.NullHandler())

from .discovery import ENTER, EXIT, LEFT, LOST, STOPPED, UPDATE, Discovery, PeerEvent, PeerInfo
from .errors import (
    BackendError,
    ConfigurationError,
    DiscoveryError,
    MalformedError,
    PortError,
    PortTimeout,
    ResourceLimitError,
    ZioError,
)
from .hookspecs import hookimpl
from .message import CoordHeader, Message, MessageLevel, PrefixHeader
from .node import Node
from .peer import Peer
from .plugins import BackendInfo, available_backends, make_backend
from .port import Port
from .security import Security

__version__ = "0.1.0"

__all__ = [
    "BackendError", "BackendInfo", "ConfigurationError", "CoordHeader", "Discovery",
    "DiscoveryError", "ENTER", "EXIT", "LEFT", "LOST", "STOPPED", "MalformedError", "Message", "MessageLevel", "Node",
    "Peer", "PeerEvent", "PeerInfo", "Port", "PortError", "PortTimeout", "PrefixHeader", "ResourceLimitError", "Security",
    "UPDATE", "ZioError",
    "available_backends", "hookimpl", "make_backend",
]
