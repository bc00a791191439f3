"""A chat room on the LAN: every participant is a node "chat" that publishes what it says
and subscribes to every other "chat" node, found by name.

    python examples/chat.py alice            # then type lines; Ctrl-D to leave
    python examples/chat.py bob --say "hi" --listen 3

Ctrl-C leaves too (exit code 130); errors are one line on stderr with exit code 1.
"""
import argparse
import select
import sys
import time

import zmq

import zio


def main(args: argparse.Namespace) -> None:
    backend = zio.make_backend(args.discovery, **({"interface": args.interface} if args.interface else {}))
    with zio.Node("chat", discovery=backend) as node:
        mouth = node.port("say", zmq.PUB)
        mouth.bind()
        ears = node.port("hear", zmq.SUB)
        ears.subscribe()
        ears.connect("chat", "say")  # everybody in the room (our own words are skipped below)
        node.online(timeout_ms=0, user=args.user)

        def hear(timeout_ms: int) -> None:
            msg = ears.recv(timeout_ms)
            while msg is not None:
                if msg.label != args.user:
                    print(f"<{msg.label}> {bytes(msg.payload[0]).decode()}", flush=True)
                msg = ears.recv(0)

        def say(text: str) -> None:
            mouth.send(zio.Message(form="CHAT", label=args.user, payload=[text]))

        if args.wait_for:
            deadline = time.monotonic() + 20
            while len(node.peer.matchnick("chat")) < args.wait_for and time.monotonic() < deadline:
                hear(50)  # recv() also connects to participants as they appear
            hear(300)  # let our subscriptions reach their publishers (PUB/SUB slow joiner)

        if args.say:
            for text in args.say:
                say(text)
            end = time.monotonic() + args.listen
            while time.monotonic() < end:
                hear(100)
        else:
            print(f"you are {args.user}; type to talk, Ctrl-D to leave", flush=True)
            while True:
                hear(0)
                readable, _, _ = select.select([sys.stdin], [], [], 0.1)
                if readable:
                    line = sys.stdin.readline()
                    if not line:
                        break
                    say(line.rstrip("\n"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("user", help="your name in the room")
    parser.add_argument("--interface", help="interface name/address, localhost or subnet ($ZIO_INTERFACE)")
    parser.add_argument("--discovery", help="discovery backend ($ZIO_DISCOVERY, else beacon)")
    parser.add_argument("--say", action="append", default=[], help="say this instead of reading stdin")
    parser.add_argument("--listen", type=float, default=2.0, help="with --say: seconds to listen afterwards")
    parser.add_argument("--wait-for", type=int, default=0, help="wait for this many other participants first")
    try:
        main(parser.parse_args())
    except zio.ZioError as err:
        sys.exit(f"chat: {' '.join(str(err).split())}")
    except KeyboardInterrupt:
        print("chat: interrupted", file=sys.stderr)
        sys.exit(130)
