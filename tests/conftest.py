"""Test-suite set-up.  The first thing it does is cut the test process off the network.

At import time -- before zmq or anything else that may start a thread or open a socket -- the
process enters a private network namespace (see ``netns.py``): only ``lo`` exists there, with
broadcast and multicast working, and every subprocess a test starts inherits it.  As root
that cannot fail silently: any problem aborts the run.  Without root a user namespace is
tried; if the kernel refuses, the session is not isolated and tests marked ``needs_netns``
(or ``needs_lan``) are skipped.

Markers:
  ``@pytest.mark.needs_netns``  skip unless the process is in the private network namespace
                                (required by every test that broadcasts, multicasts or
                                discovers).
  ``@pytest.mark.needs_lan``    skip unless ``netns.Lan`` can build a pretend LAN (implies
                                needs_netns).
Fixture:
  ``make_lan(n, subnet="10.77.0")`` builds a started ``netns.Lan``, closed at teardown.
"""

import os
import sys

# Import the helper without relying on pytest's import mode (importlib mode does not touch sys.path).
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import netns  # noqa: E402  (standard library only)

netns.enter()  # raises loudly when root cannot isolate, or threads/sockets already exist

# Settings the library reads from the environment: none is set globally, and none is
# inherited from the developer's shell either -- tests set what they need (ZIO_INTERFACE, ...)
# themselves, e.g. with monkeypatch.setenv or a subprocess env.
for _name in [n for n in os.environ if n.startswith("ZIO_") and not n.startswith("ZIO_TESTS_")]:
    del os.environ[_name]

import subprocess  # noqa: E402
import tempfile  # noqa: E402

# The suite starts ~200 Python subprocesses (nodes, examples, the CLI). Where bytecode may not be
# written into the tree (PYTHONDONTWRITEBYTECODE, as on this machine), each of them compiled zio
# and zio_plugins from source again: ~0.1 s per `import zio` (0.32 s -> 0.21 s measured). The
# subprocesses keep their bytecode in a cache directory outside the tree instead (Python's own
# PYTHONPYCACHEPREFIX; checked against the sources' mtime and size as usual). The test process
# itself is left as it is.
if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX"):
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), f"zio-tests-pycache-{os.getuid()}")

import pytest  # noqa: E402

ISOLATED = netns.isolated()


def _leave_hypothesis_unrewritten(config) -> None:
    """pytest rewrites the asserts of every module of a pytest11 plugin's distribution, so all
    of hypothesis (its internals: ~100 modules) was parsed and rewritten at each run (1-1.5 s;
    nothing is cached here, nor on CI's fresh machine). Our tests' own asserts stay rewritten."""
    hook = getattr(config.pluginmanager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)
    if isinstance(marked, set) and "hypothesis" in marked:
        marked.discard("hypothesis")
        getattr(hook, "_marked_for_rewrite_cache", {}).clear()


def pytest_configure(config):
    _leave_hypothesis_unrewritten(config)
    config.addinivalue_line(
        "markers",
        "needs_netns: the test broadcasts/multicasts or discovers peers; it runs only when the test "
        "process is in its private network namespace (skipped otherwise)",
    )
    config.addinivalue_line(
        "markers",
        "hostile: hostile and faulty networks: floods, spoofing, leaks, churn (issue 15)",
    )
    config.addinivalue_line(
        "markers",
        "needs_lan: the test builds a pretend LAN with netns.Lan (root in the private namespace); "
        "skipped otherwise",
    )


def pytest_report_header(config):
    if netns.isolated():
        return f"zio network: private namespace ({netns.isolation_mode()}), interfaces: lo only"
    return f"zio network: NOT isolated ({netns.not_isolated_reason()}); needs_netns tests are skipped"


def pytest_runtest_setup(item):
    if item.get_closest_marker("needs_netns") or item.get_closest_marker("needs_lan"):
        if not netns.isolated():
            pytest.skip("needs a private network namespace: " + netns.not_isolated_reason())
    if item.get_closest_marker("needs_lan"):
        ok, why = netns.lan_supported()
        if not ok:
            pytest.skip("needs a pretend LAN (netns.Lan): " + why)


