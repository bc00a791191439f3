"""Private network namespaces for the zio test suite.

Nothing the tests send may leave this machine: discovery broadcasts and multicasts.  So the
test process moves itself into a fresh, private network namespace before anything else runs
(``conftest.py`` calls :func:`enter` at import time), where only ``lo`` exists, with broadcast
and multicast (``224.0.0.0/4 dev lo``) working.  Subprocesses started by tests inherit it.

Multi-host tests build a pretend LAN inside that namespace with :class:`Lan`::

    from netns import Lan

    with Lan(3) as lan:                      # hosts 10.77.0.1 .. 10.77.0.3, bridge 10.77.0.254
        h0, h1, h2 = lan.hosts
        p = h1.popen([sys.executable, "-c", CODE], stdout=subprocess.PIPE)
        h0.run([sys.executable, "-c", OTHER], check=True)
        h1.cut()                             # cable cut: h1 sees no carrier, nobody gets FIN/RST
        h1.restore()

Only the standard library is imported here: this module runs before zmq or any thread exists.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time

__all__ = ["enter", "isolated", "isolation_mode", "not_isolated_reason", "lan_supported", "Lan", "Host"]

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

NETNS_RUN_DIR = "/run/netns"

# "<st_dev>:<st_ino>" of the private namespace.  Kept in the environment, so that a second copy
# of this module (imported under another name) and subprocesses (pytester, ...) agree on it.
_ENV_MARK = "ZIO_TESTS_PRIVATE_NETNS"
# Why the session is not isolated, or how it is.
_ENV_REASON = "ZIO_TESTS_NETNS_REASON"
_ENV_MODE = "ZIO_TESTS_NETNS_MODE"
# The mount namespace is private too (so /run/netns mounts cannot outlive the test process).
_ENV_PRIVATE_MOUNTS = "ZIO_TESTS_PRIVATE_MOUNTS"
# Mount namespace in which our tmpfs sits on /run/netns.
_ENV_TMPFS = "ZIO_TESTS_NETNS_TMPFS"


class IsolationError(RuntimeError):
    """The test process could not be isolated although it should have been."""


def _ip_binary() -> str | None:
    found = shutil.which("ip")
    if found:
        return found
    for candidate in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _netns_id(path: str = "/proc/thread-self/ns/net") -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def isolated() -> bool:
    """True when the calling thread is in the private namespace this test session created."""
    mark = os.environ.get(_ENV_MARK)
    if not mark:
        return False
    try:
        return _netns_id() == mark
    except OSError:
        return False


def isolation_mode() -> str:
    """``"root"``, ``"userns"`` or ``"none"``."""
    return os.environ.get(_ENV_MODE, "none") if isolated() else "none"


def not_isolated_reason() -> str:
    """Why the session is not isolated (empty when it is)."""
    if isolated():
        return ""
    return os.environ.get(_ENV_REASON) or "the test process did not enter a private network namespace"


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> None:
    libc = _libc()
    if libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare({flags:#x}): {os.strerror(err)}")


def _make_mounts_private() -> None:
    libc = _libc()
    if libc.mount(b"none", b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount --make-rprivate /: {os.strerror(err)}")


def _remount_sys() -> None:
    """Mount a sysfs of the new network namespace on /sys (as `ip netns exec` does)."""
    libc = _libc()
    MNT_DETACH = 2
    if libc.umount2(b"/sys", ctypes.c_int(MNT_DETACH)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount /sys: {os.strerror(err)}")
    if libc.mount(b"sysfs", b"/sys", b"sysfs", ctypes.c_ulong(0), None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount sysfs /sys: {os.strerror(err)}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _inet_sockets() -> list[int]:
    """File descriptors of IPv4/IPv6 sockets already open (they would stay in the host namespace)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            s = socket.socket(fileno=fd)
        except OSError:
            continue
        try:
            if s.family in (socket.AF_INET, socket.AF_INET6):
                found.append(fd)
        finally:
            s.detach()
    return found


