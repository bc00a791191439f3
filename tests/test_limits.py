"""zio.limits: room for many ports and peers in one process (issue 13).

The open-file limits are lowered with resource.setrlimit in a subprocess, so the test
process keeps its own."""
import resource
import subprocess
import sys
import textwrap

import pytest
import zmq

import zio
from zio import limits

_PRELUDE = """
import os, resource, sys, zmq, zio
soft, hard = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
"""


def _run(body: str, soft: int, hard: int) -> subprocess.CompletedProcess:
    code = _PRELUDE + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code, str(soft), str(hard)],
                          capture_output=True, text=True, timeout=60)


def _hard_limit_at_least(n: int) -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n:
        pytest.skip(f"the hard open-file limit here is {hard}, below the {n} this test needs")
    return n


def test_soft_limit_is_raised_when_the_hard_limit_allows():
    hard = _hard_limit_at_least(2048)
    # 300 bound ports hold about 1200 files: far above the soft limit of 128
    done = _run("""
        ports = []
        for i in range(300):
            port = zio.Port(f"p{i}", zmq.PULL)
            port.bind()
            port.do_binds()
            ports.append(port)
        push = zio.Port("push", zmq.PUSH)
        push.connect(ports[-1].bound[0])
        push.online()
        push.send(zio.Message(form="TEST", payload=b"still works"))
        assert ports[-1].recv(5000).payload == [b"still works"]
        print("open", len(os.listdir("/proc/self/fd")), "limits", *resource.getrlimit(resource.RLIMIT_NOFILE))
    """, 128, hard)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    assert int(words[1]) > 1000  # the ports really hold more files than the old soft limit
    assert (int(words[3]), int(words[4])) == (hard, hard)  # soft raised to the hard limit


def test_ports_beyond_the_hard_limit_get_a_clear_error_naming_ulimit():
    done = _run("""
        ports = []
        try:
            for i in range(1000):
                ports.append(zio.Port(f"p{i}", zmq.PULL))
                ports[-1].bind()
                ports[-1].do_binds()
        except zio.ResourceLimitError as err:
            assert isinstance(err, OSError) and isinstance(err, zio.ZioError)
            print(len(ports), err)
        for port in ports:
            port.close()
        print("closed")
    """, 128, 128)
    assert done.returncode == 0, done.stderr  # no abort in libzmq, no stray OSError
    made, message = done.stdout.splitlines()[0].split(" ", 1)
    assert 10 < int(made) < 40  # about 4 files a bound port
    assert "`ulimit -n " in message and "needs at least" in message and "limit is 128" in message
    assert done.stdout.splitlines()[-1] == "closed"


@pytest.mark.needs_netns
def test_peers_beyond_the_hard_limit_get_a_clear_error_naming_ulimit():
    done = _run("""
        peers = []
        try:
            for i in range(50):
                peers.append(zio.Peer(f"p{i}", discovery="beacon"))
        except zio.ResourceLimitError as err:
            print(len(peers), err)
        for peer in peers:
            peer.stop()
    """, 160, 160)
    assert done.returncode == 0, done.stderr
    made, message = done.stdout.splitlines()[0].split(" ", 1)
    assert 1 <= int(made) < 50
    assert "`ulimit -n " in message and f"peer 'p{made}'" in message


def test_ensure_open_files_refuses_what_no_limit_allows_and_changes_nothing():
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    if before[1] == resource.RLIM_INFINITY:
        pytest.skip("no hard open-file limit here")
    with pytest.raises(zio.ResourceLimitError, match=r"ulimit -n \d+") as info:
        limits.ensure_open_files(before[1] + 10, "a test")
    assert "a test needs at least" in str(info.value) and f"hard limit {before[1]} " in str(info.value)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == before
    assert limits.ensure_open_files(0) == before[0]


def test_a_full_context_is_a_clear_error_naming_max_sockets():
    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, 8)
    ports = []
    try:
        with pytest.raises(zio.ResourceLimitError, match="MAX_SOCKETS"):
            for i in range(20):
                ports.append(zio.Port(f"p{i}", zmq.PULL, context=ctx))
        assert 1 <= len(ports) <= 8
    finally:
        for port in ports:
            port.close()
        ctx.term()


def test_the_default_context_holds_more_than_1023_ports():
    hard = _hard_limit_at_least(8192)
    done = _run("""
        ports = [zio.Port(f"p{i}", zmq.PAIR) for i in range(1100)]
        print(len(ports), zmq.Context.instance().get(zmq.MAX_SOCKETS))
        for port in ports:
            port.close()
    """, 1024, hard)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1100", str(limits.CONTEXT_MAX_SOCKETS)]
