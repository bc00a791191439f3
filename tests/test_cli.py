"""The zio command: plugins, peers, send, recv, echo, demo; one-line errors and exit codes."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from zio import Message, cli

pytestmark = [pytest.mark.needs_netns, pytest.mark.usefixtures("beacon_port")]


def zio(*args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zio", *args], capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})


def zio_all(*commands: tuple[str, ...], timeout: float = 60) -> list[subprocess.CompletedProcess]:
    """``zio(*args)`` for each of ``commands``, all started at once; their results in order."""
    procs = [start(*args) for args in commands]
    done = []
    for args, proc in zip(commands, procs):
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
                p.wait()
            raise
        done.append(subprocess.CompletedProcess([sys.executable, "-m", "zio", *args], proc.returncode, out, err))
    return done


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "zio", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


#: Commands that end at once (listings, errors), started together on first use by the
#: ``quick`` fixture: each still a ``python -m zio`` process of its own, started side by side
#: (one after the other, their interpreter start-ups added up, ~0.4 s each).
QUICK = [
    ("plugins",),
    ("send", "nobody", "port", "--timeout", "200"),
    ("send", "x", "y", "--json", "{bad"),
    ("peers", "--discovery", "nope"),
    ("peers", "--interface", "eth9"),
    ("send",),
    ("no-such-command",),
    ("send", "echo", "service", "--label", "hi", "--json", '{"a": 1}'),
]


@pytest.fixture(scope="module")
def quick():
    """``quick(*args) -> CompletedProcess`` of one of ``QUICK`` (all run at once, on a beacon
    port of their own)."""
    import random

    env = {**os.environ, "ZIO_BEACON_PORT": str(random.randint(20000, 40000))}
    procs = {args: subprocess.Popen([sys.executable, "-m", "zio", *args], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env) for args in QUICK}
    done: dict[tuple[str, ...], subprocess.CompletedProcess] = {}

    def result(*args: str) -> subprocess.CompletedProcess:
        if args not in done:
            out, err = procs[args].communicate(timeout=60)
            done[args] = subprocess.CompletedProcess([sys.executable, "-m", "zio", *args],
                                                     procs[args].returncode, out, err)
        return done[args]

    yield result
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_plugins_lists_backends_and_packages(quick):
    done = quick("plugins")
    assert done.returncode == 0
    assert done.stdout.split()[:2] == ["beacon", "zio"]


def test_echo_send_and_peers():
    echo = start("echo", "--count", "1")
    assert echo.stdout.readline().startswith("echo service echo/service (SERVER) at tcp://127.0.0.1:")
    listing = zio("peers", "--wait", "1")
    assert listing.returncode == 0
    assert "echo " in listing.stdout and "zio.port.service.socket = SERVER" in listing.stdout
    sent = zio("send", "--timeout", "20000", "--json", '{"x": 1}', "echo", "service", "part1")
    assert sent.returncode == 0, sent.stderr
    assert "label='{\"x\": 1}'" in sent.stdout and "b'part1'" in sent.stdout
    echo.communicate(timeout=30)
    assert echo.returncode == 0


def test_recv_from_a_publisher_and_watch():
    watch = start("peers", "--watch", "--duration", "30")
    assert watch.stderr.readline().startswith("# listening with")  # its Peer is up (was: sleep 0.5 s)
    publisher = subprocess.Popen(
        [sys.executable, "-c", "\n".join([
            "import time, zmq, zio",
            "with zio.Node('pub') as n:",
            "    p = n.port('out', zmq.PUB); p.bind(); n.online()",
            "    for i in range(400):",
            "        p.send(zio.Message(form='TICK', seqno=i)); time.sleep(0.01)",
        ])],
        stderr=subprocess.PIPE, text=True,
    )
    got = zio("recv", "--timeout", "20000", "pub", "out", "--count", "3")
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert len(lines) == 3 and all("'TICK'" in line for line in lines)
    publisher.kill()
    publisher.wait()
    seen = []
    for line in watch.stdout:  # until the watcher reports the killed publisher gone
        seen.append(line)
        if "EXIT pub " in line:
            break
    watch.kill()
    watch.wait()
    assert any("ENTER pub " in line for line in seen) and "EXIT pub " in seen[-1]
    assert seen[-1].endswith("  (lost)\n")  # killed: its connection closed (the exit's reason)


@pytest.mark.parametrize(
    "args, message",
    [
        (("send", "nobody", "port", "--timeout", "200"), "no node named 'nobody'"),
        (("send", "x", "y", "--json", "{bad"), "--json is not valid JSON"),
        (("peers", "--discovery", "nope"), "unknown discovery backend 'nope'"),
        (("peers", "--interface", "eth9"), "no usable IPv4 interface matches 'eth9'"),
    ],
)
def test_errors_are_one_line_with_exit_code_1(args, message, quick):
    done = quick(*args)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_usage_errors_exit_2(quick):
    assert quick("send").returncode == 2
    assert quick("no-such-command").returncode == 2


def test_usage_errors_exit_2_label_and_json_are_exclusive(quick):
    done = quick("send", "echo", "service", "--label", "hi", "--json", '{"a": 1}')
    assert done.returncode == 2
    assert "not allowed with argument --label" in done.stderr


#: Runs ``python -m zio ARGS`` for each ARGS of argv[1] (JSON) in this one process, as
#: ``python -m`` does (runpy), and prints [exit code, stdout] of each as JSON.
EACH_AS_PYTHON_M_ZIO = """
import contextlib, io, json, runpy, sys
results = []
for args in json.loads(sys.argv[1]):
    sys.argv = ["zio", *args]
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_module("zio", run_name="__main__", alter_sys=True)
        except SystemExit as exit:
            code = 0 if exit.code is None else exit.code
    results.append([code, out.getvalue()])
