"""The one exception hierarchy of zio: everything zio raises on purpose derives from ZioError."""


class ZioError(Exception):
    """Base class of every error zio raises on purpose."""


class MalformedError(ZioError, ValueError):
    """Bytes from the wire (a message, prefix, coord, beacon or frame) do not parse."""


class ConfigurationError(ZioError, ValueError):
    """An argument or environment setting is invalid (bad socket type, header, interface...)."""


class BackendError(ZioError, LookupError):
    """A discovery backend cannot be found by name or cannot be loaded (missing extra)."""


class PortError(ZioError, RuntimeError):
    """A port cannot do what was asked in its current state (e.g. resolve names with no peer)."""


class DiscoveryError(ZioError, RuntimeError):
    """A discovery backend failed to start or to run (no usable interface, port in use...)."""


class PortTimeout(PortError, TimeoutError):
    """A port could not send within the time it was given (no peer could take the message)."""


class ResourceLimitError(ZioError, OSError):
    """The process may not open the files or sockets zio needs (``ulimit -n`` too low)."""
