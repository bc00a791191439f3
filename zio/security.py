"""zio.Security: who may join and who may receive, with ZeroMQ's own CURVE and ZAP.

Keys are ZeroMQ certificate files as ``zmq.auth.create_certificates`` and CZMQ's zcert
write them: ``NAME.key`` (public) and ``NAME.key_secret`` (secret). A :class:`Security`
holds this node's secret certificate and a directory of trusted public certificates:

- every port it is given binds as a CURVE server whose ZAP handler admits only trusted
  client keys (:func:`ensure_zap`: one small ZAP handler per context, dispatching on the
  socket's ZAP domain, so that nodes with different keys may share a context);
- a certificate's metadata ``nick`` pins the nickname that key may advertise;
- the trusted directory is re-read when it changes (polled every ``reread_s``); listeners
  hear which keys came and went, so that peers are admitted or dropped without restarts.

Security is off by default. It is on when ``$ZIO_CERT`` (the secret certificate file) and
``$ZIO_TRUSTED`` (the directory) are set, or when a Security is passed as ``security=``.
"""
from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Callable

import zmq
import zmq.auth

from . import config
from .errors import ConfigurationError

log = logging.getLogger(__name__)

#: The peer header carrying a node's CURVE public key (Z85), as Zyre's secure mode names it.
KEY_HEADER = "X-PUBLICKEY"
#: How often the trusted directory is looked at for changes (seconds).
REREAD_S = 0.5
ZAP_ENDPOINT = "inproc://zeromq.zap.01"

#: ``listener(added, removed)``: sets of Z85 public keys, called from the watcher thread.
TrustListener = Callable[[frozenset, frozenset], None]

_META = re.compile(r'^\s+(\w[\w-]*)\s*=\s*"?([^"]*)"?\s*$')


@dataclass(frozen=True)
class Certificate:
    """One certificate file: its Z85 public key, secret key (None for a public one), metadata."""

    path: str
    public: bytes
    secret: bytes | None
    metadata: dict

    @property
    def nick(self) -> str | None:
        """The nickname this key is pinned to (metadata ``nick``), or None."""
        return self.metadata.get("nick") or None


def _metadata(path: str) -> dict:
    """The ``metadata`` section of a ZPL certificate file (zmq.auth does not return it)."""
    found: dict = {}
    section = ""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line[0].isspace():
                section = line.strip()
                continue
            match = _META.match(line.rstrip("\n"))
            if section == "metadata" and match:
                found[match.group(1)] = match.group(2)
    return found