print(json.dumps(results))
"""


def test_help_is_plain_text():
    every = [["--help"], *([name, "--help"] for name in ("demo", "plugins", "peers", "send", "recv", "echo"))]
    # one interpreter for the seven (each a subprocess of its own cost ~0.3 s)
    done = subprocess.run([sys.executable, "-c", EACH_AS_PYTHON_M_ZIO, json.dumps(every)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) == len(every)
    for args, (code, stdout) in zip(every, results):
        assert code == 0 and "``" not in stdout, (args, stdout)
    assert "(with --watch: follow them" in results[0][1]
    assert results[0][1] == zio("--help").stdout  # as `python -m zio --help` prints it


def test_level_0_is_not_printed_as_undefined():
    assert "undefined" not in cli._describe_message(Message(form="TEXT", label="x"))
    assert cli._describe_message(Message(form="TEXT", label="x")).startswith("'TEXT' label='x'")
    assert cli._describe_message(Message(level=4, form="TEMP")).startswith("info 'TEMP'")


def test_error_messages_are_printed_on_one_line():
    assert cli.one_line(cli.CommandError("first line\n  second line")) == "first line second line"


def test_socket_compatibility_table():
    assert cli.can_talk("CLIENT", "SERVER") and cli.can_talk("push", "PULL") and cli.can_talk("DEALER", "DEALER")
    assert not cli.can_talk("PUSH", "SERVER") and not cli.can_talk("SUB", "PUSH")
    for ours, theirs in cli.COMPLEMENT.items():  # every default choice is a valid pair
        assert cli.can_talk(ours, theirs)


def test_send_checks_the_target_before_sending(discovery):
    echo = start("echo")  # runs until interrupted (a server that replies and leaves at once can race its reply)
    assert echo.stdout.readline().startswith("echo service echo/service (SERVER)")
    try:
        # the five commands at once: separate processes, as before, without waiting for each other
        wrong, cannot, no_port, no_recv, right = zio_all(
            ("send", "echo", "service", "hi", "--socket", "PUSH", "--timeout", "10000"),
            ("send", "echo", "service", "hi", "--socket", "SUB", "--timeout", "10000"),
            ("send", "echo", "nope", "hi", "--timeout", "10000"),
            ("recv", "echo", "service", "--socket", "PUSH", "--timeout", "10000"),
            ("send", "echo", "service", "hi", "--timeout", "10000"),
        )
        assert wrong.returncode == 1
        assert wrong.stderr == "zio: error: a PUSH socket cannot talk to echo/service, a SERVER socket, use CLIENT\n"
        assert cannot.returncode == 1 and "a SUB socket cannot send; echo/service is a SERVER socket, use CLIENT" in cannot.stderr
        assert no_port.returncode == 1
        assert no_port.stderr == "zio: error: node 'echo' has no port 'nope' (its ports: service)\n"
        assert no_recv.returncode == 1 and "a PUSH socket cannot receive" in no_recv.stderr
        assert right.returncode == 0, right.stderr
        assert right.stdout.startswith("'TEXT' label='' origin=0")  # level 0 left out
        echo.send_signal(signal.SIGINT)
        _, err = echo.communicate(timeout=30)
        assert echo.returncode == 130 and err == "zio: interrupted\n"
    finally:
        if echo.poll() is None:
            echo.kill()
            echo.wait()


def test_demo_on_both_backends(discovery):
    done = zio("demo")
    assert done.returncode == 0, done.stderr
    assert "visitor got 'hello, visitor' from origin 1" in done.stdout


SILENT_PLUGIN = """
    # A plugin written as a newcomer would: no __init__ (it takes no options), finds nobody.
    import zio

    class Silent(zio.Discovery):
        name = "silent"
        def start(self, uuid, nickname, headers, report): pass
        def stop(self): pass

    @zio.hookimpl
    def zio_discovery_backends():
        return {"silent": Silent}
