"""The port tutorial of ZIO (the seed), step by step, with real addresses for its example hosts."""
from __future__ import annotations

import pytest
import zmq

import zio

pytestmark = [pytest.mark.needs_netns, pytest.mark.usefixtures("beacon_port")]


def test_1_create_a_port():
    port = zio.Port("client", zmq.CLIENT, "127.0.0.1")
    assert port.name == "client" and port.socket_type == zmq.CLIENT
    port.close()


def test_2_connecting_binding(tmp_path, monkeypatch):
    monkeypatch.setenv("ZIO_RESOLVE_TIMEOUT_MS", "100")
    servers = []
    for address in (f"ipc://{tmp_path}/myfifo.ipc", ("127.0.0.1", 0)):
        server = zio.Port(f"server{len(servers)}", zmq.SERVER)
        server.bind(*([address] if isinstance(address, str) else address))
        server.do_binds()
        server.online()
        servers.append(server)
    ipc_address, tcp_address = servers[0].bound[0], servers[1].bound[0]

    port = zio.Port("client", zmq.CLIENT, "127.0.0.1")
    port.connect(ipc_address)  # 1
    port.connect(tcp_address)  # 2
    port.connect("myfriend", "spigot")  # 3
    port.bind()  # 1
    port.bind(f"ipc://{tmp_path}/mine.ipc")  # 2
    port.bind("127.0.0.1", 0)  # 3 (port 0: any free TCP port)
    headers = port.do_binds()
    assert len(headers["zio.port.client.address"].split(" ")) == 3  # one space, as ZIO C++
    with zio.Peer("me", **headers) as peer:
        port.online(peer)  # "myfriend" is absent: online() returns after its bounded wait
        assert set(port.connected) == {ipc_address, tcp_address}
        for _ in servers:  # a CLIENT deals messages round-robin over its connections
            port.send(zio.Message(form="HI  "))
        for server in servers:
            assert server.recv(2000).form == "HI  "
        with zio.Node("myfriend") as friend:
            spigot = friend.port("spigot", zmq.SERVER)
            spigot.bind()
            friend.online()
            assert peer.waitfor("myfriend", 5000)
            # the friend appeared: the port follows without being told, and deals to it
            # as soon as the new connection is complete
            for _ in range(200):
                port.send(zio.Message(form="LATE"))
                got = spigot.recv(10)
                if got is not None:
                    break
            assert got is not None and got.form == "LATE"
            assert set(port.connected) == {ipc_address, tcp_address, spigot.bound[0]}
        port.close()
    for server in servers:
        server.close()


def test_3_peer_headers():
    port = zio.Port("client", zmq.CLIENT)
    port.add_headers(greeting="Hello World")
    assert port.headers == {"zio.port.client.greeting": "Hello World"}
    port.close()


def test_4_going_online_and_5_offline():
    port = zio.Port("client", zmq.CLIENT)
    port.add_headers(greeting="Hello World")
    port.bind()
    headers = port.do_binds()
    assert headers["zio.port.client.greeting"] == "Hello World"
    assert headers["zio.port.client.address"].startswith("tcp://127.0.0.1:")
    assert headers["zio.port.client.socket"] == "CLIENT"
    peer = zio.Peer("mynode", **headers)
    port.online(peer)
    assert port.is_online
    with zio.Peer("observer") as observer:
        [uuid] = observer.waitfor("mynode", 5000)
        assert observer.peers[uuid].headers["zio.port.client.address"] == headers["zio.port.client.address"]
    port.offline()
    assert not port.is_online and port.bound == [] and port.connected == []
    peer.stop()
    port.close()


def test_6_echo_service_and_origin():
    with zio.Node("echo") as echo_node, zio.Node("asker") as asker_node:
        service = echo_node.port("service", zmq.SERVER)
        service.bind()
        echo_node.online()
        port = asker_node.port("ask", zmq.CLIENT)
        port.connect("echo", "service")
        asker_node.online()

        assert service.recv(10) is None  # "timeout"
        port.send(zio.Message(form="TEXT", label="echo me"))
        m = service.recv(1000)
        assert m is not None
        service.origin = 42
        service.send(m)
        back = port.recv(1000)
        assert back.label == "echo me"
        assert back.origin == 42