@pytest.fixture
def make_lan():
    """``make_lan(n_hosts, subnet="10.77.0") -> netns.Lan`` (started; all closed at teardown)."""
    ok, why = netns.lan_supported()
    if not ok:
        pytest.skip("needs a pretend LAN (netns.Lan): " + why)
    lans = []

    def factory(n_hosts, subnet="10.77.0"):
        lan = netns.Lan(n_hosts, subnet=subnet)
        lans.append(lan)
        return lan.start()

    yield factory
    for lan in reversed(lans):
        lan.close()


PLUGIN_DIR = os.path.join(_HERE, "plugin_pkg")


@pytest.fixture
def memory_plugin(monkeypatch):
    """Make the test-only package "zio-test-memory" installed: on sys.path, with its dist-info."""
    from zio import plugins

    monkeypatch.syspath_prepend(PLUGIN_DIR)
    plugins.reload_plugins()
    yield
    plugins.reload_plugins()
    sys.modules.pop("zio_test_memory", None)


@pytest.fixture
def beacon_port(monkeypatch):
    """A beacon UDP port of this test's own, so that leftovers of other tests stay unseen."""
    import random

    port = random.randint(20000, 40000)
    monkeypatch.setenv("ZIO_BEACON_PORT", str(port))
    return port


@pytest.fixture(params=["beacon", "mdns"])
def discovery(request, monkeypatch, beacon_port):
    """Run the test once per built-in backend, on loopback; subprocesses inherit the choice."""
    if request.param == "mdns":
        pytest.importorskip("zeroconf")
    monkeypatch.setenv("ZIO_DISCOVERY", request.param)
    monkeypatch.setenv("ZIO_INTERFACE", "localhost")
    return request.param


# -- slow CPU-bound tool runs (mypy, pdoc, pip), started early -------------------------------
# Most of the suite waits (timeouts, peers coming and going) with the CPU idle. A test module
# that runs a CPU-bound tool may define ``early_commands(tmp_dir) -> {key: (argv, cwd)}``:
# once collection is over, those commands start at the lowest priority (SCHED_IDLE: they take
# only CPU nobody else wants), and the test takes the result with the ``early_run`` fixture
# (a module-scoped fixture: with ``early_results``). Keys are unique across the suite.

_early: dict[str, tuple[subprocess.Popen, str]] = {}  # key: (the process, its module's tmp_dir)


def _idle_priority() -> None:
    """In the child: run only on CPU time nobody else wants (SCHED_IDLE; else nice 19)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def _normal_priority(pid: int) -> None:
    """Give an early command still running the normal policy back (under a machine busy
    with other work, SCHED_IDLE alone starved one past its timeout). Processes it started
    before keep theirs."""
    try:
        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass  # it ended already, or nice 19 (which only privilege lowers): let it be


def _start_early(commands: dict, tmp_dir: str) -> None:
    for key, (argv, cwd) in commands.items():
        _early[key] = (subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, preexec_fn=_idle_priority),
                       tmp_dir)


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    modules = {item.module for item in session.items if hasattr(item, "module")}
    for module in sorted(modules, key=lambda m: m.__name__):
        early = getattr(module, "early_commands", None)
        if early is not None:
            tmp_dir = tempfile.mkdtemp(prefix="zio-early-")
            _start_early(early(tmp_dir), tmp_dir)


def pytest_unconfigure(config):
    for proc, _ in _early.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _take_early(module, key: str, tmp_dir: str, timeout: float) -> tuple[subprocess.CompletedProcess, str]:
    """The result of ``module``'s early command ``key`` and the tmp_dir it was made for (started
    after collection; run now, in ``tmp_dir``, if it was not, e.g. under a plugin that skips the hook)."""
    started = _early.pop(key, None)
    if started is None:
        argv, cwd = module.early_commands(tmp_dir)[key]
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout), tmp_dir
    proc, early_dir = started
    _normal_priority(proc.pid)  # a test waits for it now: no longer spare-CPU work
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), early_dir


@pytest.fixture
def early_run(request, tmp_path):
    """``early_run(key, timeout) -> CompletedProcess`` of the module's early command ``key``."""

    def result(key: str, timeout: float) -> subprocess.CompletedProcess:
        return _take_early(request.module, key, str(tmp_path), timeout)[0]

    return result


@pytest.fixture(scope="session")
def early_results():
    """``early_results(module, key, tmp_dir, timeout) -> (CompletedProcess, tmp_dir)``: as
    ``early_run``, for module-scoped fixtures; ``tmp_dir`` is the one the command ran for."""
    return _take_early
