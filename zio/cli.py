"""The ``zio`` command: look at the network, talk to ports by name, run a demo.

Every subcommand takes ``--discovery`` and ``--interface``. Errors are one line on stderr
with exit code 1; bad usage exits 2; Ctrl-C exits 130 (with one line too).
"""
from __future__ import annotations

import argparse
import json
import logging
import contextlib
import os
import signal
import sys
import threading
import time
from typing import Any, Iterator, Sequence

import zmq

from . import config, plugins
from .security import KEY_HEADER, write_certificates
from .discovery import PeerInfo
from .errors import ConfigurationError, ZioError
from .message import Message
from .node import Node
from .peer import Peer
from .port import Port
from .sockets import can_talk

log = logging.getLogger(__name__)

#: The socket type that talks to a port of the given type.
COMPLEMENT = {
    "PULL": "PUSH", "PUSH": "PULL", "PUB": "SUB", "SUB": "PUB", "XPUB": "SUB", "XSUB": "PUB",
    "SERVER": "CLIENT", "CLIENT": "SERVER", "ROUTER": "DEALER", "DEALER": "ROUTER",
    "REP": "REQ", "REQ": "REP", "PAIR": "PAIR",
}
#: Socket types after whose send a reply is awaited.
ASKING = {"CLIENT", "REQ", "DEALER"}
#: Socket types that cannot send messages (``zio send``), and those that cannot receive (``zio recv``).
CANNOT_SEND = {"SUB", "PULL", "DISH", "GATHER"}
CANNOT_RECV = {"PUB", "PUSH", "RADIO", "SCATTER"}
#: How long ``zio demo`` lets its two nodes find each other before it says they did not (ms).
DEMO_FIND_MS = 3000


class CommandError(ZioError):
    """A command could not do what was asked (shown as one line, exit code 1)."""


def _backend(args: argparse.Namespace) -> Any:
    """The backend the command line asks for (``--interface`` for backends that take it)."""
    options = {"interface": args.interface} if args.interface else {}
    return plugins.make_backend(args.discovery, **options)


def _socket_type(name: str) -> int:
    try:
        return int(getattr(zmq, name.upper()))
    except AttributeError:
        raise ConfigurationError(f"unknown socket type {name!r}") from None


def _describe_message(msg: Message) -> str:
    """One line for a message; level 0 ("undefined": no level given) is left out."""
    payload = ", ".join(repr(bytes(p)[:60]) for p in msg.payload)
    level = f"{msg.level.name} " if msg.level else ""
    return (f"{level}{msg.form!r} label={msg.label!r} origin={msg.origin} "
            f"granule={msg.granule} seqno={msg.seqno} payload=[{payload}]")


def _print_peer(info: PeerInfo, note: str = "") -> None:
    print(f"{info.nick}  {info.uuid}{note}")
    for key, value in sorted(info.headers.items()):
        print(f"    {key} = {value}")


def _advertised_ports(info: PeerInfo) -> list[str]:
    return sorted({k.split(".")[2] for k in info.headers if k.startswith("zio.port.") and k.endswith(".socket")})


def _target_socket(peer: Peer, node: str, port: str, timeout_ms: float) -> str:
    """The socket type the named node advertises for its port (CommandError if none does)."""
    uuids = peer.waitfor(node, timeout_ms)
    if not uuids:
        raise CommandError(f"no node named {node!r} seen within {timeout_ms / 1000:g} s")
    others: set[str] = set()
    for uuid in uuids:
        info = peer.peers.get(uuid)
        kind = info.headers.get(f"zio.port.{port}.socket") if info else None
        if kind:
            return kind
        if info:
            others.update(_advertised_ports(info))
    ports = ", ".join(sorted(others)) or "none"
    raise CommandError(f"node {node!r} has no port {port!r} (its ports: {ports})")


