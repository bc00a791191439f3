"""The echo service of the ZIO port tutorial: a SERVER port found by the name "echo"/"service".

    python examples/echo_server.py [--interface eth0] [--count N]

Ctrl-C stops it within a second (exit code 130); errors are one line on stderr with exit
code 1.

Ctrl-C sets a flag that the receive loop checks, rather than raising KeyboardInterrupt
wherever the program happens to be: pyzmq checks for signals in every ZeroMQ call, also in
those a garbage collection makes (an unclosed socket's ``__del__``), where a
KeyboardInterrupt is printed and dropped, and the program would go on. A second Ctrl-C
interrupts at once.
"""
import argparse
import signal
import sys

import zmq

import zio


def main(args: argparse.Namespace, interrupted: list[bool]) -> None:
    backend = zio.make_backend(args.discovery, **({"interface": args.interface} if args.interface else {}))
    with zio.Node("echo", origin=42, discovery=backend) as node:
        port = node.port("service", zmq.SERVER)
        port.bind()
        node.online()
        print("echo service online at", port.bound[0], flush=True)
        echoed = 0
        while (args.count == 0 or echoed < args.count) and not interrupted:
            m = port.recv(1000)  # units of ms
            if not m:
                continue  # timeout: check again
            print("echo", m.label, flush=True)
            port.send(m)  # the reply goes back to the client that asked (routing id)
            echoed += 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interface", help="interface name/address, localhost or subnet ($ZIO_INTERFACE)")
    parser.add_argument("--discovery", help="discovery backend ($ZIO_DISCOVERY, else beacon)")
    parser.add_argument("--count", type=int, default=0, help="messages to echo before exiting (0: forever)")
    interrupted: list[bool] = []

    def on_ctrl_c(signum, frame):
        interrupted.append(True)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one interrupts at once

    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        main(parser.parse_args(), interrupted)
        if interrupted:
            raise KeyboardInterrupt
    except zio.ZioError as err:
        sys.exit(f"echo_server: {' '.join(str(err).split())}")
    except KeyboardInterrupt:
        print("echo_server: interrupted", file=sys.stderr)
        sys.exit(130)
