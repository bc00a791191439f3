"""The compiled short path of Port.send/recv (zio/_fastpath.py, built by setup.py): the
install built it from the current source against the pyzmq installed, ZIO_PURE_PYTHON
turns it off, a compiled module built against another pyzmq is not used, and Port's API
reads as before. That both forms behave alike is tests/test_hotpath.py's job."""
import hashlib
import inspect
import os
import subprocess
import sys

import pytest
import zmq

import zio
from zio import _shortpath

PURE = _shortpath.pure_python_asked()
COMPILED = _shortpath.compiled_file() is not None


@pytest.mark.skipif(PURE, reason="ZIO_PURE_PYTHON is set: zio runs as pure Python on purpose")
def test_the_install_built_the_compiled_short_path():
    """The test command installs zio with its extension; without it, the figures in the
    README for the compiled path would not be what these tests ran."""
    assert COMPILED, (
        "zio/_fastpath.py was not compiled: install with `pip install -e '.[test]'` where "
        "Cython and pyzmq (build requirements) and a C compiler are available (see setup.py)")
    assert zio.port._short.COMPILED
    assert zio.port._short.__name__ == "zio._fastpath"


@pytest.mark.skipif(not COMPILED, reason="zio runs as pure Python here: nothing compiled to compare")
def test_the_compiled_module_is_built_from_the_current_source_and_pyzmq():
    """An in-place build (editable install) goes stale when zio/_fastpath.py changes, or
    pyzmq is upgraded: setup.py records both beside the module."""
    here = os.path.dirname(zio.__file__)
    with open(os.path.join(here, "_fastpath.py"), "rb") as f:
        source = hashlib.sha256(f.read()).hexdigest()
    record = _shortpath.build_record()
    assert record is not None, f"no {_shortpath.BUILD_RECORD} beside the compiled module"
    assert record["source_sha256"] == source, (
        "zio/_fastpath.py changed after it was compiled: rebuild with `pip install -e .` "
        "(or `python setup.py build_ext --inplace`)")
    assert record["pyzmq"] == zmq.__version__


def test_zio_pure_python_selects_the_python_module():
    code = ("import zio.port, types; s = zio.port._short; "
            "print(s.__name__, s.COMPILED, type(zio.Port.send) is types.FunctionType)")
    env = dict(os.environ, ZIO_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    name, compiled, plain_function = out.stdout.split()
    assert compiled == "False" and plain_function == "True"
    assert name == ("zio._fastpath_python" if COMPILED else "zio._fastpath")


@pytest.mark.skipif(not COMPILED, reason="zio runs as pure Python here: nothing compiled to refuse")
def test_a_module_built_against_another_pyzmq_is_run_as_python(monkeypatch, caplog):
    """Its C calls into pyzmq assume the layout of the pyzmq it was built against: with
    another one installed, zio says so in the log and runs the same code as Python."""
    record = dict(_shortpath.build_record() or {}, pyzmq="0.0.1")
    monkeypatch.setattr(_shortpath, "build_record", lambda: record)
    monkeypatch.delenv(_shortpath.PURE_PYTHON_VARIABLE, raising=False)
    with caplog.at_level("WARNING", logger="zio._shortpath"):
        module = _shortpath.chosen()
    assert module.__name__ == "zio._fastpath_python" and not module.COMPILED
    assert "built against pyzmq 0.0.1" in caplog.text and zmq.__version__ in caplog.text
    monkeypatch.setattr(_shortpath, "build_record", lambda: None)  # no record: the same
    assert _shortpath.chosen() is module


def test_send_and_recv_keep_their_signatures_and_docs():
    send = inspect.signature(zio.Port.send)
    recv = inspect.signature(zio.Port.recv)
    assert list(send.parameters) == ["self", "msg", "timeout_ms"]
    assert list(recv.parameters) == ["self", "timeout_ms", "timeout"]
    assert recv.parameters["timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert zio.Port.send.__doc__.startswith("Send ``msg``")
    assert zio.Port.recv.__doc__.startswith("Receive one message")
    with zio.Port("p", zmq.PUSH) as port:
        assert port.send.__self__ is port and port.recv.__self__ is port
