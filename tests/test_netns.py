"""The network harness itself: the private namespace (conftest.py) and the pretend LAN (netns.Lan)."""

import os
import select
import socket
import struct
import subprocess
import sys
import time

import pytest

import netns
from netns import Lan

PORT = 45670
TIMEOUT = 2.0


class Lines:
    """Read a subprocess's stdout line by line with a timeout (no threads)."""

    def __init__(self, proc):
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def get(self, timeout=TIMEOUT):
        """The next line, or None when none comes within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def expect(self, prefix, timeout=TIMEOUT):
        line = self.get(timeout)
        assert line is not None and line.startswith(prefix), f"expected {prefix!r}, got {line!r}"
        return line


def _py(host, code, **kw):
    return host.popen([sys.executable, "-u", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, **kw)


RECEIVER = f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", {PORT}))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(2048)
    print("got", data.decode(), addr[0], flush=True)
"""

SENDER = f"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
print("ready", flush=True)
for line in sys.stdin:
    address, payload = line.split()
    try:
        s.sendto(payload.encode(), (address, {PORT}))
        print("sent", flush=True)
    except OSError as exc:
        print("error", exc.errno, flush=True)
"""

TCP_SERVER = f"""
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("", {PORT}))
srv.listen()
print("ready", flush=True)
conn, _ = srv.accept()
print("accepted", flush=True)
sys.stdin.readline()
conn.close()          # sends FIN (which a cut cable must swallow)
print("closed", flush=True)
"""


# --------------------------------------------------------------------------------------------
# The test process itself


@pytest.mark.needs_netns
def test_process_sees_only_loopback():
    assert netns.isolated()
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    assert netns.isolation_mode() in ("root", "userns")


@pytest.mark.needs_netns
def test_subprocess_inherits_the_namespace():
    code = "import os, socket; st = os.stat('/proc/self/ns/net'); " \
           "print(f'{st.st_dev}:{st.st_ino}', [n for _, n in socket.if_nameindex()])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    st = os.stat("/proc/self/ns/net")
    assert out.stdout.split(" ", 1) == [f"{st.st_dev}:{st.st_ino}", "['lo']\n"]


def test_library_settings_not_inherited():
    assert "ZIO_INTERFACE" not in os.environ


@pytest.mark.needs_netns
def test_udp_broadcast_on_loopback():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind(("", 0))
        rx.settimeout(TIMEOUT)
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        tx.sendto(b"hello-broadcast", ("127.255.255.255", rx.getsockname()[1]))
        data, addr = rx.recvfrom(2048)
    assert data == b"hello-broadcast"
    assert addr[0].startswith("127.")


@pytest.mark.needs_netns
def test_udp_multicast_on_loopback():
    group = "225.25.25.25"
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rx.bind(("", 0))
        # Default interface: the kernel must find lo through the 224.0.0.0/4 route.
        rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                      struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0")))
        rx.settimeout(TIMEOUT)
        tx.sendto(b"hello-multicast", (group, rx.getsockname()[1]))
        data, _ = rx.recvfrom(2048)
    assert data == b"hello-multicast"


# --------------------------------------------------------------------------------------------
# The pretend LAN


@pytest.mark.needs_lan
def test_lan_builds_fast_with_unique_names_and_addresses():
    with Lan(3) as lan:
        assert lan.setup_seconds < 0.5, f"Lan(3) took {lan.setup_seconds:.3f} s"
        assert [h.address for h in lan.hosts] == ["10.77.0.1", "10.77.0.2", "10.77.0.3"]
        assert len({h.name for h in lan.hosts}) == 3
        assert all(h.interface == "eth0" for h in lan.hosts)
        out = lan.hosts[2].run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True)
        fields = [line.split()[1:4] for line in out.stdout.splitlines()]
        assert fields == [["lo", "inet", "127.0.0.1/8"], ["eth0", "inet", "10.77.0.3/24"]]
        # The test process is on the LAN too, through the bridge.
        assert sorted(n for _, n in socket.if_nameindex()) == sorted(
            ["lo", lan.bridge] + [h.bridge_port for h in lan.hosts])
    with Lan(1) as other:
        assert other.hosts[0].name not in {h.name for h in lan.hosts}


@pytest.mark.needs_lan
def test_lan_unicast_broadcast_cut_restore():
    with Lan(2) as lan:
        h0, h1 = lan.hosts
        receiver = _py(h1, RECEIVER)
        sender = _py(h0, SENDER)
        rx, tx = Lines(receiver), Lines(sender)
        rx.expect("ready")
        tx.expect("ready")
        bridge = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the test process, at .254
        bridge.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bridge.bind(("", PORT))
        bridge.settimeout(TIMEOUT)

        def send(address, payload):
            sender.stdin.write(f"{address} {payload}\n".encode())
            sender.stdin.flush()
            tx.expect("sent")

        with bridge:
            send(h1.address, "unicast-1")
            assert rx.get() == f"got unicast-1 {h0.address}"

            send(lan.broadcast, "broadcast-1")
            assert rx.get() == f"got broadcast-1 {h0.address}"
            data, (source, _) = bridge.recvfrom(2048)
            assert (data, source) == (b"broadcast-1", h0.address)

            h1.cut()
            link = h1.run(["ip", "-o", "link", "show", "eth0"], capture_output=True, text=True, check=True)
            assert "NO-CARRIER" in link.stdout
            send(lan.broadcast, "broadcast-2")
            send(h1.address, "unicast-2")
            # The broadcast did cross the bridge (it reached the test process) ...
            data, (source, _) = bridge.recvfrom(2048)
            assert (data, source) == (b"broadcast-2", h0.address)
            # ... but not the cut cable.
            assert rx.get(timeout=0.3) is None

            h1.restore()
            deadline = time.monotonic() + TIMEOUT
            line = None
            while line is None and time.monotonic() < deadline:
                send(lan.broadcast, "broadcast-3")
                line = rx.get(timeout=0.05)
            assert line == f"got broadcast-3 {h0.address}"
        sender.stdin.close()


@pytest.mark.needs_lan
def test_lan_cut_swallows_fin():
    with Lan(1) as lan:
        (h0,) = lan.hosts
        server = _py(h0, TCP_SERVER)
        out = Lines(server)
        out.expect("ready")
        with socket.create_connection((h0.address, PORT), timeout=TIMEOUT) as conn:
            out.expect("accepted")
            h0.cut()
            server.stdin.write(b"close\n")
            server.stdin.flush()
            out.expect("closed")
            conn.settimeout(0.3)
            with pytest.raises(socket.timeout):   # no FIN, no RST: the peer just went silent
                conn.recv(1)
            h0.restore()
            conn.settimeout(5.0)                  # the FIN is retransmitted (RTO backoff)
            assert conn.recv(1) == b""


def _gone(lan):
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    bridge = subprocess.run(["ip", "link", "show", lan.bridge], capture_output=True, text=True)
    ports = [subprocess.run(["ip", "link", "show", h.bridge_port], capture_output=True).returncode
             for h in lan.hosts]
    return (all(h.name not in names for h in lan.hosts)
            and not any(os.path.exists(f"/run/netns/{h.name}") for h in lan.hosts)
            and bridge.returncode != 0 and all(rc != 0 for rc in ports))


@pytest.mark.needs_lan
def test_lan_cleans_up_processes_and_namespaces_also_on_error():
    lan = Lan(2)
    with pytest.raises(ZeroDivisionError):
        with lan:
            sleeper = lan.hosts[1].popen(["sleep", "60"])
            assert not _gone(lan)
            1 / 0
    assert sleeper.returncode is not None
    assert _gone(lan)
    lan.close()   # idempotent
    assert _gone(lan)
    assert [n for _, n in socket.if_nameindex()] == ["lo"]


@pytest.mark.needs_lan
def test_make_lan_fixture(make_lan):
    lan = make_lan(1, subnet="10.78.0")
    out = lan.hosts[0].run([sys.executable, "-c", "import socket; print(socket.if_nameindex())"],
                           capture_output=True, text=True, check=True)
    assert "'lo'" in out.stdout and "'eth0'" in out.stdout and out.stdout.count("(") == 2
    assert lan.bridge_address == "10.78.0.254" and lan.hosts[0].address == "10.78.0.1"
