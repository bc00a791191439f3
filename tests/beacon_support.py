"""Helpers for the beacon-backend tests: small programs run in subprocesses, and a line reader.

The programs print one JSON object per line on stdout (``{"event": ..., ...}``), with
``time.monotonic()`` stamps the test process can compare with its own clock (network
namespaces do not have clocks of their own). Each program stops cleanly when its stdin
closes, so a test ends it with ``proc.stdin.close()``, or kills it to simulate a crash.

Nothing here starts discovery by itself: callers run these programs inside the test
suite's private network namespace (or inside a ``netns.Lan`` host).
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap
import time

def wait_until(condition, timeout=5.0, what="condition"):
    """Wait (sleeping 10 ms between looks) until ``condition()`` is true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.01)


def open_fds() -> int:
    """File descriptors this process has open now."""
    return len(os.listdir("/proc/self/fd"))


def rss_kb() -> int:
    """This process's resident memory in kB (0 where /proc does not say)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


#: A zio Peer that prints its events. argv: nickname, JSON headers.
PEER = textwrap.dedent(
    """
    import json, sys, threading, time
    import zio

    peer = zio.Peer(sys.argv[1], **json.loads(sys.argv[2]))

    def say(**fields):
        print(json.dumps(fields), flush=True)

    say(event="ready", uuid=str(peer.uuid), t=time.monotonic(), describe=peer.backend.describe())

    def pump():
        while True:
            event = peer.poll(None)
            if event is None:
                return
            say(event=event.kind, uuid=str(event.peer.uuid), nick=event.peer.nick,
                headers=event.peer.headers, t=time.monotonic())

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    sys.stdin.read()  # until the test closes our stdin
    peer.stop()
    thread.join(5)
    say(event="stopped", t=time.monotonic())
    """
)

#: A pyre node that prints its events. argv: name, beacon port, JSON headers, and optionally
#: "ping-fast": pyre then finds every peer evasive at once (it pings each second, not after
#: 10 s of silence) and prints every ZRE message it receives as {"event": "zre", "id": ...};
#: "beacon-fast": pyre beacons every 0.1 s, not each second (its Pyre.set_interval is a no-op).
PYRE = textwrap.dedent(
    """
    import json, sys, threading, time
    import zmq
    import pyre
    from pyre import pyre_peer, zbeacon, zre_msg
    from pyre.pyre_event import PyreEvent

    if "beacon-fast" in sys.argv[4:]:
        zbeacon.INTERVAL_DFLT = 0.1  # read when the beacon starts publishing

    lock = threading.Lock()

    def say(**fields):
        line = json.dumps(fields) + "\\n"
        with lock:  # pyre's own thread may print too
            sys.stdout.write(line)
            sys.stdout.flush()

    if "ping-fast" in sys.argv[4:]:
        pyre_peer.PyrePeer.PEER_EVASIVE = 0.0
        original = zre_msg.ZreMsg.recv

        def spy(self, sock):
            result = original(self, sock)
            say(event="zre", id=self.id, sequence=self.sequence, sender=str(self.address))
            return result

        zre_msg.ZreMsg.recv = spy

    node = pyre.Pyre(sys.argv[1])
    node.set_port(sys.argv[2].encode())
    for key, value in json.loads(sys.argv[3]).items():
        node.set_header(key, value)
    node.start()
    say(event="ready", uuid=str(node.uuid()), endpoint=node.endpoint(), t=time.monotonic())
    poller = zmq.Poller()
    poller.register(node.socket(), zmq.POLLIN)
    poller.register(sys.stdin.fileno(), zmq.POLLIN)
    running = True
    while running:
        for what, _ in poller.poll():
            if what == sys.stdin.fileno():
                if not sys.stdin.buffer.read1(4096):
                    running = False
                continue
            event = PyreEvent(node)
            say(event=event.type, uuid=str(event.peer_uuid), nick=event.peer_name,
                headers=event.headers, address=event.peer_addr, t=time.monotonic())
    t = time.monotonic()
    node.stop()
    say(event="stopped", t=t)
    """
)

#: A node with a SERVER port "rep" that echoes every message, adding its own label.
ECHO_SERVER = textwrap.dedent(
    """
    import json, select, sys, time
    import zmq, zio

    node = zio.Node(sys.argv[1], origin=int(sys.argv[2]))
    rep = node.port("rep", zmq.SERVER)
    rep.bind()
    node.online()
    print(json.dumps({"event": "ready", "address": rep.bound[0]}), flush=True)
    served = 0
    while not select.select([sys.stdin], [], [], 0)[0]:
        msg = rep.recv(100)
        if msg is not None:
            msg.label = "echo:" + msg.label
            rep.send(msg)
            served += 1
    node.close()
    print(json.dumps({"event": "stopped", "served": served}), flush=True)
    """
)

#: A node with a CLIENT port "req" connected by name to (argv[1], "rep"); sends argv[2] messages.
ECHO_CLIENT = textwrap.dedent(
    """
    import json, sys
    import zmq, zio

    node = zio.Node("client")
    req = node.port("req", zmq.CLIENT)
    req.connect(sys.argv[1], "rep")
    node.online(timeout_ms=15000)
    replies = []
    for i in range(int(sys.argv[2])):
        req.send(zio.Message(form="TEXT", label=f"hello {i}"))
        reply = req.recv(10000)
        replies.append(None if reply is None else [reply.label, reply.origin])
    print(json.dumps({"event": "done", "connected": req.connected, "replies": replies}), flush=True)
    node.close()
    """
)

#: A node with a PUB port "out" that publishes a numbered message every 20 ms until stdin closes.
PUBLISHER = textwrap.dedent(
    """
    import json, select, sys
    import zmq, zio

    node = zio.Node(sys.argv[1])
    out = node.port("out", zmq.PUB)
    out.bind()
    node.online()
    print(json.dumps({"event": "ready", "address": out.bound[0]}), flush=True)
    n = 0
    while not select.select([sys.stdin], [], [], 0.02)[0]:
        out.send(zio.Message(form="TEXT", label=f"news {n}"))
        n += 1
    node.close()
    print(json.dumps({"event": "stopped", "sent": n}), flush=True)
    """
)

#: A node with a SUB port "in" connected by name to (argv[2], "out"); prints the first message.
SUBSCRIBER = textwrap.dedent(
    """
    import json, sys
    import zmq, zio

    node = zio.Node(sys.argv[1])
    sub = node.port("in", zmq.SUB)
    sub.subscribe("")
    sub.connect(sys.argv[2], "out")
    node.online(timeout_ms=15000)
    msg = sub.recv(10000)
    print(json.dumps({"event": "got", "nick": sys.argv[1], "connected": sub.connected,
                      "peers": sorted(i.nick for i in node.peer.peers.values()),
                      "label": None if msg is None else msg.label}), flush=True)
    node.close()
    """
)


def python(script: str, *args: str) -> list[str]:
    """The argv that runs ``script`` with ``args`` in this interpreter, unbuffered."""
    return [sys.executable, "-u", "-c", script, *args]


def spawn(argv: list[str], env: dict[str, str] | None = None, popen=subprocess.Popen) -> subprocess.Popen:
    """Start ``argv`` with pipes for stdin and stdout (``popen`` may be a ``Host.popen``)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=full_env)