def _run_ip(ip: str, *args: str) -> None:
    proc = subprocess.run([ip, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        raise IsolationError(f"`ip {' '.join(args)}` failed ({proc.returncode}): {proc.stderr.strip()}")


def _configure_lo(ip: str) -> None:
    _run_ip(ip, "link", "set", "lo", "up")
    _run_ip(ip, "link", "set", "lo", "multicast", "on")
    _run_ip(ip, "route", "add", "224.0.0.0/4", "dev", "lo")


def _set_not_isolated(reason: str) -> bool:
    os.environ.pop(_ENV_MARK, None)
    os.environ[_ENV_MODE] = "none"
    os.environ[_ENV_REASON] = reason
    return False


def enter() -> bool:
    """Move this process into a private network namespace; return whether it is isolated.

    Idempotent.  Must run in the main thread before any other thread or any IPv4/IPv6 socket
    exists; raises :class:`IsolationError` otherwise, and when root could not isolate.  Without
    root it tries a user namespace; when the kernel refuses, the session is marked not isolated
    (see :func:`not_isolated_reason`) and tests marked ``needs_netns`` are skipped.
    """
    if isolated():
        return True
    if threading.current_thread() is not threading.main_thread():
        raise IsolationError("netns.enter() must be called from the main thread")
    if threading.active_count() != 1 or _threads() != 1:
        raise IsolationError(
            f"cannot isolate the network: {threading.active_count()} Python thread(s), {_threads()} task(s) "
            "already exist; unshare(CLONE_NEWNET) moves only the calling thread, so it must run before "
            "anything (zmq, a plugin) starts a thread"
        )
    open_sockets = _inet_sockets()
    if open_sockets:
        raise IsolationError(
            f"cannot isolate the network: IPv4/IPv6 sockets already open (fds {open_sockets}) would "
            "stay in the host namespace"
        )
    ip = _ip_binary()
    root = os.geteuid() == 0
    if ip is None:
        if root:
            raise IsolationError("cannot isolate the network: the `ip` command (iproute2) is missing")
        return _set_not_isolated("the `ip` command (iproute2) is missing")

    before = _netns_id()
    private_mounts = False
    if root:
        try:
            _unshare(CLONE_NEWNET | CLONE_NEWNS)
            private_mounts = True
        except OSError:
            try:
                _unshare(CLONE_NEWNET)
            except OSError as exc:
                raise IsolationError(f"cannot isolate the network as root: {exc}") from exc
        mode = "root"
    else:
        uid, gid = os.geteuid(), os.getegid()
        try:
            _unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS)
        except OSError as exc:
            return _set_not_isolated(f"not root and no user namespace allowed ({exc})")
        # From here on the process is in new namespaces: any failure must be loud.
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"0 {uid} 1")
            _write("/proc/self/gid_map", f"0 {gid} 1")
        except OSError as exc:
            raise IsolationError(f"user namespace: cannot write the id maps: {exc}") from exc
        private_mounts = True
        mode = "userns"

    if private_mounts:
        try:
            _make_mounts_private()
        except OSError:
            private_mounts = False

    _configure_lo(ip)
    if private_mounts:
        try:
            _remount_sys()   # so /sys/class/net shows this namespace, not the host's
        except OSError:
            pass

    after = _netns_id()
    if after == before:
        raise IsolationError("unshare(CLONE_NEWNET) returned but the network namespace did not change")
    names = sorted(name for _, name in socket.if_nameindex())
    if names != ["lo"]:
        raise IsolationError(f"private network namespace is not private: interfaces {names}")

    os.environ[_ENV_MARK] = after
    os.environ[_ENV_MODE] = mode
    os.environ[_ENV_REASON] = ""
    os.environ[_ENV_PRIVATE_MOUNTS] = "1" if private_mounts else ""
    return True


# --------------------------------------------------------------------------------------------
# A pretend LAN: named network namespaces on a bridge, all inside the private namespace.


def lan_supported() -> tuple[bool, str]:
    """Whether :class:`Lan` can work here, and why not."""
    if not isolated():
        return False, "needs the private network namespace (" + not_isolated_reason() + ")"
    if _ip_binary() is None:
        return False, "the `ip` command (iproute2) is missing"
    if os.geteuid() != 0:
        return False, "not root (in this namespace)"
    if not (os.path.isdir(NETNS_RUN_DIR) or os.access(os.path.dirname(NETNS_RUN_DIR), os.W_OK)):
        return False, f"cannot create {NETNS_RUN_DIR}"
    return True, ""