# -- subcommands ----------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """Two nodes on loopback find each other by name and exchange a message."""
    if args.interface is None:
        # loopback through the environment, not interface=: a plugin need not take options
        os.environ["ZIO_INTERFACE"] = "localhost"
    name = args.discovery or config.discovery_name()
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
        port_log = logging.getLogger("zio.port")
        saved_level = port_log.level
        if not args.verbose:
            port_log.setLevel(logging.ERROR)  # a greeter not found: the demo says so itself, in one line
        try:
            visitor.online(timeout_ms=DEMO_FIND_MS)
        finally:
            port_log.setLevel(saved_level)
        if visitor.peer is None or not visitor.peer.matchnick("greeter"):
            raise CommandError(_lonely_demo(name, visitor, greeter))
        print(f"visitor resolved greeter/hello to {client.connected} "
              f"in {1000 * (time.monotonic() - t0):.0f} ms")
        client.send(Message(form="TEXT", label="hello, greeter"), timeout_ms=5000)
        question = server.recv(5000)
        if question is None:
            raise CommandError("the greeter heard nothing")
        print(f"greeter got {question.label!r} from origin {question.origin}")
        server.send(Message(form="TEXT", label="hello, visitor", routing_id=question.routing_id))
        answer = client.recv(5000)
        if answer is None:
            raise CommandError("the visitor heard nothing back")
        print(f"visitor got {answer.label!r} from origin {answer.origin}")
    print(f"demo done in {1000 * (time.monotonic() - t0):.0f} ms")
    return 0


def _lonely_demo(name: str, visitor: Node, greeter: Node) -> str:
    """Why the demo's nodes did not meet, as far as can be told."""
    seen = visitor.peer.peers.values() if visitor.peer else []
    nicks = sorted({info.nick for info in seen})
    greeter_saw = greeter.peer is not None and bool(greeter.peer.matchnick("visitor"))
    if nicks:
        what = f"the visitor saw only {', '.join(repr(n) for n in nicks)}"
    else:
        what = "the visitor saw no peer at all"
    if not greeter_saw:
        what += " and the greeter did not see the visitor"
    backend = visitor.peer.backend.describe() if visitor.peer else {}
    return (f"the demo's nodes did not find each other with discovery backend {name!r} within "
            f"{DEMO_FIND_MS / 1000:g} s: {what} (backend: {backend}); does it advertise the local nodes?")


def cmd_plugins(args: argparse.Namespace) -> int:
    """List the discovery backends and the package each comes from."""
    for name, info in sorted(plugins.available_backends().items()):
        print(f"{name:12s} {info.package}")
    return 0


def _trust_note(info: PeerInfo, state: str) -> str:
    key = info.headers.get(KEY_HEADER)
    return f"  key={key or '-'}  {state}"


def cmd_peers(args: argparse.Namespace) -> int:
    """List the peers on the network (with --watch: follow them as they come and go), with
    each peer's CURVE key and whether it is trusted ($ZIO_CERT and $ZIO_TRUSTED)."""
    with Peer(args.nick, discovery=_backend(args)) as peer:
        print(f"# listening with {peer.backend.describe()}", file=sys.stderr)
        if not args.watch:
            time.sleep(args.wait)
            status = peer.trust_status()
            if status is None:
                status = [(info, "trust not checked (security off)") for info in peer.peers.values()]
            for info, state in sorted(status, key=lambda s: (s[0].nick, str(s[0].uuid))):
                _print_peer(info, _trust_note(info, state))
            return 0
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while deadline is None or time.monotonic() < deadline:
            remaining = 500 if deadline is None else max(0, min(500, 1000 * (deadline - time.monotonic())))
            event = peer.poll(remaining)
            if event is None:
                continue
            print(f"{time.strftime('%H:%M:%S')} {event.kind.upper()}", end=" ")
            _print_peer(event.peer, f"  ({event.reason})" if event.reason else "")
            sys.stdout.flush()
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    """Write a CURVE certificate pair NAME.key (public: copy it into the trusted directories
    of the nodes that may talk to this one) and NAME.key_secret (this node's $ZIO_CERT)."""
    public, secret = write_certificates(args.dir, args.name, nick=args.nick)
    print(f"public certificate: {public}")
    print(f"secret certificate: {secret}")
    return 0


