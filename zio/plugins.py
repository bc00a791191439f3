"""The plugin manager: finds discovery backends contributed through the ``zio`` entry points."""
from __future__ import annotations

import inspect
import logging
import threading
from typing import Any, Callable, Mapping, NamedTuple

import pluggy

from . import config, hookspecs
from .discovery import Discovery
from .errors import BackendError, ZioError

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
        if not isinstance(offered, Mapping):
            log.error("zio plugin %r listed its backends as a %s, not a mapping: ignored",
                      impl.plugin_name, type(offered).__name__)
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


def _lookup(discovery: str | Discovery | None) -> BackendInfo | Discovery:
    """The backend object itself, or the registered backend the name (or the environment) names."""
    if isinstance(discovery, Discovery):
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
    return info


def check_backend(discovery: str | Discovery | None = None) -> None:
    """Raise :class:`zio.BackendError` now if ``discovery`` names no available backend.

    Nothing is built or started: this is for constructors that create the backend later
    (``zio.Node`` makes it in ``online()``) but should refuse a bad name at once.
    """
    _lookup(discovery)


def _check_signature(info: BackendInfo, options: dict[str, Any]) -> None:
    """A factory that cannot take ``options`` is a plugin bug: say which plugin, in one line."""
    try:
        signature = inspect.signature(info.factory)
    except (TypeError, ValueError):  # no signature to read (some builtins): let the call decide
        return
    try:
        signature.bind(**options)
    except TypeError as err:
        given = ", ".join(f"{k}=" for k in options) or "no options"
        raise BackendError(
            f"backend {info.name!r} from {info.package} cannot be made with {given}: {err} "
            "(a backend factory should accept **options)"
        ) from None


def make_backend(discovery: str | Discovery | None = None, **options: Any) -> Discovery:
    """Return a new backend object: ``discovery`` is a name, a ready object, or None (env/default).

    The backend's factory is called with ``options`` (e.g. ``interface=``); a factory that
    cannot take them, or that fails with an error outside the zio hierarchy, raises
    :class:`zio.BackendError` naming the backend and its package.
    """
    found = _lookup(discovery)
    if isinstance(found, Discovery):
        if options:
            raise BackendError("options cannot be given with an already built backend object")
        return found
    info = found
    _check_signature(info, options)
    try:
        backend = info.factory(**options)
    except ZioError:
        raise
    except Exception as err:
        raise BackendError(
            f"backend {info.name!r} from {info.package} failed: {type(err).__name__}: {err}"
        ) from err
    if not isinstance(backend, Discovery):
        raise BackendError(f"backend {info.name!r} from {info.package} did not return a zio.Discovery")
    return backend