_netns_dir_lock = threading.Lock()


def _ensure_netns_dir() -> None:
    """Give `ip netns` a /run/netns of our own (a tmpfs in the private mount namespace).

    Its bind mounts then live and die with the test process, even if it is killed.  The empty
    /run/netns directory itself may be created on the host (as `ip netns add` would do).
    """
    if not os.environ.get(_ENV_PRIVATE_MOUNTS):
        return
    with _netns_dir_lock:
        mnt_ns = _netns_id("/proc/self/ns/mnt")
        if os.path.ismount(NETNS_RUN_DIR) and os.environ.get(_ENV_TMPFS) == mnt_ns:
            return
        os.makedirs(NETNS_RUN_DIR, mode=0o755, exist_ok=True)
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "mode=0755,size=1m", "zio-test-netns", NETNS_RUN_DIR],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"cannot mount a private {NETNS_RUN_DIR}: {proc.stderr.strip()}")
        os.environ[_ENV_TMPFS] = mnt_ns


def _ip_batch(ip: str, commands: list[str], netns: str | None = None, force: bool = False) -> subprocess.CompletedProcess:
    argv = [ip]
    if netns:
        argv += ["-n", netns]
    if force:
        argv.append("-force")
    argv += ["-batch", "-"]
    return subprocess.run(argv, input="".join(c + "\n" for c in commands), capture_output=True, text=True)


class Host:
    """One pretend machine: a named network namespace with ``lo`` and ``eth0`` on the LAN."""

    interface = "eth0"

    def __init__(self, lan: "Lan", index: int, name: str, address: str, bridge_port: str):
        self.lan = lan
        self.index = index
        self.name = name                  # netns name, for `ip netns exec NAME`
        self.address = address            # "10.77.0.<index+1>"
        self.bridge_port = bridge_port    # the veth end on the bridge, in the test's namespace
        self.is_cut = False

    def __repr__(self) -> str:
        return f"<Host {self.index} {self.name} {self.address}{' CUT' if self.is_cut else ''}>"

    def command(self, argv) -> list[str]:
        """The argv that runs ``argv`` inside this host."""
        if isinstance(argv, (str, bytes)):
            raise TypeError("argv must be a list of arguments, not a string")
        return [self.lan.ip, "netns", "exec", self.name, *(os.fspath(a) for a in argv)]

    def popen(self, argv, **kw) -> subprocess.Popen:
        """Start ``argv`` inside this host.  Still running at Lan exit, it is terminated."""
        proc = subprocess.Popen(self.command(argv), **kw)
        self.lan._procs.append(proc)
        return proc

    def run(self, argv, **kw) -> subprocess.CompletedProcess:
        """Run ``argv`` inside this host to completion (``subprocess.run`` keywords; timeout 60 s)."""
        kw.setdefault("timeout", 60)
        return subprocess.run(self.command(argv), **kw)

    def cut(self) -> None:
        """Pull the cable: the bridge side goes down; nothing (no FIN/RST) passes either way."""
        self.lan._ip("link", "set", self.bridge_port, "down")
        self.is_cut = True

    def restore(self) -> None:
        """Plug the cable back in."""
        self.lan._ip("link", "set", self.bridge_port, "up")
        self.is_cut = False


