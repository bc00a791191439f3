"""Builds zio's one optional C extension, zio._fastpath, with Cython.

The extension is the per-message short path of Port.send() and Port.recv(), compiled from
the same zio/_fastpath.py that runs as plain Python where it is not built. Without Cython
or a C compiler, or with ZIO_PURE_PYTHON=1 in the environment, zio installs as pure
Python and works the same, slower per message (benchmarks/README.md gives both figures).
"""
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build the extension if the compiler can; otherwise warn and install without it."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as err:  # no compiler, no headers: pure Python is a valid install
            self._skip(err)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as err:
            self._skip(err)

    @staticmethod
    def _skip(err: Exception) -> None:
        print(f"zio: the compiled short path was not built ({err}); zio runs as pure Python",
              file=sys.stderr)


def extensions() -> list:
    if os.environ.get("ZIO_PURE_PYTHON"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("zio: Cython is not available; zio installs as pure Python", file=sys.stderr)
        return []
    return cythonize(["zio/_fastpath.py"], compiler_directives={"language_level": "3"}, quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
