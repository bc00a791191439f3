"""The ``zio`` command: a demo, the available backends, and the peers on the network."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Sequence

import zmq

from . import plugins
from .errors import ZioError
from .message import Message
from .node import Node
from .peer import Peer

log = logging.getLogger(__name__)


def _backend(args: argparse.Namespace):
    """Build the backend the command line asks for (``--interface`` applies to backends that take it)."""
    options = {"interface": args.interface} if args.interface else {}
    return plugins.make_backend(args.discovery, **options)


def cmd_demo(args: argparse.Namespace) -> int:
    """Two nodes on loopback find each other by name and exchange a message."""
    if args.interface is None:
        args.interface = "localhost"
    t0 = time.monotonic()
    with Node("greeter", origin=1, discovery=_backend(args)) as greeter, Node(
        "visitor", origin=2, discovery=_backend(args)
    ) as visitor:
        server = greeter.port("hello", zmq.SERVER)
        server.bind()
        greeter.online()
        print(f"greeter online, port 'hello' at {server.bound[0]}")
        client = visitor.port("ask", zmq.CLIENT)
        client.connect("greeter", "hello")
        visitor.online()
        print(f"visitor resolved greeter/hello to {client.connected} "
              f"in {1000 * (time.monotonic() - t0):.0f} ms")
        client.send(Message(form="TEXT", label="hello, greeter"))
        question = server.recv(5000)
        if question is None:
            print("error: the greeter heard nothing", file=sys.stderr)
            return 1
        print(f"greeter got {question.label!r} from origin {question.origin}")
        server.send(Message(form="TEXT", label="hello, visitor", routing_id=question.routing_id))
        answer = client.recv(5000)
        if answer is None:
            print("error: the visitor heard nothing back", file=sys.stderr)
            return 1
        print(f"visitor got {answer.label!r} from origin {answer.origin}")
    print(f"demo done in {1000 * (time.monotonic() - t0):.0f} ms")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    """List the discovery backends the installed plugins offer."""
    for name, info in sorted(plugins.available_backends().items()):
        print(f"{name:12s} {info.package}")
    return 0


def cmd_peers(args: argparse.Namespace) -> int:
    """Listen for ``--wait`` seconds and list the peers seen, with their headers."""
    with Peer("zio-peers", discovery=_backend(args)) as peer:
        time.sleep(args.wait)
        for info in sorted(peer.peers.values(), key=lambda i: i.nick):
            print(f"{info.nick}  {info.uuid}")
            for key, value in sorted(info.headers.items()):
                print(f"    {key} = {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``zio`` command."""
    parser = argparse.ArgumentParser(prog="zio", description="Talk over ZeroMQ by name.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, func in (("demo", cmd_demo), ("plugins", cmd_plugins), ("peers", cmd_peers)):
        sub = commands.add_parser(name, help=func.__doc__)
        sub.set_defaults(func=func)
        sub.add_argument("--discovery", default=None, help="backend name (default $ZIO_DISCOVERY or beacon)")
        sub.add_argument("--interface", default=None, help="interface name, address, localhost or subnet")
        if name == "peers":
            sub.add_argument("--wait", type=float, default=2.0, help="seconds to listen (default 2)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``zio`` command; errors are one line on stderr and exit code 1."""
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ZioError as err:
        print(f"zio: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