class Lan:
    """``n_hosts`` network namespaces on one bridge: a LAN ``<subnet>.0/24`` inside the test's namespace.

    Host ``i`` is ``<subnet>.<i+1>`` on its ``eth0``; the bridge (in the test process's own
    namespace, so the test can take part) is ``<subnet>.254``; broadcast is ``<subnet>.255``.
    Names are unique per Lan (``zio-<hex>-<i>``).  Leaving the ``with`` block (also on an
    exception) or :meth:`close` (idempotent) ends the processes started with ``Host.popen``
    that are still running and deletes the namespaces, veths and the bridge.
    """

    def __init__(self, n_hosts: int, subnet: str = "10.77.0"):
        if not 1 <= n_hosts <= 253:
            raise ValueError("n_hosts must be between 1 and 253")
        parts = subnet.split(".")
        if len(parts) != 3 or not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
            raise ValueError(f"subnet must look like '10.77.0', not {subnet!r}")
        self.n_hosts = n_hosts
        self.subnet = subnet
        self.prefixlen = 24
        self.bridge_address = f"{subnet}.254"
        self.broadcast = f"{subnet}.255"
        self.token = secrets.token_hex(3)
        self.bridge = f"zbr{self.token}"
        self.hosts: list[Host] = []
        self.ip = _ip_binary() or "ip"
        self._procs: list[subprocess.Popen] = []
        self._started = False
        self._closed = False
        self.setup_seconds: float | None = None

    # -- lifecycle

    def __enter__(self) -> "Lan":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> "Lan":
        if self._started:
            return self
        ok, why = lan_supported()
        if not ok:
            # Never build bridges outside the private namespace.
            raise RuntimeError(f"Lan unavailable: {why}")
        self._started = True
        t0 = time.monotonic()
        try:
            _ensure_netns_dir()
            self.hosts = [
                Host(self, i, f"zio-{self.token}-{i}", f"{self.subnet}.{i + 1}", f"zv{self.token}h{i}")
                for i in range(self.n_hosts)
            ]
            cmds = [f"netns add {h.name}" for h in self.hosts]
            cmds += [
                f"link add {self.bridge} type bridge forward_delay 0 stp_state 0 mcast_snooping 0",
                f"addr add {self.bridge_address}/{self.prefixlen} brd + dev {self.bridge}",
                f"link set {self.bridge} up",
            ]
            for h in self.hosts:
                cmds += [
                    f"link add {h.bridge_port} type veth peer name {h.interface} netns {h.name}",
                    f"link set {h.bridge_port} master {self.bridge} up",
                ]
            self._check(_ip_batch(self.ip, cmds), "creating the LAN")
            procs = []
            for h in self.hosts:
                host_cmds = [
                    "link set lo up",
                    f"addr add {h.address}/{self.prefixlen} brd + dev {h.interface}",
                    f"link set {h.interface} up",
                ]
                argv = [self.ip, "-n", h.name, "-batch", "-"]
                p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
                p.stdin.write("".join(c + "\n" for c in host_cmds))
                p.stdin.close()
                procs.append((h, p))
            for h, p in procs:
                out = p.stdout.read()
                err = p.stderr.read()
                p.stdout.close()
                p.stderr.close()
                rc = p.wait()
                self._check(subprocess.CompletedProcess(p.args, rc, out, err), f"configuring {h.name}")
        except BaseException:
            self.close()
            raise
        self.setup_seconds = time.monotonic() - t0
        return self

    def close(self) -> None:
        """End what is left of the LAN.  Safe to call more than once."""
        if self._closed or not self._started:
            self._closed = True
            return
        self._closed = True
        # 1. Processes the test started in the hosts.
        for p in self._procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 2.0
        for p in self._procs:
            if p.poll() is None:
                try:
                    p.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        # 2. Anything they left behind inside the hosts (only processes of this test can be there).
        for h in self.hosts:
            pids = subprocess.run([self.ip, "netns", "pids", h.name], capture_output=True, text=True)
            for pid in pids.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        # 3. Namespaces (which takes their veth ends along), leftover veths, the bridge.
        cmds = [f"netns del {h.name}" for h in self.hosts]
        _ip_batch(self.ip, cmds, force=True)
        cmds = [f"link del {h.bridge_port}" for h in self.hosts]
        cmds.append(f"link del {self.bridge}")
        _ip_batch(self.ip, cmds, force=True)

    # -- helpers

    def _ip(self, *args: str) -> None:
        proc = subprocess.run([self.ip, *args], capture_output=True, text=True)
        self._check(proc, "ip " + " ".join(args))

    @staticmethod
    def _check(proc: subprocess.CompletedProcess, what: str) -> None:
        if proc.returncode != 0:
            raise RuntimeError(f"{what} failed ({proc.returncode}): {(proc.stderr or '').strip()}")

    def __repr__(self) -> str:
        return f"<Lan {self.subnet}.0/24 {self.hosts}>"


