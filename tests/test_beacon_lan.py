"""The default discovery backend "beacon" across a pretend LAN of network namespaces.

Each host of ``netns.Lan`` runs its programs (``beacon_support``) in subprocesses with
``ZIO_INTERFACE=eth0``; the programs print their events as JSON lines stamped with
``time.monotonic()``, which the test compares with its own clock. Measured figures are
printed (``-s``); the asserted bounds are generous, so that they never flake.
"""
from __future__ import annotations

import itertools
import json
import time

import pytest

from beacon_support import ECHO_CLIENT, ECHO_SERVER, PEER, PUBLISHER, PYRE, SUBSCRIBER, Lines, finish, python, spawn

pytestmark = pytest.mark.needs_lan

_ports = itertools.count(47310)
_subnets = (f"10.77.{i}" for i in itertools.count(10))
host_interface = object()  # run_on(): use the host's LAN interface (eth0)


@pytest.fixture
def lan(make_lan):
    """``lan(n)``: a started pretend LAN of n hosts on a subnet of this test's own."""
    return lambda n: make_lan(n, subnet=next(_subnets))


@pytest.fixture
def run_on():
    """``run_on(host, script, *args, interface=...)``: start a program on ``host``; return (proc, Lines).

    Every program of a test uses the test's own beacon port and, unless ``interface`` says
    otherwise ("" for zio's default choice), the host's eth0. Programs still running at the
    end are asked to stop, then killed.
    """
    port = str(next(_ports))
    procs = []

    def start(host, script, *args, interface=host_interface):
        env = {"ZIO_INTERFACE": host.interface if interface is host_interface else interface,
               "ZIO_BEACON_PORT": port}
        if script is PYRE:
            args = (args[0], port, *args[1:])
        proc = spawn(python(script, *args), env=env, popen=host.popen)
        procs.append(proc)
        return proc, Lines(proc)

    yield start
    for proc in procs:
        if proc.poll() is None:
            try:
                finish(proc, timeout=5.0)
            except AssertionError:
                pass  # killed by finish(); the test's own assertions matter more
        else:
            proc.wait()


def test_cable_cut_then_restore(lan, run_on):
    h0, h1 = lan(2).hosts
    _, observer = run_on(h0, PEER, "observer", "{}")
    _, victim = run_on(h1, PEER, "victim", json.dumps({"host": h1.address}))
    enter = observer.wait_for(10.0, event="enter", nick="victim")
    assert enter["headers"] == {"host": h1.address}
    assert observer.seen[0]["describe"]["interface"] == "eth0"
    assert observer.seen[0]["describe"]["beacon_target"].startswith(f"{h0.address.rsplit('.', 1)[0]}.255:")
    victim.wait_for(10.0, event="enter", nick="observer")

    t_cut = time.monotonic()
    h1.cut()
    gone = observer.wait_for(15.0, event="exit", nick="victim")
    leave = gone["t"] - t_cut
    # the victim's side of the cable: the observer is gone too
    victim.wait_for(15.0, event="exit", nick="observer")

    t_restore = time.monotonic()
    h1.restore()
    back = observer.wait_for(15.0, event="enter", nick="victim")
    victim.wait_for(15.0, event="enter", nick="observer")
    again = back["t"] - t_restore
    print(f"\n[beacon] cable cut: peer gone after {leave:.2f} s (target <= 5 s); "
          f"back {again:.2f} s after the cable came back")
    assert leave < 8.0
    assert back["uuid"] == enter["uuid"] and back["headers"] == {"host": h1.address}


