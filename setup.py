"""Builds zio's one optional C extension, zio._fastpath, with Cython.

The extension is the per-message short path of Port.send() and Port.recv(), compiled from
the same zio/_fastpath.py that runs as plain Python where it is not built. It calls
pyzmq's compiled send and recv directly, through the Cython declarations pyzmq ships, so
it is built against the pyzmq of the build (a build requirement) and used only with that
same version (zio/_shortpath.py checks); it reads and writes a Message's slots as C
fields (zio/_fastpath.pxd declares their layout, checked at import). Without Cython or a
C compiler, or with ZIO_PURE_PYTHON=1 in the environment, zio installs as pure Python and
works the same, slower per message (benchmarks/README.md gives both figures).
"""
import hashlib
import json
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


#: the file beside the compiled module that says what it was built from (the source's
#: SHA-256, pyzmq's version); zio/_shortpath.py and tests/test_fastpath.py read it
BUILD_RECORD = "_fastpath.build.json"
#: where the build writes the libzmq declarations pyzmq's headers include (see _zmq_header)
HEADER_DIR = os.path.join("build", "zio-zmq-include")


class OptionalBuildExt(build_ext):
    """Build the extension if the compiler can; otherwise warn and install without it."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as err:  # no compiler, no headers: pure Python is a valid install
            self._skip(err)
            return
        for ext in self.extensions:
            self._record(ext)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as err:
            self._skip(err, ext.name)

    def _record(self, ext) -> None:
        """Beside the built module (in the source tree for an in-place build): the SHA-256
        of the source it was built from (a test tells a stale in-place build from a
        current one; mtimes cannot, a git checkout touches them) and the pyzmq it was
        built against (its struct layouts and method tables are compiled in)."""
        built = self.get_ext_fullpath(ext.name)
        if not os.path.exists(built):
            return  # not built (skipped above)
        import zmq

        source = os.path.join(*ext.name.split(".")) + ".py"
        with open(source, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        with open(os.path.join(os.path.dirname(built), BUILD_RECORD), "w") as f:
            json.dump({"source_sha256": digest, "pyzmq": zmq.__version__}, f)
            f.write("\n")

    @staticmethod
    def _skip(err: Exception, name: str = "zio's extensions") -> None:
        print(f"zio: {name} was not compiled ({err}); it runs as pure Python", file=sys.stderr)


def _zmq_header(zmq) -> str:
    """The directory of a ``zmq.h`` for pyzmq's headers (``zmq_compat.h`` includes it), as
    pyzmq's wheels bundle libzmq without its headers. zio uses no libzmq function, only
    the layout of pyzmq's frame, which holds a ``zmq_msg_t``: 64 bytes aligned as a
    pointer in libzmq's stable ABI. The version macros are those of pyzmq's libzmq."""
    major, minor, patch = zmq.zmq_version_info()
    os.makedirs(HEADER_DIR, exist_ok=True)
    with open(os.path.join(HEADER_DIR, "zmq.h"), "w") as f:
        f.write(
            "/* written by zio's setup.py: what pyzmq's headers need of libzmq's zmq.h */\n"
            "#ifndef ZIO_ZMQ_H\n#define ZIO_ZMQ_H\n"
            f"#define ZMQ_VERSION_MAJOR {major}\n#define ZMQ_VERSION_MINOR {minor}\n"
            f"#define ZMQ_VERSION_PATCH {patch}\n"
            "#define ZMQ_VERSION (ZMQ_VERSION_MAJOR * 10000 + ZMQ_VERSION_MINOR * 100 + ZMQ_VERSION_PATCH)\n"
            "typedef int zmq_fd_t;\n"
            "typedef void(zmq_free_fn)(void *data, void *hint);\n"
            "typedef struct zmq_msg_t { unsigned char _[64] __attribute__((aligned(sizeof(void *)))); } zmq_msg_t;\n"
            "#endif\n")
    return HEADER_DIR


def extensions() -> list:
    if os.environ.get("ZIO_PURE_PYTHON"):
        return []
    try:
        from Cython.Build import cythonize
        import zmq
    except ImportError as err:
        print(f"zio: {err.name} is not available; zio installs as pure Python", file=sys.stderr)
        return []
    extension = Extension("zio._fastpath", ["zio/_fastpath.py"],
                          include_dirs=[_zmq_header(zmq), *zmq.get_includes()])
    return cythonize([extension], compiler_directives={"language_level": "3"}, quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
