"""The plugin manager: finds discovery backends contributed through the ``zio`` entry points."""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, NamedTuple

import pluggy

from . import config, hookspecs
from .discovery import Discovery
from .errors import BackendError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "zio"

_manager: pluggy.PluginManager | None = None
_manager_lock = threading.Lock()


class BackendInfo(NamedTuple):
    """One available backend: its name, its factory and the distribution that provides it."""

    name: str
    factory: Callable[..., Discovery]
    package: str


def plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading the ``zio`` entry points on first use."""
    global _manager
    with _manager_lock:
        if _manager is None:
            manager = pluggy.PluginManager(hookspecs.PROJECT)
            manager.add_hookspecs(hookspecs)
            manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            _manager = manager
        return _manager


def reload_plugins() -> None:
    """Forget loaded plugins so the next lookup scans the entry points again (new installs)."""
    global _manager
    with _manager_lock:
        _manager = None


def _is_builtin(plugin: object) -> bool:
    return getattr(plugin, "__name__", "").startswith("zio_plugins")


def _package_of(manager: pluggy.PluginManager, plugin: object) -> str:
    """"name version" of the distribution that registered ``plugin`` (read once, then cached)."""
    cache: dict[int, str] = manager.__dict__.setdefault("_zio_packages", {})
    key = id(plugin)
    if key not in cache:
        cache[key] = getattr(plugin, "__name__", repr(plugin))
        for registered, dist in manager.list_plugin_distinfo():
            if registered is plugin:
                cache[key] = f"{dist.project_name} {dist.version}"
    return cache[key]


def available_backends() -> dict[str, BackendInfo]:
    """Return every discovery backend the installed plugins offer, by name."""
    manager = plugin_manager()
    found: dict[str, BackendInfo] = {}
    impls = manager.hook.zio_discovery_backends.get_hookimpls()
    # the built-in backends keep their names whatever else is installed
    impls.sort(key=lambda impl: not _is_builtin(impl.plugin))
    for impl in impls:
        try:
            offered = impl.function() or {}
        except Exception:  # a broken third-party plugin must not break discovery of the others
            log.exception("zio plugin %r failed to list its backends", impl.plugin_name)
            continue
        package = _package_of(manager, impl.plugin)
        for name, factory in dict(offered).items():
            if name in found:
                log.warning(
                    "backend %r from %s ignored: already provided by %s",
                    name, package, found[name].package,
                )
                continue
            found[name] = BackendInfo(name, factory, package)
    return found


def make_backend(discovery: str | Discovery | None = None, **options: Any) -> Discovery:
    """Return a new backend object: ``discovery`` is a name, a ready object, or None (env/default)."""
    if isinstance(discovery, Discovery):
        if options:
            raise BackendError("options cannot be given with an already built backend object")
        return discovery
    if discovery is None:
        discovery = config.discovery_name()
    if not isinstance(discovery, str):
        raise BackendError(f"discovery must be a backend name or a zio.Discovery, not {discovery!r}")
    backends = available_backends()
    info = backends.get(discovery)
    if info is None:
        names = ", ".join(sorted(backends)) or "none (is zio installed?)"
        raise BackendError(f"unknown discovery backend {discovery!r}; available: {names}")
    backend = info.factory(**options)
    if not isinstance(backend, Discovery):
        raise BackendError(f"backend {discovery!r} from {info.package} did not return a zio.Discovery")
    return backend
