"""Every example runs: on loopback, and the echo pair across a pretend LAN."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.needs_netns, pytest.mark.usefixtures("beacon_port")]

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def example(name: str, *args: str) -> list[str]:
    return [sys.executable, os.path.join(EXAMPLES, name), *args]


def finish(proc: subprocess.Popen, timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def test_echo_server_and_client():
    server = subprocess.Popen(example("echo_server.py", "--count", "2"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    client = subprocess.run(example("echo_client.py", "hello", "world"), capture_output=True, text=True,
                            timeout=60)
    assert client.returncode == 0, client.stderr
    assert client.stdout.splitlines() == ["echoed 'hello' from origin 42", "echoed 'world' from origin 42"]
    assert "echo world" in finish(server)


def test_sensors_and_dashboard():
    sensors = [
        subprocess.Popen(example("sensor.py", place, "--count", "200", "--period", "0.02"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for place in ("kitchen", "garage")
    ]
    dashboard = subprocess.run(example("dashboard.py", "--count", "40"), capture_output=True, text=True,
                               timeout=60)
    assert dashboard.returncode == 0, dashboard.stderr
    last = dashboard.stdout.splitlines()[-1]
    assert "kitchen:" in last and "garage:" in last  # readings from both, found by one name
    for sensor in sensors:
        finish(sensor)


def test_chat():
    people = [
        subprocess.Popen(example("chat.py", who, "--say", f"hi from {who}", "--listen", "2", "--wait-for", "1"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for who in ("alice", "bob")
    ]
    alice, bob = (finish(p) for p in people)
    assert "<bob> hi from bob" in alice and "<alice>" not in alice
    assert "<alice> hi from alice" in bob and "<bob>" not in bob


@pytest.mark.needs_lan
def test_echo_across_a_lan(make_lan):
    lan = make_lan(2)
    server_host, client_host = lan.hosts
    env = {**os.environ, "ZIO_INTERFACE": "eth0"}
    server = server_host.popen(example("echo_server.py", "--count", "1"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    client = client_host.run(example("echo_client.py", "over-the-lan"), capture_output=True, text=True, env=env)
    assert client.returncode == 0, client.stderr
    assert client.stdout.strip() == "echoed 'over-the-lan' from origin 42"
    out = finish(server)
    assert f"tcp://{server_host.address}:" in out  # bound on the LAN address, not loopback