def read_certificate(path: str | os.PathLike) -> Certificate:
    """Load a certificate file; ConfigurationError naming the file when it cannot be used."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigurationError(f"certificate file {path!r} does not exist")
    try:
        public, secret = zmq.auth.load_certificate(path)
        metadata = _metadata(path)
    except OSError as err:
        raise ConfigurationError(f"certificate file {path!r} cannot be read: {err}") from None
    except Exception as err:  # zmq.auth raises ValueError and friends on bad content
        raise ConfigurationError(f"certificate file {path!r} is not a ZeroMQ certificate: {err}") from None
    if not public or len(public) != 40 or (secret is not None and len(secret) != 40):
        raise ConfigurationError(f"certificate file {path!r} does not hold a 40-character Z85 CURVE key")
    try:
        zmq.utils.z85.decode(public)
    except Exception:
        raise ConfigurationError(f"certificate file {path!r} holds a key that is not Z85") from None
    return Certificate(path, public, secret, metadata)


def write_certificates(directory: str | os.PathLike, name: str, nick: str | None = None) -> tuple[str, str]:
    """Write ``NAME.key`` and ``NAME.key_secret`` in ``directory`` (created if missing);
    with ``nick``, both carry the metadata ``nick``. Returns the two paths."""
    directory = os.fspath(directory)
    if not name or "/" in name or name.startswith("."):
        raise ConfigurationError(f"a certificate name must be a plain file name, not {name!r}")
    os.makedirs(directory, exist_ok=True)
    public, secret = zmq.curve_keypair()
    meta = f"    nick = \"{nick}\"\n" if nick else ""
    paths = []
    for suffix, lines in ((".key", [public]), (".key_secret", [public, secret])):
        path = os.path.join(directory, name + suffix)
        body = ["#   ZeroMQ CURVE certificate written by zio keygen", "metadata"]
        text = "\n".join(body) + "\n" + meta + "curve\n"
        text += f'    public-key = "{lines[0].decode()}"\n'
        if len(lines) == 2:
            text += f'    secret-key = "{lines[1].decode()}"\n'
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        fd = os.open(path, flags, 0o600 if suffix == ".key_secret" else 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        paths.append(path)
    return paths[0], paths[1]


class Security:
    """This node's CURVE certificate and the trusted public certificates.

    ``cert`` is this node's secret certificate file (``NAME.key_secret``), ``trusted`` a
    directory of public certificates (``*.key``; a malformed one is skipped with a WARNING
    naming it). The directory is re-read every ``reread_s`` seconds when it changed.
    """

    def __init__(self, cert: str | os.PathLike, trusted: str | os.PathLike, *, reread_s: float = REREAD_S):
        own = read_certificate(cert)
        if own.secret is None:
            raise ConfigurationError(
                f"certificate file {own.path!r} holds only a public key: this node needs its secret "
                "certificate (NAME.key_secret, as written by 'zio keygen')"
            )
        self.cert = own
        self.public_key: bytes = own.public
        self.secret_key: bytes = own.secret
        self.trusted_dir = os.fspath(trusted)
        if not os.path.isdir(self.trusted_dir):
            raise ConfigurationError(f"trusted certificate directory {self.trusted_dir!r} does not exist")
        #: the ZAP domain of this Security's sockets (the ZAP handler dispatches on it)
        self.domain = f"zio-{id(self):x}"
        self._lock = threading.Lock()
        self._trusted: dict[bytes, Certificate] = {}
        self._signature: tuple = ()
        self._warned: set[str] = set()
        self._listeners: list[weakref.ref] = []
        self._closed = threading.Event()
        self.reread_s = reread_s
        self.reload()
        _DOMAINS[self.domain] = self
        self._watcher = threading.Thread(
            target=_watch, args=(weakref.ref(self), self._closed, reread_s), name="zio-trust-watch", daemon=True
        )
        self._watcher.start()

    @classmethod
    def from_env(cls) -> "Security | None":
        """The Security of ``$ZIO_CERT`` and ``$ZIO_TRUSTED`` (one object per pair), or None when unset."""
        cert, trusted = config.env_str("ZIO_CERT"), config.env_str("ZIO_TRUSTED")
        if cert is None and trusted is None:
            return None
        if cert is None or trusted is None:
            missing = "$ZIO_TRUSTED" if cert else "$ZIO_CERT"
            raise ConfigurationError(f"security needs both $ZIO_CERT and $ZIO_TRUSTED; {missing} is not set")
        with _ENV_LOCK:
            found = _ENV_CACHE.get((cert, trusted))
            if found is None or found._closed.is_set():
                found = _ENV_CACHE[(cert, trusted)] = cls(cert, trusted)
            return found

    # -- the trusted keys -------------------------------------------------------------
    def _dir_signature(self) -> tuple:
        entries = []
        try:
            with os.scandir(self.trusted_dir) as it:
                for entry in it:
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    entries.append((entry.name, st.st_mtime_ns, st.st_size))
        except OSError as err:
            return (("?", str(err)),)
        return tuple(sorted(entries))

    def reload(self) -> tuple[frozenset, frozenset]:
        """Re-read the trusted directory now; return the keys (added, removed) and tell listeners."""
        signature = self._dir_signature()
        found: dict[bytes, Certificate] = {}
        try:
            names = sorted(os.listdir(self.trusted_dir))
        except OSError as err:
            log.warning("trusted certificate directory %r cannot be read: %s", self.trusted_dir, err)
            names = []
        for name in names:
            if not name.endswith(".key"):
                continue
            path = os.path.join(self.trusted_dir, name)
            try:
                cert = read_certificate(path)
            except ConfigurationError as err:
                if path not in self._warned:
                    self._warned.add(path)
                    log.warning("skipping trusted certificate %s: %s", path, err)
                continue
            found[cert.public] = cert
        if not found and ("<empty>" not in self._warned):
            self._warned.add("<empty>")
            log.warning("trusted certificate directory %r holds no certificate: no peer can be admitted",
                        self.trusted_dir)
        elif found:
            self._warned.discard("<empty>")
        with self._lock:
            before = self._trusted
            self._trusted = found
            self._signature = signature
            changed = {k for k in found.keys() & before.keys() if found[k].nick != before[k].nick}
        added = frozenset(found.keys() - before.keys())
        removed = frozenset(before.keys() - found.keys())
        if added or removed or changed:
            log.info("trusted certificates re-read: %d added, %d removed", len(added), len(removed))
            self._notify(added | frozenset(changed), removed)
        return added, removed

    def _changed(self) -> bool:
        return self._dir_signature() != self._signature

    @property
    def trusted(self) -> dict[bytes, Certificate]:
        """A snapshot of the trusted certificates, by Z85 public key."""
        with self._lock:
            return dict(self._trusted)

    def is_trusted(self, key: bytes | str) -> bool:
        """True when ``key`` (Z85) belongs to a trusted certificate."""
        key = key.encode() if isinstance(key, str) else key
        with self._lock:
            return key in self._trusted

    def refusal(self, key: bytes | str | None, nick: str) -> str | None:
        """Why a peer advertising ``key`` under ``nick`` cannot be admitted, or None if it may."""
        if not key:
            return "advertises no key: its security is off"
        key = key.encode() if isinstance(key, str) else key
        with self._lock:
            cert = self._trusted.get(key)
        if cert is None:
            return f"advertises key {key.decode(errors='replace')[:40]}, which is not trusted"
        if cert.nick is not None and cert.nick != nick:
            return f"uses the key of {os.path.basename(cert.path)}, which may only be {cert.nick!r}"
        return None

    # -- listeners ----------------------------------------------------------------------
    def add_listener(self, listener: TrustListener) -> None:
        """Call ``listener(added, removed)`` when trusted keys change (held weakly for methods)."""
        ref: weakref.ref
        if hasattr(listener, "__self__"):
            ref = weakref.WeakMethod(listener)
        else:
            ref = weakref.ref(listener)
        with self._lock:
            self._listeners.append(ref)

    def _notify(self, added: frozenset, removed: frozenset) -> None:
        with self._lock:
            self._listeners = [r for r in self._listeners if r() is not None]
            listeners = [r() for r in self._listeners]
        for listener in listeners:
            if listener is None:
                continue
            try:
                listener(added, removed)
            except Exception:
                log.exception("trust listener %r failed", listener)

    # -- sockets ------------------------------------------------------------------------
    def apply_server(self, sock: zmq.Socket) -> None:
        """Make what ``sock`` binds next a CURVE server behind this Security's ZAP allow-list."""
        ensure_zap(sock.context)
        sock.setsockopt(zmq.ZAP_DOMAIN, self.domain.encode())
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public_key)
        sock.setsockopt(zmq.CURVE_SERVER, 1)

    def apply_client(self, sock: zmq.Socket, server_key: bytes | str) -> None:
        """Make what ``sock`` connects next a CURVE client of the server holding ``server_key``."""
        server_key = server_key.encode() if isinstance(server_key, str) else server_key
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public_key)
        sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)

    def close(self) -> None:
        """Stop watching the trusted directory."""
        self._closed.set()
        _DOMAINS.pop(self.domain, None)

    def __repr__(self) -> str:
        return f"<zio.Security key={self.public_key.decode()[:8]}... trusted={len(self.trusted)} in {self.trusted_dir!r}>"


