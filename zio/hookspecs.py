"""Every hook a zio plugin may implement, declared once (pluggy project name "zio").

A plugin is any module or object registered under the entry-point group ``zio``::

    [project.entry-points.zio]
    mybackend = "my_package.zio_plugin"

whose hook implementations are marked with :data:`zio.hookimpl`.
"""
from __future__ import annotations

from typing import Callable, Mapping

import pluggy

from .discovery import Discovery

PROJECT = "zio"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def zio_discovery_backends() -> Mapping[str, Callable[..., Discovery]]:
    """Return the discovery backends this plugin contributes, as ``{name: factory}``.

    ``factory(**options)`` must return a new, not yet started :class:`zio.Discovery`.
    It is only called when a user picks the backend, so a backend with optional
    dependencies should import them inside the factory and raise
    :class:`zio.BackendError` naming the extra to install when they are missing.
    Names are case-sensitive; the first plugin to claim a name keeps it.
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations
