"""Backend "static" for zio: peers listed in JSON, for networks without broadcast or multicast.

Registered through the ``zio`` entry-point group in this package's pyproject.toml; zio
finds it by name (``discovery="static"`` or ``$ZIO_DISCOVERY=static``).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import uuid as uuidlib
from typing import Any, Mapping

import zio

log = logging.getLogger(__name__)

ENV_PEERS = "ZIO_STATIC_PEERS"
_NAMESPACE = uuidlib.UUID("7a1d8e0c-55f3-4c1e-9d2a-0b6f2f0c5a11")


def parse_peers(document: Any) -> dict[uuidlib.UUID, zio.PeerInfo]:
    """Turn a JSON document (a list of {nick, headers, uuid?}) into peer infos, by UUID."""
    if not isinstance(document, list):
        raise zio.ConfigurationError("static peers must be a JSON list of {nick, headers} objects")
    peers = {}
    for entry in document:
        if not isinstance(entry, dict) or not isinstance(entry.get("nick"), str) or not entry["nick"]:
            raise zio.ConfigurationError(f"static peer entry needs a non-empty 'nick': {entry!r}")
        headers = entry.get("headers", {})
        if not isinstance(headers, dict):
            raise zio.ConfigurationError(f"'headers' of {entry['nick']!r} must be an object")
        headers = {str(k): str(v) for k, v in headers.items()}
        if "uuid" in entry:
            try:
                uid = uuidlib.UUID(str(entry["uuid"]))
            except ValueError:
                raise zio.ConfigurationError(f"bad uuid for {entry['nick']!r}: {entry['uuid']!r}") from None
        else:
            uid = uuidlib.uuid5(_NAMESPACE, json.dumps([entry["nick"], headers], sort_keys=True))
        peers[uid] = zio.PeerInfo(uid, entry["nick"], headers)
    return peers


class StaticDiscovery(zio.Discovery):
    """Reports the peers of a JSON document; follows changes of the file it came from."""

    name = "static"

    def __init__(self, peers: list | None = None, file: str | None = None, poll: float = 1.0, **_: Any):
        self.file = file
        self.inline = peers
        if peers is None and file is None:
            source = os.environ.get(ENV_PEERS, "").strip()
            if not source:
                raise zio.ConfigurationError(f"static discovery needs peers=, file= or ${ENV_PEERS}")
            if source[0] in "[{":
                try:
                    self.inline = json.loads(source)
                except ValueError as err:
                    raise zio.ConfigurationError(f"${ENV_PEERS} is not valid JSON: {err}") from None
            else:
                self.file = source
        self.poll = poll
        self._known: dict[uuidlib.UUID, zio.PeerInfo] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mtime: float | None = None
        self._read()  # fail early on a bad document

    def _read(self) -> dict[uuidlib.UUID, zio.PeerInfo]:
        if self.file is None:
            return parse_peers(self.inline)
        try:
            self._mtime = os.stat(self.file).st_mtime
            with open(self.file, encoding="utf-8") as f:
                document = json.load(f)
        except (OSError, ValueError) as err:
            raise zio.ConfigurationError(f"cannot read static peers from {self.file}: {err}") from None
        return parse_peers(document)

    def _apply(self, peers: Mapping[uuidlib.UUID, zio.PeerInfo], report: zio.discovery.Reporter) -> None:
        for uid, info in list(self._known.items()):
            if uid not in peers:
                report(zio.PeerEvent(zio.EXIT, info))
        for info in peers.values():
            report(zio.PeerEvent(zio.ENTER, info))
        self._known = dict(peers)

    def start(self, uuid, nickname, headers, report) -> None:
        """Report the listed peers, then watch the file (if any) for changes."""
        self._apply(self._read(), report)
        if self.file is not None:
            self._thread = threading.Thread(target=self._watch, args=(report,), daemon=True,
                                            name=f"zio-static-{nickname}")
            self._thread.start()

    def _watch(self, report) -> None:
        while not self._stop.wait(self.poll):
            try:
                if os.stat(self.file).st_mtime != self._mtime:
                    self._apply(self._read(), report)
            except zio.ZioError as err:
                log.warning("static peers file %s unusable, keeping the last good list: %s", self.file, err)

    def stop(self) -> None:
        """Stop watching the file; idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def describe(self) -> dict[str, Any]:
        """Where the peers come from."""
        return {"backend": self.name, "source": self.file or "inline", "peers": len(self._known)}


@zio.hookimpl
def zio_discovery_backends():
    """The "static" backend."""
    return {"static": StaticDiscovery}