class Lines:
    """Read JSON lines from a subprocess's stdout with a deadline (no threads)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.buf = b""
        self.seen: list[dict] = []  # every line read so far
        self._used: set[int] = set()  # indexes of the lines wait_for() returned

    def get(self, timeout: float) -> dict | None:
        """The next object, or None when none comes within ``timeout`` seconds (or at EOF)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        obj = json.loads(line)
        self.seen.append(obj)
        return obj

    def wait_for(self, timeout: float, **match) -> dict:
        """The first line not returned before with every ``key=value`` of ``match``.

        Lines already read (and skipped by an earlier call) count; fails after ``timeout`` s.
        """
        def matches(i: int) -> bool:
            return i not in self._used and all(self.seen[i].get(k) == v for k, v in match.items())

        deadline = time.monotonic() + timeout
        i = 0
        while True:
            while i < len(self.seen):
                if matches(i):
                    self._used.add(i)
                    return self.seen[i]
                i += 1
            if self.get(max(0.0, deadline - time.monotonic())) is None:
                raise AssertionError(
                    f"no line matching {match} within {timeout} s "
                    f"(exit code {self.proc.poll()}); lines so far: {self.seen}"
                )


def finish(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """Close the stdin of ``proc`` (asking it to stop) and wait; kill it if it does not."""
    try:
        proc.stdin.close()
    except (OSError, ValueError):
        pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{proc.args[:4]} did not stop within {timeout} s after its stdin closed")
