"""zio.Port without discovery: socket types, binds, connects, framing, headers, errors."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
import zmq

import zio
from zio.sockets import Framing, plan_socket

TIMEOUT = 2000


def pair(kind_a: int, kind_b: int, transport: str = "tcp", tmp_path=None) -> tuple[zio.Port, zio.Port]:
    """Bind a port of kind_a, connect a port of kind_b to it, both online."""
    a = zio.Port("a", kind_a)
    if transport == "tcp":
        a.bind()
    elif transport == "ipc":
        a.bind(f"ipc://{tmp_path}/a.ipc")
    else:
        a.bind(f"inproc://a-{id(a)}")
    headers = a.do_binds()
    a.online()
    b = zio.Port("b", kind_b)
    b.connect(headers["zio.port.a.address"])
    b.online()
    return a, b


@pytest.fixture
def ports():
    made: list[zio.Port] = []

    def make(kind_a, kind_b, transport="tcp", tmp_path=None):
        a, b = pair(kind_a, kind_b, transport, tmp_path)
        made.extend([a, b])
        return a, b

    yield make
    for port in made:
        port.close()


def test_socket_types_accept_ints_and_enum_members():
    for kind in (zmq.PUSH, int(zmq.PUSH), zmq.SocketType.PUSH):
        port = zio.Port("p", kind)
        assert port.socket_name == "PUSH"
        port.close()


@pytest.mark.parametrize("bad", [zmq.STREAM, 9999, "PUSH", None, True])
def test_bad_socket_types_raise_configuration_error(bad):
    with pytest.raises(zio.ConfigurationError):
        zio.Port("p", bad)


def test_stream_error_says_why():
    with pytest.raises(zio.ConfigurationError, match="STREAM"):
        zio.Port("p", zmq.STREAM)


@pytest.mark.skipif(zmq.has("draft"), reason="this libzmq has the draft API: nothing is emulated")
def test_client_server_are_emulated_without_draft_api():
    assert plan_socket(zmq.CLIENT).framing is Framing.ENCODED
    assert plan_socket(zmq.SERVER).framing is Framing.SERVER_OVER_ROUTER
    with pytest.raises(zio.ConfigurationError, match="draft"):
        zio.Port("p", zmq.PEER)


@pytest.mark.parametrize("name", sorted(n for n in dir(zmq.SocketType) if n.isupper()))
def test_every_pyzmq_socket_type_but_raw_and_peer_makes_a_port(name):
    kind = getattr(zmq.SocketType, name)
    if name in ("STREAM", "DGRAM") or (name == "PEER" and not zmq.has("draft")):
        with pytest.raises(zio.ConfigurationError):
            zio.Port("p", kind)
        return
    port = zio.Port("p", kind)
    assert port.socket_name == name
    assert port.do_binds()["zio.port.p.socket"] == name
    port.close()


@pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
@pytest.mark.parametrize(
    "kinds",
    [
        (zmq.PULL, zmq.PUSH), (zmq.PAIR, zmq.PAIR), (zmq.ROUTER, zmq.DEALER), (zmq.SERVER, zmq.CLIENT),
        (zmq.GATHER, zmq.SCATTER), (zmq.CHANNEL, zmq.CHANNEL),
    ],
    ids=["push-pull", "pair", "dealer-router", "client-server", "scatter-gather", "channel"],
)
def test_send_recv_every_transport(ports, tmp_path, transport, kinds):
    receiver, sender = ports(*kinds, transport=transport, tmp_path=tmp_path)
    msg = zio.Message(level=zio.MessageLevel.info, form="TEST", label="hello", payload=[b"", b"x" * 300])
    sender.send(msg)
    got = receiver.recv(TIMEOUT)
    assert got is not None
    assert got == msg
    assert got.payload == [b"", b"x" * 300]


def test_req_rep(ports):
    rep, req = ports(zmq.REP, zmq.REQ)
    req.send(zio.Message(form="ASK "))
    question = rep.recv(TIMEOUT)
    assert question.form == "ASK "
    rep.send(zio.Message(form="ANS "))
    assert req.recv(TIMEOUT).form == "ANS "


def test_pub_sub_prefix_filter(ports):
    pub, sub = ports(zmq.PUB, zmq.SUB)
    sub.subscribe("ZIO4TEXT")
    # a slow joiner: publish until the subscription has arrived
    for _ in range(100):
        pub.send(zio.Message(level=4, form="TEXT", label="wanted"))
        pub.send(zio.Message(level=3, form="TEXT", label="filtered"))
        got = sub.recv(20)
        if got is not None:
            break
    assert got is not None and got.label == "wanted"
    while (more := sub.recv(50)) is not None:
        assert more.label == "wanted"


def test_radio_dish_groups_match_exactly(ports):
    radio, dish = ports(zmq.RADIO, zmq.DISH)
    dish.subscribe("TEMP")
    for _ in range(100):  # slow joiner, as with PUB/SUB
        radio.send(zio.Message(form="TEM", label="other group"))  # group "TEM": not joined
        radio.send(zio.Message(form="TEMP", label="joined"))
        got = dish.recv(20)
        if got is not None:
            break
    assert got is not None and got.label == "joined"
    while (more := dish.recv(50)) is not None:
        assert more.label == "joined"


def test_subscribe_on_wrong_socket_is_an_error():
    port = zio.Port("p", zmq.PUSH)
    with pytest.raises(zio.PortError):
        port.subscribe("x")
    port.close()


def test_router_replies_by_routing_id(ports):
    router, dealer = ports(zmq.ROUTER, zmq.DEALER)
    dealer.send(zio.Message(form="Q   "))
    got = router.recv(TIMEOUT)
    assert isinstance(got.routing_id, bytes) and got.routing_id
    router.send(zio.Message(form="A   ", routing_id=got.routing_id))
    assert dealer.recv(TIMEOUT).form == "A   "


def test_server_echo_routes_each_reply_to_its_own_client():
    server = zio.Port("server", zmq.SERVER)
    server.bind()
    address = server.do_binds()["zio.port.server.address"]
    server.online()
    clients = []
    for i in range(2):
        client = zio.Port(f"client{i}", zmq.CLIENT)
        client.connect(address)
        client.online()
        clients.append(client)
    try:
        for i, client in enumerate(clients):
            client.send(zio.Message(form="ECHO", label=f"from {i}"))
        for _ in clients:
            msg = server.recv(TIMEOUT)
            assert isinstance(msg.routing_id, int) and msg.routing_id > 0
            server.send(msg)
        for i, client in enumerate(clients):
            assert client.recv(TIMEOUT).label == f"from {i}"
            assert client.recv(50) is None
    finally:
        for port in (server, *clients):
            port.close()


def test_server_without_routing_id_raises():
    server = zio.Port("server", zmq.SERVER)
    with pytest.raises(zio.PortError, match="routing_id"):
        server.send(zio.Message(form="X"))
    server.close()


def test_reply_to_a_departed_client_raises_instead_of_dropping(ports):
    server, client = ports(zmq.SERVER, zmq.CLIENT)
    with pytest.raises(zio.PortError):
        server.send(zio.Message(form="X", routing_id=12345))


def test_client_server_over_tcp_never_aborts_the_process():
    """Stock libzmq aborts when real CLIENT/SERVER handshake over TCP: zio must not let it."""
    code = textwrap.dedent(
        """
        import zmq, zio
        s = zio.Port("s", zmq.SERVER); s.bind(); a = s.do_binds()["zio.port.s.address"]; s.online()
        c = zio.Port("c", zmq.CLIENT); c.connect(a); c.online()
        c.send(zio.Message(form="PING")); m = s.recv(2000); s.send(m)
        print("reply", c.recv(2000).form)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "reply PING" in done.stdout


