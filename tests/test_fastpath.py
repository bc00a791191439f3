"""The compiled short path of Port.send/recv (zio/_fastpath.py, built by setup.py): the
install built it from the current source, ZIO_PURE_PYTHON turns it off, and Port's API
reads as before. That both forms behave alike is tests/test_hotpath.py's job."""
import hashlib
import inspect
import os
import subprocess
import sys

import pytest
import zmq

import zio
from zio import _fastpath

PURE = os.environ.get(_fastpath.PURE_PYTHON_VARIABLE, "") not in ("", "0")


@pytest.mark.skipif(PURE, reason="ZIO_PURE_PYTHON is set: zio runs as pure Python on purpose")
def test_the_install_built_the_compiled_short_path():
    """The test command installs zio with its extension; without it, the figures in the
    README for the compiled path would not be what these tests ran."""
    assert _fastpath.COMPILED, (
        "zio/_fastpath.py was not compiled: install with `pip install -e '.[test]'` where "
        "Cython (a build requirement) and a C compiler are available (see setup.py)")
    assert zio.port._short is _fastpath


@pytest.mark.skipif(not _fastpath.COMPILED, reason="zio runs as pure Python here: nothing compiled to compare")
def test_the_compiled_module_is_built_from_the_current_source():
    """An in-place build (editable install) goes stale when zio/_fastpath.py changes:
    setup.py leaves the SHA-256 of the source it compiled beside the module."""
    here = os.path.dirname(_fastpath.__file__)
    with open(os.path.join(here, "_fastpath.py"), "rb") as f:
        source = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(here, "_fastpath.source-sha256")) as f:
        built_from = f.read().strip()
    assert built_from == source, (
        "zio/_fastpath.py changed after it was compiled: rebuild with `pip install -e .` "
        "(or `python setup.py build_ext --inplace`)")


def test_zio_pure_python_selects_the_python_module():
    code = ("import zio.port, types; s = zio.port._short; "
            "print(s.__name__, s.COMPILED, type(zio.Port.send) is types.FunctionType)")
    env = dict(os.environ, ZIO_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    name, compiled, plain_function = out.stdout.split()
    assert compiled == "False" and plain_function == "True"
    assert name == ("zio._fastpath_python" if _fastpath.COMPILED else "zio._fastpath")


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
