"""A client of the echo service: connects to "echo"/"service" by name, sends, prints the echo.

    python examples/echo_client.py [--interface eth0] hello world
"""
import argparse
import sys

import zmq

import zio

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--interface", help="interface name/address, localhost or subnet ($ZIO_INTERFACE)")
parser.add_argument("--discovery", help="discovery backend ($ZIO_DISCOVERY, else beacon)")
parser.add_argument("words", nargs="*", default=["hello"], help="what to send, one message per word")
args = parser.parse_args()

backend = zio.make_backend(args.discovery, **({"interface": args.interface} if args.interface else {}))
with zio.Node("echo-client", discovery=backend) as node:
    port = node.port("ask", zmq.CLIENT)
    port.connect("echo", "service")
    node.online(timeout_ms=10000)
    for word in args.words:
        port.send(zio.Message(form="TEXT", label=word), timeout_ms=10000)
        reply = port.recv(5000)
        if reply is None:
            sys.exit("no echo within 5 s")
        print(f"echoed {reply.label!r} from origin {reply.origin}", flush=True)