def _talker(args: argparse.Namespace, node: Node, direction: str) -> tuple[Port, str]:
    """A port of the online ``node``, connected by name to NODE/PORT once checked.

    Before anything is sent: NODE must be seen and advertise PORT, and our socket type
    (``--socket``, else the complement of the advertised one) must be able to talk to it.
    """
    if node.peer is None:
        raise CommandError(f"node {node.nick!r} is not online")
    target = _target_socket(node.peer, args.node, args.port, args.timeout)
    where = f"{args.node}/{args.port}"
    kind = args.socket.upper() if args.socket else COMPLEMENT.get(target)
    if kind is None:
        raise CommandError(f"cannot {direction} {where}, a {target} port; give --socket")
    _socket_type(kind)
    hint = f", use {COMPLEMENT[target]}" if target in COMPLEMENT else ""
    if direction == "send to" and kind in CANNOT_SEND:
        raise CommandError(f"a {kind} socket cannot send; {where} is a {target} socket{hint}")
    if direction == "receive from" and kind in CANNOT_RECV:
        raise CommandError(f"a {kind} socket cannot receive; {where} is a {target} socket{hint}")
    if not can_talk(kind, target):
        raise CommandError(f"a {kind} socket cannot talk to {where}, a {target} socket{hint}")
    port = node.port("cli", _socket_type(kind))
    port.connect(args.node, args.port)
    if kind == "SUB":
        port.subscribe(args.subscribe)
    port.online(node.peer, args.timeout)
    return port, kind


def cmd_send(args: argparse.Namespace) -> int:
    """Send one message to NODE's PORT (and print the reply of a SERVER/ROUTER/REP)."""
    label = args.label
    if args.json is not None:
        try:
            label = json.dumps(json.loads(args.json))
        except json.JSONDecodeError as err:
            raise ConfigurationError(f"--json is not valid JSON: {err}") from None
    msg = Message(level=args.level, form=args.form, label=label, payload=args.payload)
    with Node(args.nick, origin=args.origin, discovery=_backend(args)) as node:
        node.online(timeout_ms=0)
        port, kind = _talker(args, node, "send to")
        port.send(msg, timeout_ms=args.timeout)
        print(f"sent to {args.node}/{args.port} via {port.connected}", file=sys.stderr)
        if kind in ASKING:
            reply = port.recv(args.timeout)
            if reply is None:
                raise CommandError(f"no reply within {args.timeout / 1000:g} s")
            print(_describe_message(reply))
        elif kind == "PUB":
            time.sleep(0.2)  # give subscribers' connections a moment before the socket closes
    return 0


class _CtrlC:
    """Ctrl-C for the receive loops of ``recv`` and ``echo``: inside :meth:`deferred` it sets
    a flag that the loop checks (:meth:`check`) instead of raising KeyboardInterrupt where it
    lands. pyzmq checks for signals in every ZeroMQ call, also when it frees a received frame,
    and a KeyboardInterrupt raised there is printed and lost: the loop would go on. Outside
    those loops, and for a second Ctrl-C, it interrupts at once, as Python's own handler."""

    def __init__(self) -> None:
        self.asked = False
        self.defer = False

    def __call__(self, signum: int, frame: Any) -> None:
        if self.asked or not self.defer:
            raise KeyboardInterrupt
        self.asked = True

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.check()
        self.defer = True
        try:
            yield
        finally:
            self.defer = False

    def check(self) -> None:
        if self.asked:
            raise KeyboardInterrupt


def cmd_recv(args: argparse.Namespace) -> int:
    """Receive and print messages from NODE's PORT (--count of them, 0: forever)."""
    with Node(args.nick, discovery=_backend(args)) as node:
        node.online(timeout_ms=0)
        port, _ = _talker(args, node, "receive from")
        received = 0
        ctrl_c: _CtrlC = args.ctrl_c  # installed by main()
        with ctrl_c.deferred():
            while args.count == 0 or received < args.count:
                deadline = None if args.timeout < 0 else time.monotonic() + args.timeout / 1000.0  # < 0: forever
                while True:  # in slices of at most a second: a deferred Ctrl-C is seen within one
                    left = 1000.0 if deadline is None else max(0.0, (deadline - time.monotonic()) * 1000.0)
                    msg = port.recv(min(1000.0, left))
                    ctrl_c.check()
                    if msg is not None or (deadline is not None and time.monotonic() >= deadline):
                        break
                if msg is None:
                    raise CommandError(f"no message within {args.timeout / 1000:g} s")
                print(_describe_message(msg), flush=True)
                received += 1
    return 0