def test_origin_is_stamped(ports):
    pull, push = ports(zmq.PULL, zmq.PUSH)
    push.origin = 42
    push.send(zio.Message(form="X", origin=7))
    assert pull.recv(TIMEOUT).origin == 42


def test_recv_timeout_returns_none(ports):
    pull, _ = ports(zmq.PULL, zmq.PUSH)
    assert pull.recv(10) is None


def test_malformed_input_raises_and_loses_nothing_after(ports):
    pull, _ = ports(zmq.PULL, zmq.PUSH)
    raw = zmq.Context.instance().socket(zmq.PUSH)
    raw.connect(pull.bound[0])
    raw.send_multipart([b"not a prefix", b"x"])
    raw.send_multipart(zio.Message(form="GOOD").toparts())
    with pytest.raises(zio.MalformedError) as caught:
        pull.recv(TIMEOUT)
    assert isinstance(caught.value, ValueError)
    assert caught.value.frames == [b"not a prefix", b"x"]
    assert pull.recv(TIMEOUT).form == "GOOD"
    raw.close(0)


def test_headers_carry_port_prefix_and_binds():
    port = zio.Port("client", zmq.PUSH)
    port.add_headers({"a": 1}, greeting="Hello World")
    assert port.headers == {"zio.port.client.a": "1", "zio.port.client.greeting": "Hello World"}
    port.bind()
    port.bind("127.0.0.1", 0)
    headers = port.do_binds()
    addresses = headers["zio.port.client.address"].split(" ")  # one space, as ZIO C++
    assert len(addresses) == 2 and all(a.startswith("tcp://127.0.0.1:") for a in addresses)
    assert headers["zio.port.client.socket"] == "PUSH"
    port.close()