class RoutedLan(Lan):
    """Two subnets, each a bridge with its hosts, joined by a router namespace.

    Subnet ``i`` is ``<subnets[i]>.0/24`` on its own bridge (no address of the test's
    namespace on it); the router is ``<subnet>.254`` on each, with ``ip_forward=1``; every
    host has a default route via its subnet's router. Broadcast stays inside a subnet;
    unicast crosses. ``lan.subnets[i]`` lists the hosts of subnet ``i`` (``Host`` objects:
    ``popen``, ``run``, ``cut``/``restore`` as in :class:`Lan`), ``lan.router`` the router.
    Everything lives inside the test's private namespace, like :class:`Lan`.
    """

    def __init__(self, hosts_per_subnet: tuple[int, int] = (1, 1), subnets: tuple[str, str] = ("10.78.1", "10.78.2")):
        if len(hosts_per_subnet) != 2 or len(subnets) != 2 or subnets[0] == subnets[1]:
            raise ValueError("a RoutedLan has two distinct subnets")
        super().__init__(sum(hosts_per_subnet), subnet=subnets[0])
        for subnet in subnets:
            Lan(1, subnet=subnet)  # validates the spelling
        self.hosts_per_subnet = tuple(hosts_per_subnet)
        self.subnet_names = tuple(subnets)
        self.bridges = [f"zbr{self.token}s{i}" for i in range(2)]
        self.bridge = self.bridges[0]
        self.subnets: list[list[Host]] = [[], []]
        self.router: Host | None = None

    def start(self) -> "RoutedLan":
        if self._started:
            return self
        ok, why = lan_supported()
        if not ok:
            raise RuntimeError(f"RoutedLan unavailable: {why}")
        self._started = True
        t0 = time.monotonic()
        try:
            _ensure_netns_dir()
            index = 0
            for s, count in enumerate(self.hosts_per_subnet):
                for j in range(count):
                    host = Host(self, index, f"zio-{self.token}-{index}", f"{self.subnet_names[s]}.{j + 1}",
                                f"zv{self.token}h{index}")
                    self.subnets[s].append(host)
                    self.hosts.append(host)
                    index += 1
            self.router = Host(self, index, f"zio-{self.token}-r", f"{self.subnet_names[0]}.254", f"zv{self.token}r0")
            cmds = [f"netns add {h.name}" for h in self.hosts] + [f"netns add {self.router.name}"]
            for s, bridge in enumerate(self.bridges):
                cmds += [
                    f"link add {bridge} type bridge forward_delay 0 stp_state 0 mcast_snooping 0",
                    f"link set {bridge} up",
                    f"link add zv{self.token}r{s} type veth peer name eth{s} netns {self.router.name}",
                    f"link set zv{self.token}r{s} master {bridge} up",
                ]
                for h in self.subnets[s]:
                    cmds += [
                        f"link add {h.bridge_port} type veth peer name {h.interface} netns {h.name}",
                        f"link set {h.bridge_port} master {bridge} up",
                    ]
            self._check(_ip_batch(self.ip, cmds), "creating the routed LAN")
            router_cmds = ["link set lo up"]
            for s, subnet in enumerate(self.subnet_names):
                router_cmds += [f"addr add {subnet}.254/24 brd + dev eth{s}", f"link set eth{s} up"]
            self._check(_ip_batch(self.ip, router_cmds, netns=self.router.name), "configuring the router")
            self._check(
                subprocess.run([self.ip, "netns", "exec", self.router.name, "sh", "-c",
                                "echo 1 > /proc/sys/net/ipv4/ip_forward"], capture_output=True, text=True),
                "enabling forwarding in the router",
            )
            for s, subnet in enumerate(self.subnet_names):
                for h in self.subnets[s]:
                    host_cmds = [
                        "link set lo up",
                        f"addr add {h.address}/24 brd + dev {h.interface}",
                        f"link set {h.interface} up",
                        f"route add default via {subnet}.254",
                    ]
                    self._check(_ip_batch(self.ip, host_cmds, netns=h.name), f"configuring {h.name}")
        except BaseException:
            self.close()
            raise
        self.setup_seconds = time.monotonic() - t0
        return self

    def close(self) -> None:
        """End the processes, namespaces, veths and both bridges.  Safe to call more than once."""
        if self._closed or not self._started:
            self._closed = True
            return
        router = [self.router] if self.router is not None else []
        self.hosts = self.hosts + router
        super().close()
        cmds = [f"link del zv{self.token}r{s}" for s in range(2)] + [f"link del {b}" for b in self.bridges]
        _ip_batch(self.ip, cmds, force=True)