def cmd_echo(args: argparse.Namespace) -> int:
    """Run the echo service of the ZIO port tutorial: every message received is sent back."""
    with Node(args.nick, discovery=_backend(args)) as node:
        port = node.port(args.port, _socket_type(args.socket))
        port.bind()
        node.online()
        print(f"echo service {args.nick}/{args.port} ({args.socket}) at {', '.join(port.bound)}", flush=True)
        echoed = 0
        ctrl_c: _CtrlC = args.ctrl_c  # installed by main()
        with ctrl_c.deferred():
            while args.count == 0 or echoed < args.count:
                msg = port.recv(1000)  # a deferred Ctrl-C is seen within a second
                ctrl_c.check()
                if msg is None:
                    continue
                print(_describe_message(msg), flush=True)
                port.send(msg)
                echoed += 1
    return 0


# -- the parser -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``zio`` command."""
    parser = argparse.ArgumentParser(prog="zio", description="Talk over ZeroMQ by name.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Any) -> argparse.ArgumentParser:
        doc = func.__doc__.replace("``", "")  # plain text in --help, whatever the docstring says
        sub = commands.add_parser(name, help=doc, description=doc)
        sub.set_defaults(func=func)
        sub.add_argument("--discovery", help="backend name (default: $ZIO_DISCOVERY, else beacon)")
        sub.add_argument("--interface", help="interface name or address, 'localhost' or 'subnet' "
                                             "(default: $ZIO_INTERFACE, else the first LAN interface)")
        return sub

    add("demo", cmd_demo)
    add("plugins", cmd_plugins)
    peers = add("peers", cmd_peers)
    peers.add_argument("--watch", action="store_true", help="follow peers as they come and go")
    peers.add_argument("--wait", type=float, default=2.0, help="seconds to listen before listing (default 2)")
    peers.add_argument("--duration", type=float, help="with --watch: stop after this many seconds")
    peers.add_argument("--nick", default="zio-peers", help="our own nickname on the network")
    for name, func in (("send", cmd_send), ("recv", cmd_recv)):
        sub = add(name, func)
        sub.add_argument("node", help="nickname of the node to talk to")
        sub.add_argument("port", help="name of its port")
        sub.add_argument("--socket", help="our socket type (default: the complement of the target's)")
        sub.add_argument("--timeout", type=float, default=5000, help="ms to wait for the node and messages")
        sub.add_argument("--nick", default=f"zio-{name}", help="our own nickname")
        sub.add_argument("--subscribe", default="", help="SUB prefix filter (default: everything)")
    send = commands.choices["send"]
    send.add_argument("payload", nargs="*", default=[], help="payload parts (UTF-8 text)")
    send.add_argument("--form", default="TEXT", help="4-character message form (default TEXT)")
    label = send.add_mutually_exclusive_group()
    label.add_argument("--label", default="", help="message label (text)")
    label.add_argument("--json", help="message label given as JSON (validated); not with --label")
    send.add_argument("--level", type=int, default=0, help="message level 0-8")
    send.add_argument("--origin", type=int, default=0, help="origin number stamped on the message")
    commands.choices["recv"].add_argument("--count", type=int, default=1, help="messages to print (0: forever)")
    keygen = commands.add_parser("keygen", help=cmd_keygen.__doc__, description=cmd_keygen.__doc__)
    keygen.set_defaults(func=cmd_keygen)
    keygen.add_argument("name", help="file name of the pair (NAME.key, NAME.key_secret)")
    keygen.add_argument("--dir", default=".", help="directory to write them in (default: .)")
    keygen.add_argument("--nick", help="pin the key to this nickname (certificate metadata 'nick')")
    echo = add("echo", cmd_echo)
    echo.add_argument("--nick", default="echo", help="node nickname (default echo)")
    echo.add_argument("--port", default="service", help="port name (default service)")
    echo.add_argument("--socket", default="SERVER", help="socket type (default SERVER)")
    echo.add_argument("--count", type=int, default=0, help="messages to echo before exiting (0: forever)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``zio`` command and return its exit code."""
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    args.ctrl_c = _CtrlC()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, args.ctrl_c)
    try:
        return args.func(args)
    except ZioError as err:
        print(f"zio: error: {one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("zio: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (a message that spans lines is joined)."""
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