def _watch(ref: "weakref.ref[Security]", closed: threading.Event, every: float) -> None:
    """Re-read the trusted directory when it changes, until the Security closes or goes."""
    while not closed.wait(every):
        security = ref()
        if security is None:
            return
        try:
            if security._changed():
                security.reload()
        except Exception:
            log.exception("re-reading the trusted certificates failed")
        del security


_ENV_CACHE: dict[tuple[str, str], Security] = {}
_ENV_LOCK = threading.Lock()
_DOMAINS: "weakref.WeakValueDictionary[str, Security]" = weakref.WeakValueDictionary()


def resolve(security: "Security | bool | None") -> Security | None:
    """The Security to use: the one given, None for ``False``, else the environment's (or None)."""
    if security is False:
        return None
    if security is None or security is True:
        found = Security.from_env()
        if found is None and security is True:
            raise ConfigurationError("security=True needs $ZIO_CERT and $ZIO_TRUSTED")
        return found
    if not isinstance(security, Security):
        raise ConfigurationError(f"security must be a zio.Security, True, False or None, not {security!r}")
    return security


# -- ZAP ------------------------------------------------------------------------------
_ZAP_LOCK = threading.Lock()
_ZAP_CONTEXTS: "weakref.WeakKeyDictionary[zmq.Context, tuple[threading.Thread, int]]" = weakref.WeakKeyDictionary()
_ZAP_WARNED: set[tuple[str, bytes]] = set()
_ZAP_STOP = threading.Event()
_ZAP_REGISTERED: list[bool] = []
_PRIVATE: list[zmq.Context] = []


