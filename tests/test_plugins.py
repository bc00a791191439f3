"""Plugins: backends found through the "zio" entry points, by name, env var or object."""
from __future__ import annotations

import pytest

import zio
from zio import plugins

def test_builtin_beacon_is_registered_through_entry_points():
    backends = zio.available_backends()
    assert "beacon" in backends
    assert backends["beacon"].package.startswith("zio ")


def test_outside_package_backend_is_found_and_used_by_name(memory_plugin):
    backends = zio.available_backends()
    assert backends["memory"].package == "zio-test-memory 1.0"
    with zio.Peer("one", discovery="memory", colour="red") as one, zio.Peer("two", discovery="memory") as two:
        assert type(one.backend).__name__ == "MemoryDiscovery"
        [uuid] = two.waitfor("one", 1000)
        assert two.peers[uuid].headers == {"colour": "red"}


def test_discovery_from_environment(memory_plugin, monkeypatch):
    monkeypatch.setenv("ZIO_DISCOVERY", "memory")
    with zio.Peer("env") as peer:
        assert peer.backend.name == "memory"


def test_unknown_backend_lists_the_available_ones(memory_plugin):
    with pytest.raises(zio.BackendError) as caught:
        zio.Peer("x", discovery="no-such-backend")
    message = str(caught.value)
    assert "no-such-backend" in message and "beacon" in message and "memory" in message
    assert isinstance(caught.value, zio.ZioError)


def test_backend_options_and_objects(memory_plugin):
    backend = zio.make_backend("memory", flavour="plain")
    assert backend.options == {"flavour": "plain"}
    with zio.Peer("obj", discovery=backend) as peer:
        assert peer.backend is backend
    with pytest.raises(zio.BackendError):
        zio.make_backend(backend, flavour="again")
    with pytest.raises(zio.BackendError):
        zio.make_backend(42)


def test_a_broken_plugin_does_not_hide_the_others(memory_plugin, caplog):
    class Broken:
        @zio.hookimpl
        def zio_discovery_backends(self):
            raise RuntimeError("boom")

    manager = plugins.plugin_manager()
    manager.register(Broken(), name="broken")
    assert {"beacon", "memory"} <= set(zio.available_backends())
    assert "boom" in caplog.text


def test_a_plugin_cannot_take_a_builtin_name(memory_plugin, caplog):
    class Usurper:
        @zio.hookimpl
        def zio_discovery_backends(self):
            return {"beacon": object}

    plugins.plugin_manager().register(Usurper(), name="usurper")
    assert zio.available_backends()["beacon"].factory.__module__ == "zio_plugins.beacon"
    assert "ignored" in caplog.text


def test_every_hook_is_documented():
    from zio import hookspecs

    for name in dir(hookspecs):
        if name.startswith("zio_"):
            assert getattr(hookspecs, name).__doc__
