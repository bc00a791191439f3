"""zio.Node on the beacon backend: ports by name, headers, origin, offline/online cycles."""
from __future__ import annotations

import pytest
import zmq

import zio

pytestmark = [pytest.mark.needs_netns, pytest.mark.usefixtures("discovery")]


def test_client_server_by_name_with_label_object():
    with zio.Node("server", 42) as snode, zio.Node("client") as cnode:
        snode.port("sport", zmq.SERVER).bind()
        snode.online()
        cnode.port("cport", zmq.CLIENT).connect("server", "sport")
        cnode.online()
        sport, cport = snode.port("sport"), cnode.port("cport")
        cport.send(zio.Message(form="TEST", label_object={"foo": "bar"}))
        msg = sport.recv(2000)
        assert msg.form == "TEST" and msg.label_object == {"foo": "bar"}
        sport.send(msg)
        assert cport.recv(2000).origin == 42


def test_node_advertises_port_and_user_headers():
    with zio.Node("adv", hostname="127.0.0.1") as node, zio.Peer("watcher") as watcher:
        node.port("out", zmq.PUB).bind()
        node.online(colour="blue")
        [uuid] = watcher.waitfor("adv", 5000)
        headers = watcher.peers[uuid].headers
        assert headers["colour"] == "blue"
        assert headers["zio.port.out.socket"] == "PUB"
        assert headers["zio.port.out.address"] == node.port("out").bound[0]


def test_port_lookup_and_type_conflicts():
    node = zio.Node("n")
    with pytest.raises(KeyError):
        node.port("missing")
    port = node.port("p", zmq.PUSH)
    assert node.port("p") is port and port.origin == 0
    with pytest.raises(zio.ConfigurationError):
        node.port("p", zmq.PULL)
    node.close()


def test_offline_online_cycles():
    with zio.Node("server") as snode, zio.Node("client") as cnode:
        sport = snode.port("sport", zmq.PULL)
        cport = cnode.port("cport", zmq.PUSH)
        for cycle in range(3):
            sport.bind()
            snode.online()
            cport.connect("server", "sport")
            cnode.online()
            cport.send(zio.Message(form="CYC", seqno=cycle))
            msg = sport.recv(3000)
            assert msg is not None and msg.seqno == cycle
            cnode.offline()
            snode.offline()
            assert not snode.is_online and snode.peer is None


def test_failed_online_leaves_the_node_offline():
    node = zio.Node("bad")
    node.port("p", zmq.PULL).bind("tcp://192.0.2.1:1")
    with pytest.raises(zio.PortError):
        node.online()
    assert not node.is_online
    node.close()
