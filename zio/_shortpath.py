"""Which form of the per-message short path (``zio/_fastpath.py``) ``Port`` uses.

The compiled module where it was built and built against the pyzmq installed now (it
calls pyzmq's compiled send and recv through their C declarations, so another pyzmq
could lay them out differently), and where it loads (it checks at import that
``zio.Message``'s slots are where it declares them); otherwise the same file run as
Python. The environment variable ``ZIO_PURE_PYTHON`` (anything but "" or "0") asks for
Python, as an install without a C compiler has.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from types import ModuleType

import zmq

log = logging.getLogger(__name__)

#: the environment variable that keeps zio pure Python: at install (no extension is
#: built) and at run time (the compiled module, if any, is not used)
PURE_PYTHON_VARIABLE = "ZIO_PURE_PYTHON"
#: what setup.py leaves beside the compiled module: its source's SHA-256 and pyzmq's version
BUILD_RECORD = "_fastpath.build.json"

_HERE = os.path.dirname(os.path.abspath(__file__))
_NAME = __package__ + "._fastpath"


def pure_python_asked() -> bool:
    return os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0")


def build_record() -> dict | None:
    """What the compiled module was built from (None where no build left a record)."""
    try:
        with open(os.path.join(_HERE, BUILD_RECORD)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def compiled_file() -> str | None:
    """The compiled module's file, if there is one beside the source."""
    spec = importlib.util.find_spec(_NAME)
    origin = spec.origin if spec is not None else None
    if origin and origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return origin
    return None


def chosen() -> ModuleType:
    """The module ``Port`` uses (see the module's doc); says why in the log where a
    compiled module is there and not used."""
    if compiled_file() is None:
        return importlib.import_module(_NAME)  # the .py: nothing was compiled
    if pure_python_asked():
        return as_python()
    record = build_record()
    built_with = record.get("pyzmq") if record else None
    if built_with != zmq.__version__:
        log.warning("zio: the compiled short path was built against pyzmq %s, and pyzmq %s is "
                    "installed: zio runs it as Python (reinstall zio to compile it again)",
                    built_with or "(unknown)", zmq.__version__)
        return as_python()
    try:
        return importlib.import_module(_NAME)
    except (ImportError, ValueError, TypeError) as err:  # a C type it uses differs
        log.warning("zio: the compiled short path cannot be loaded (%s): zio runs it as Python", err)
        return as_python()


def as_python() -> ModuleType:
    """``zio/_fastpath.py`` run as plain Python, loaded from its source (as
    ``zio._fastpath_python`` where a compiled module takes the name ``zio._fastpath``)."""
    name = _NAME + "_python"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    if compiled_file() is None:
        return importlib.import_module(_NAME)
    source = os.path.join(_HERE, "_fastpath.py")
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:
        raise ImportError(f"zio: no source of the short path at {source}")
    python_form = importlib.util.module_from_spec(spec)
    sys.modules[name] = python_form
    spec.loader.exec_module(python_form)
    return python_form
