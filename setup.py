"""Builds zio's one optional C extension, zio._fastpath, with Cython.

The extension is the per-message short path of Port.send() and Port.recv(), compiled from
the same zio/_fastpath.py that runs as plain Python where it is not built. Without Cython
or a C compiler, or with ZIO_PURE_PYTHON=1 in the environment, zio installs as pure
Python and works the same, slower per message (benchmarks/README.md gives both figures).
"""
import hashlib
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext


#: the file beside the compiled module that holds its source's SHA-256
SOURCE_STAMP = "_fastpath.source-sha256"


class OptionalBuildExt(build_ext):
    """Build the extension if the compiler can; otherwise warn and install without it."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as err:  # no compiler, no headers: pure Python is a valid install
            self._skip(err)
            return
        for ext in self.extensions:
            self._stamp(ext)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as err:
            self._skip(err)

    def _stamp(self, ext) -> None:
        """Beside the built module (in the source tree for an in-place build), the SHA-256
        of the source it was built from: a test tells a stale in-place build from a
        current one (mtimes cannot: a git checkout touches them)."""
        built = self.get_ext_fullpath(ext.name)
        if not os.path.exists(built):
            return  # not built (skipped above)
        source = os.path.join(*ext.name.split(".")) + ".py"
        with open(source, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        with open(os.path.join(os.path.dirname(built), SOURCE_STAMP), "w") as f:
            f.write(digest + "\n")

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