"""


@pytest.fixture
def silent_plugin(tmp_path):
    """An installed plugin package "zio-test-silent" (module + dist-info with its entry point)."""
    (tmp_path / "zio_test_silent.py").write_text(textwrap.dedent(SILENT_PLUGIN))
    info = tmp_path / "zio_test_silent-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zio-test-silent\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[zio]\nsilent = zio_test_silent\n")
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


def test_demo_with_a_backend_that_finds_nothing_says_so(silent_plugin, readme_plugin):
    """Two plugins whose start() finds nobody, their demos run at once (each waits the demo's
    3 s): "silent", and README's "Writing a plugin" installed as written (whose --interface
    is checked in test_the_readme_plugin_works_with_the_cli)."""
    silent = subprocess.Popen([sys.executable, "-m", "zio", "demo", "--discovery", "silent"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, **silent_plugin})
    readme = subprocess.Popen([sys.executable, "-m", "zio", "demo", "--discovery", "mine"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, **readme_plugin})
    _, silent_err = silent.communicate(timeout=60)
    _, readme_err = readme.communicate(timeout=60)

    assert silent.returncode == 1, silent_err
    assert "TypeError" not in silent_err  # the demo passes no interface= unasked
    assert silent_err.startswith("zio: error: the demo's nodes did not find each other "
                                 "with discovery backend 'silent' within 3 s: the visitor saw no peer at all")
    assert silent_err.count("\n") == 1

    assert readme.returncode == 1  # its start() finds nobody: the demo says so, nothing else
    assert readme_err.startswith("zio: error: the demo's nodes did not find each other"), readme_err


def test_a_plugin_that_takes_no_options_is_a_one_line_error(silent_plugin):
    done = zio("peers", "--discovery", "silent", "--interface", "lo", env=silent_plugin)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "backend 'silent' from zio-test-silent 1.0 cannot be made with interface=" in done.stderr


def test_ctrl_c_is_one_line_and_exit_130():
    watch = start("peers", "--watch")
    assert watch.stderr.readline().startswith("# listening with")
    watch.send_signal(signal.SIGINT)
    out, err = watch.communicate(timeout=30)
    assert watch.returncode == 130
    assert err == "zio: interrupted\n"


def _readme_plugin() -> str:
    with open(os.path.join(os.path.dirname(__file__), os.pardir, "README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    [plugin] = [b for b in blocks if "class MyDiscovery" in b]
    return plugin


@pytest.fixture
def readme_plugin(tmp_path):
    """README's "Writing a plugin", installed as written: package "zio-test-readme-plugin"."""
    root = tmp_path / "readme"
    root.mkdir()
    (root / "zio_test_readme_plugin.py").write_text(_readme_plugin())
    info = root / "zio_test_readme_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zio-test-readme-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[zio]\nmybackend = zio_test_readme_plugin\n")
    return {"PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}


def test_the_readme_plugin_works_with_the_cli(readme_plugin):
    """README's "Writing a plugin", installed as written: --interface takes it (and the demo
    does: see test_demo_with_a_backend_that_finds_nothing_says_so, which runs it alongside)."""
    done = zio("peers", "--discovery", "mine", "--interface", "lo", "--wait", "0", env=readme_plugin)
    assert done.returncode == 0, done.stderr  # interface= is taken too
    assert done.stderr.startswith("# listening with {'backend': 'mine'}")


def test_ctrl_c_in_a_receive_loop_is_a_flag_the_loop_checks():
    """pyzmq checks signals when it frees a received frame, where a KeyboardInterrupt is lost:
    inside the recv/echo loops the first Ctrl-C only sets a flag; a second one, or one
    outside the loops, interrupts at once."""
    ctrl_c = cli._CtrlC()
    with pytest.raises(KeyboardInterrupt):
        ctrl_c(signal.SIGINT, None)  # outside a loop: as Python's own handler
    assert not ctrl_c.asked
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c.deferred():
            ctrl_c(signal.SIGINT, None)  # in the loop: nothing raised here...
            assert ctrl_c.asked and ctrl_c.defer
            with pytest.raises(KeyboardInterrupt):
                ctrl_c(signal.SIGINT, None)  # ...but a second Ctrl-C interrupts at once
            ctrl_c.check()  # the loop's check raises it
    assert not ctrl_c.defer