def test_killed_peer_on_another_host_leaves_at_once(lan, run_on):
    h0, h1 = lan(2).hosts
    _, observer = run_on(h0, PEER, "observer", "{}")
    proc, victim = run_on(h1, PEER, "victim", "{}")
    _, neighbour = run_on(h1, PEER, "neighbour", "{}")  # two peers on one host meet too
    observer.wait_for(10.0, event="enter", nick="victim")
    neighbour.wait_for(10.0, event="enter", nick="victim")
    neighbour.wait_for(10.0, event="enter", nick="observer")
    victim.wait_for(10.0, event="enter", nick="observer")
    # kill the peer itself, not `ip netns exec` (which execs it: the same process)
    t0 = time.monotonic()
    proc.kill()
    gone = observer.wait_for(10.0, event="exit", nick="victim")
    gone_next_door = neighbour.wait_for(10.0, event="exit", nick="victim")
    print(f"\n[beacon] SIGKILLed peer gone after {(gone['t'] - t0) * 1000:.0f} ms (other host), "
          f"{(gone_next_door['t'] - t0) * 1000:.0f} ms (same host)")
    assert gone["t"] - t0 < 3.0 and gone_next_door["t"] - t0 < 3.0


def test_pyre_and_zio_see_each_other_across_hosts(lan, run_on):
    h0, h1 = lan(2).hosts
    pyre_proc, pyre = run_on(h0, PYRE, "pyre-node", json.dumps({"color": "green"}))
    # zio left to choose its interface too ("subnet": the first broadcast-capable one)
    _, zio_peer = run_on(h1, PEER, "zio-node", json.dumps({"zio.port.p.socket": "PUSH"}), interface="")
    pyre_ready = pyre.wait_for(10.0, event="ready")
    assert pyre_ready["endpoint"].startswith(f"tcp://{h0.address}:")  # pyre chose eth0 itself
    zio_ready = zio_peer.wait_for(10.0, event="ready")
    assert zio_ready["describe"]["interface"] == "eth0"
    seen_by_pyre = pyre.wait_for(10.0, event="ENTER", nick="zio-node")
    assert seen_by_pyre["uuid"] == zio_ready["uuid"]
    assert seen_by_pyre["headers"] == {"zio.port.p.socket": "PUSH"}
    assert seen_by_pyre["address"].startswith(f"tcp://{h1.address}:")
    seen_by_zio = zio_peer.wait_for(10.0, event="enter", nick="pyre-node")
    assert seen_by_zio["uuid"] == pyre_ready["uuid"]
    assert seen_by_zio["headers"] == {"color": "green"}
    # pyre leaves politely: zio sees it at once
    pyre_proc.stdin.close()
    zio_peer.wait_for(10.0, event="exit", nick="pyre-node")


def test_nodes_on_two_hosts_talk_by_name(lan, run_on):
    h0, h1 = lan(2).hosts
    server, server_lines = run_on(h0, ECHO_SERVER, "echo", "7")
    client, client_lines = run_on(h1, ECHO_CLIENT, "echo", "3")  # at once: it waits for "echo" by name
    address = server_lines.wait_for(10.0, event="ready")["address"]
    assert address.startswith(f"tcp://{h0.address}:")  # bound on the discovery interface
    done = client_lines.wait_for(30.0, event="done")
    assert client.wait(10) == 0
    assert done["connected"] == [address]
    assert done["replies"] == [[f"echo:hello {i}", 7] for i in range(3)]
    finish(server)
    assert server_lines.wait_for(5.0, event="stopped")["served"] == 3


def test_pub_sub_fan_out_across_hosts(lan, run_on):
    h0, *others = lan(4).hosts
    publisher, pub_lines = run_on(h0, PUBLISHER, "news")
    # at once: their online() waits for "news" by name
    subscribers = [run_on(h, SUBSCRIBER, f"reader{i}", "news") for i, h in enumerate(others)]
    address = pub_lines.wait_for(10.0, event="ready")["address"]
    for i, (_, lines) in enumerate(subscribers):
        got = lines.wait_for(30.0, event="got")
        assert got["nick"] == f"reader{i}"
        assert got["connected"] == [address]
        assert got["label"] and got["label"].startswith("news ")
    finish(publisher)
    assert pub_lines.wait_for(5.0, event="stopped")["sent"] > 0
