"""A zio node in its own process, for tests: ``python node_proc.py ROLE NICK PORT [ORIGIN]``.

Roles: ``pull`` (prints each received label), ``pub`` (publishes a counter every 5 ms),
``echo`` (a SERVER that echoes and prints the time from online() to its first message),
``once`` (a SERVER that answers one message and exits at once).
Each prints ``online <address>`` once it is online, then one line per event, flushed.
With ``ZIO_TESTS_GATE=1`` in its environment it imports everything, then waits for a line
on stdin before it makes its node (a test starts it ahead and lets it go online later).
"""
import os
import sys
import time

import zmq

import zio


def main(role: str, nick: str, port_name: str, origin: int) -> None:
    if os.environ.get("ZIO_TESTS_GATE") == "1":
        sys.stdin.readline()
    kind = {"pull": zmq.PULL, "pub": zmq.PUB, "echo": zmq.SERVER, "once": zmq.SERVER}[role]
    with zio.Node(nick, origin=origin) as node:
        port = node.port(port_name, kind)
        port.bind()
        node.online()
        online_at = time.monotonic()
        print("online", port.bound[0], flush=True)
        count = 0
        while True:
            if role == "pub":
                port.send(zio.Message(form="DATA", seqno=count))
                count += 1
                time.sleep(0.005)
                continue
            msg = port.recv()
            if role == "pull":
                print("got", msg.label, flush=True)
            else:
                if count == 0:
                    print(f"first {1000 * (time.monotonic() - online_at):.1f} ms", flush=True)
                count += 1
                port.send(msg)
                if role == "once":
                    return  # leave right after replying: the reply must still arrive


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 0)
