"""Every example runs: on loopback, and the echo pair across a pretend LAN."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

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
        subprocess.Popen(example("sensor.py", place, "--count", "120", "--period", "0.02"),
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


def test_chat(discovery):
    people = [
        subprocess.Popen(example("chat.py", who, "--say", f"hi from {who}", "--listen", "1", "--wait-for", "1"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for who in ("alice", "bob")
    ]
    ended = {}
    while len(ended) < 2:  # note when each one exits
        for i, p in enumerate(people):
            if i not in ended and p.poll() is not None:
                ended[i] = time.monotonic()
        time.sleep(0.01)
    alice, bob = (finish(p) for p in people)
    assert "<bob> hi from bob" in alice and "<alice>" not in alice
    assert "<alice> hi from alice" in bob and "<bob>" not in bob
    # they leave together; the later one used to wait CLOSE_LINGER_MS (2 s) for the
    # subscriptions its SUB re-queued for the earlier one, who was gone
    assert abs(ended[0] - ended[1]) < 1.0, ended


def one_line_error(stderr: str, program: str) -> str:
    assert stderr.count("\n") == 1 and stderr.startswith(f"{program}: "), stderr
    assert "Traceback" not in stderr
    return stderr


def test_echo_client_without_a_server_says_why_in_one_line(discovery):
    client = subprocess.run(example("echo_client.py", "--timeout", "300", "hello"), capture_output=True,
                            text=True, timeout=60)
    assert client.returncode == 1
    assert "'ask'" in one_line_error(client.stderr, "echo_client")  # the port that had no peer


def test_examples_end_on_ctrl_c_with_one_line(discovery):
    # faulthandler: a server that hangs after Ctrl-C (seen twice in full-suite runs, never
    # alone) is sent SIGABRT, and its threads' stacks are in the failure message
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    server = subprocess.Popen(example("echo_server.py"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env)
    try:
        assert server.stdout.readline().startswith("echo service online at")
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.send_signal(signal.SIGABRT)
            _, err = server.communicate(timeout=10)
            raise AssertionError(f"echo_server did not exit within 30 s of SIGINT; its stderr and stacks:\n{err}")
    finally:
        if server.poll() is None:  # hung: do not leave an "echo" node to the tests that follow
            server.kill()
            server.wait()
    assert server.returncode == 130
    assert err == "echo_server: interrupted\n"


def test_a_bad_backend_is_one_line():
    client = subprocess.run(example("echo_client.py", "--discovery", "nope"), capture_output=True,
                            text=True, timeout=60)
    assert client.returncode == 1
    assert "unknown discovery backend 'nope'" in one_line_error(client.stderr, "echo_client")


def test_dashboard_drops_a_sensor_that_leaves(discovery):
    sensors = {
        place: subprocess.Popen(example("sensor.py", place, "--period", "0.02"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for place in ("kitchen", "garage")
    }
    dashboard = subprocess.Popen(example("dashboard.py", "--idle", "20"), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in dashboard.stdout:  # wait until both show, then stop the garage sensor
            lines.append(line)
            if "kitchen:" in line and "garage:" in line:
                break
        sensors["garage"].send_signal(signal.SIGINT)
        for line in dashboard.stdout:
            lines.append(line)
            if line.startswith("sensor garage is gone"):
                break
        after = [next(dashboard.stdout) for _ in range(20)]  # the kitchen goes on, alone
    finally:
        for proc in (dashboard, *sensors.values()):
            proc.send_signal(signal.SIGINT)
    assert lines[-1].startswith("sensor garage is gone (")  # with the reason the Peer gave
    assert after and all("garage" not in line and "kitchen:" in line for line in after), after
    for place, proc in sensors.items():
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and err == "sensor: interrupted\n", (place, err)
    dashboard.communicate(timeout=30)
    assert dashboard.returncode == 130


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


def test_async_echo(discovery):
    nick = f"echo-{os.getpid()}"  # not an "echo" node another test may have left behind (mdns)
    done = subprocess.run(example("async_echo.py", "--nick", nick, "hello", "world"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "echoed 'hello' from origin 42" in lines and "echoed 'world' from origin 42" in lines
    assert lines.count("echo hello") == 1 and lines.count("echo world") == 1
