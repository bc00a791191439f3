"""A client of the echo service: connects to "echo"/"service" by name, sends, prints the echo.

    python examples/echo_client.py [--interface eth0] [--timeout 10000] hello world

Errors (no echo service found, no reply) are one line on stderr with exit code 1;
Ctrl-C exits 130.
"""
import argparse
import sys

import zmq

import zio


def main(args: argparse.Namespace) -> None:
    backend = zio.make_backend(args.discovery, **({"interface": args.interface} if args.interface else {}))
    with zio.Node("echo-client", discovery=backend) as node:
        port = node.port("ask", zmq.CLIENT)
        port.connect("echo", "service")
        node.online(timeout_ms=args.timeout)  # waits (bounded) for the node "echo"
        for word in args.words:
            port.send(zio.Message(form="TEXT", label=word), timeout_ms=args.timeout)
            reply = port.recv(args.timeout)
            if reply is None:
                sys.exit(f"echo_client: no echo within {args.timeout / 1000:g} s")
            print(f"echoed {reply.label!r} from origin {reply.origin}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interface", help="interface name/address, localhost or subnet ($ZIO_INTERFACE)")
    parser.add_argument("--discovery", help="discovery backend ($ZIO_DISCOVERY, else beacon)")
    parser.add_argument("--timeout", type=int, default=10000, help="ms to wait for the service and each echo")
    parser.add_argument("words", nargs="*", default=["hello"], help="what to send, one message per word")
    try:
        main(parser.parse_args())
    except zio.ZioError as err:  # zio says why in its message: show that, not a traceback
        sys.exit(f"echo_client: {' '.join(str(err).split())}")
    except KeyboardInterrupt:
        print("echo_client: interrupted", file=sys.stderr)
        sys.exit(130)