def private_context() -> zmq.Context:
    """zio's own context for its trust machinery (never destroyed under its threads at exit)."""
    with _ZAP_LOCK:
        if not _PRIVATE:
            _PRIVATE.append(zmq.Context())
        return _PRIVATE[0]


def _stop_zap() -> None:
    """At exit, before zio's contexts are destroyed: ZAP threads close their own sockets."""
    _ZAP_STOP.set()
    for context in list(_ZAP_CONTEXTS.keys()):
        release_zap(context)


def release_zap(context: zmq.Context) -> None:
    """Stop the ZAP handler of ``context`` (before the context is destroyed: destroy()
    would close the handler's socket under its thread)."""
    with _ZAP_LOCK:
        entry = _ZAP_CONTEXTS.pop(context, None)
    if entry is None:
        return
    thread, wake = entry
    try:
        os.write(wake, b"x")
    except OSError:
        pass
    if thread is not threading.current_thread():
        thread.join(1.0)
    os.close(wake)


def ensure_zap(context: zmq.Context) -> None:
    """Run zio's ZAP handler on ``context`` (once per context)."""
    with _ZAP_LOCK:
        if context in _ZAP_CONTEXTS:
            return
        handler = context.socket(zmq.REP)
        handler.setsockopt(zmq.LINGER, 0)
        try:
            handler.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as err:
            handler.close(0)
            raise ConfigurationError(
                f"cannot run zio's ZAP handler on this context ({err}): another authenticator "
                "(e.g. zmq.auth.ThreadAuthenticator) already serves it"
            ) from None
        wake_r, wake_w = os.pipe()
        thread = threading.Thread(target=_serve_zap, args=(handler, wake_r), name="zio-zap", daemon=True)
        if not _ZAP_REGISTERED:
            # registered now, after zio.port's exit handler: it runs before that one
            _ZAP_REGISTERED.append(True)
            atexit.register(_stop_zap)
        _ZAP_CONTEXTS[context] = (thread, wake_w)
        thread.start()


def _zap_decision(frames: list[bytes]) -> tuple[bytes, bytes, bytes]:
    """(status code, text, user id) for one ZAP request; network input never raises."""
    domain = frames[2].decode(errors="replace")
    mechanism = frames[5]
    if mechanism == b"NULL" and not domain.startswith("zio-"):
        return b"200", b"OK", b""  # not ours: a plain socket of the application
    if mechanism != b"CURVE" or len(frames) < 7 or len(frames[6]) != 32:
        return b"400", b"zio: CURVE only", b""
    security = _DOMAINS.get(domain)
    key = zmq.utils.z85.encode(frames[6])
    if security is None:
        return b"400", b"zio: unknown domain", b""
    if not security.is_trusted(key):
        address = frames[3].decode(errors="replace")
        mark = (domain, key)
        if mark not in _ZAP_WARNED:
            if len(_ZAP_WARNED) > 1000:
                _ZAP_WARNED.clear()
            _ZAP_WARNED.add(mark)
            log.warning("refused a CURVE client from %s: key %s is not trusted", address, key.decode())
        return b"400", b"zio: key not trusted", b""
    return b"200", b"OK", key


def _serve_zap(handler: zmq.Socket, wake_r: int) -> None:
    """Answer ZAP requests until the context ends or :func:`release_zap` wakes us."""
    poller = zmq.Poller()
    poller.register(handler, zmq.POLLIN)
    poller.register(wake_r, zmq.POLLIN)
    while not _ZAP_STOP.is_set():
        try:
            ready = dict(poller.poll(1000))
            if wake_r in ready:
                break
            if handler not in ready:
                continue
            frames = handler.recv_multipart(zmq.NOBLOCK)
        except zmq.ContextTerminated:
            break
        except zmq.ZMQError:
            continue
        if len(frames) < 6:
            continue
        try:
            status, text, user = _zap_decision(frames)
        except Exception:  # noqa: BLE001 - a bad request is refused, the handler goes on
            log.exception("ZAP request failed")
            status, text, user = b"500", b"zio: internal error", b""
        try:
            handler.send_multipart([b"1.0", frames[1], status, text, user, b""])
        except zmq.ContextTerminated:
            break
        except zmq.ZMQError:
            pass
    handler.close(0)
    os.close(wake_r)  # the write end is release_zap()'s to close


__all__ = ["Certificate", "KEY_HEADER", "Security", "read_certificate", "resolve", "write_certificates"]