def test_emulated_client_advertises_its_carrier():
    port = zio.Port("client", zmq.CLIENT)
    headers = port.do_binds()
    assert headers["zio.port.client.socket"] == "CLIENT"
    if not zmq.has("draft"):
        assert headers["zio.port.client.carrier"] == "DEALER"
    port.close()


@pytest.mark.parametrize("spec", [(), ("nothing",), ("", "port"), ("node", 80), (1, 2, 3)])
def test_bad_connect_specs(spec):
    port = zio.Port("p", zmq.PUSH)
    with pytest.raises(zio.ConfigurationError):
        port.connect(*spec)
    port.close()


@pytest.mark.parametrize("spec", [("nothing",), ("host", "80"), ("host", 70000)])
def test_bad_bind_specs(spec):
    port = zio.Port("p", zmq.PUSH)
    with pytest.raises(zio.ConfigurationError):
        port.bind(*spec)
    port.close()


def test_bind_failure_is_a_port_error():
    port = zio.Port("p", zmq.PUSH)
    port.bind("tcp://192.0.2.1:1")  # not an address of this host
    with pytest.raises(zio.PortError, match="cannot bind"):
        port.do_binds()
    port.close()


def test_connect_by_name_without_peer_raises_at_online():
    port = zio.Port("p", zmq.PUSH)
    port.connect("somenode", "someport")
    with pytest.raises(zio.PortError, match="peer"):
        port.online()
    port.close()


def test_offline_forgets_binds_and_connects(ports):
    pull, push = ports(zmq.PULL, zmq.PUSH)
    address = pull.bound[0]
    pull.offline()
    assert pull.bound == [] and not pull.is_online
    # the address is free again (libzmq closes the listener asynchronously): another port binds it
    other = zio.Port("other", zmq.PULL)
    deadline = time.monotonic() + 5
    while True:
        other.bind(address)
        try:
            other.do_binds()
            break
        except zio.PortError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    assert other.bound == [address]
    other.close()
    push.offline()
    assert push.connected == []
    # online again after offline, with new binds and connects
    pull.bind()
    new_address = pull.do_binds()["zio.port.a.address"]
    pull.online()
    push.connect(new_address)
    push.online()
    push.send(zio.Message(form="BACK"))
    assert pull.recv(TIMEOUT).form == "BACK"


def test_wildcard_bind_advertises_the_hostname():
    port = zio.Port("p", zmq.PULL, "127.0.0.1")
    port.bind("tcp://*:*")
    address = port.do_binds()["zio.port.p.address"]
    assert address.startswith("tcp://127.0.0.1:")
    port.close()


def test_send_requires_a_message():
    port = zio.Port("p", zmq.PUSH)
    with pytest.raises(zio.ConfigurationError):
        port.send(b"raw bytes")
    port.close()


def test_no_open_file_descriptors_leak_per_port():
    zio.Port("warm-up", zmq.PUSH).close()  # the shared context opens its own descriptors once
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        zio.Port("p", zmq.PUSH).close()
    # libzmq's reaper thread closes socket descriptors asynchronously: wait for it
    deadline = time.monotonic() + 5
    while len(os.listdir("/proc/self/fd")) > before + 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(os.listdir("/proc/self/fd")) <= before + 2


def test_zio_timeout_keyword_is_accepted(ports):
    pull, _ = ports(zmq.PULL, zmq.PUSH)
    assert pull.recv(timeout=10) is None


def test_rep_answers_a_malformed_request_and_goes_on(ports):
    rep, req = ports(zmq.REP, zmq.REQ)
    raw = zmq.Context.instance().socket(zmq.REQ)
    raw.connect(rep.bound[0])
    raw.send(b"garbage")
    with pytest.raises(zio.MalformedError):
        rep.recv(TIMEOUT)
    assert raw.poll(TIMEOUT) and zio.Message(parts=raw.recv_multipart()).form == "ERR "
    raw.close(0)
    req.send(zio.Message(form="GOOD"))
    assert rep.recv(TIMEOUT).form == "GOOD"


def test_offline_closes_accepted_connections_so_nothing_is_lost(ports):
    pull, push = ports(zmq.PULL, zmq.PUSH)
    push.send(zio.Message(form="ONE "))
    assert pull.recv(TIMEOUT).form == "ONE "
    pull.offline()
    # the sender's connection dies with the old socket: nothing is queued into the void
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            push.send(zio.Message(form="LOST"), timeout_ms=50)
        except zio.PortTimeout:
            break
    else:
        raise AssertionError("messages kept being accepted for a port that went offline")


def test_xsub_subscribes(ports):
    pub, xsub = ports(zmq.PUB, zmq.XSUB)
    xsub.subscribe("ZIO0TICK")
    for _ in range(100):
        pub.send(zio.Message(form="TICK"))
        got = xsub.recv(20)
        if got is not None:
            break
    assert got is not None and got.form == "TICK"
