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


def test_node_refuses_an_unknown_backend_at_construction(memory_plugin, monkeypatch):
    with pytest.raises(zio.BackendError) as at_node:
        zio.Node("n", discovery="nope")
    with pytest.raises(zio.BackendError) as at_peer:
        zio.Peer("n", discovery="nope")
    assert str(at_node.value) == str(at_peer.value)  # the same clear message as online() gave
    assert "unknown discovery backend 'nope'" in str(at_node.value) and "memory" in str(at_node.value)
    with pytest.raises(zio.BackendError):
        zio.Node("n", discovery=42)
    monkeypatch.setenv("ZIO_DISCOVERY", "nope")
    with pytest.raises(zio.BackendError, match="'nope'"):
        zio.Node("n")
    node = zio.Node("n", discovery="memory")  # a good name builds nothing yet
    assert node.peer is None


class _NoOptions(zio.Discovery):
    """Written as a newcomer would: no __init__, so it takes no options."""

    name = "plain"

    def start(self, uuid, nickname, headers, report):
        pass

    def stop(self):
        pass


def _register(backends):
    class Plugin:
        @zio.hookimpl
        def zio_discovery_backends(self):
            return backends

    plugins.plugin_manager().register(Plugin(), name=f"test-{id(backends)}")


def test_a_factory_with_the_wrong_signature_is_a_one_line_backend_error(memory_plugin):
    _register({"plain": _NoOptions})
    assert isinstance(zio.make_backend("plain"), _NoOptions)  # no options: fine
    with pytest.raises(zio.BackendError) as caught:
        zio.make_backend("plain", interface="lo")
    message = str(caught.value)
    assert "\n" not in message
    assert "'plain'" in message and "interface=" in message and "**options" in message


def test_a_factory_that_fails_is_a_backend_error_naming_it(memory_plugin):
    def broken(**options):
        raise RuntimeError("no socket for you")

    def refuses(**options):
        raise zio.ConfigurationError("bad option")

    _register({"broken": broken, "refuses": refuses})
    with pytest.raises(zio.BackendError, match="'broken'.*RuntimeError: no socket for you"):
        zio.make_backend("broken")
    with pytest.raises(zio.ConfigurationError, match="bad option"):  # zio errors pass unchanged
        zio.make_backend("refuses")
