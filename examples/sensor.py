"""A sensor: publishes readings on its PUB port "readings" as node "sensor"; its place is
the node header "place" and the "place" of every reading.

    python examples/sensor.py kitchen [--count 100] [--period 0.1]

Every sensor is a node named "sensor" so that a dashboard finds them all by that one
name. Ctrl-C stops it (exit code 130); errors are one line on stderr with exit code 1.
"""
import argparse
import math
import sys
import time

import zmq

import zio


def main(args: argparse.Namespace) -> None:
    backend = zio.make_backend(args.discovery, **({"interface": args.interface} if args.interface else {}))
    with zio.Node("sensor", discovery=backend) as node:
        port = node.port("readings", zmq.PUB)
        port.bind()
        node.online(place=args.place)
        print("sensor", args.place, "publishing at", port.bound[0], flush=True)
        seqno = 0
        while args.count == 0 or seqno < args.count:
            reading = {"place": args.place, "celsius": round(20 + 5 * math.sin(seqno / 10), 2)}
            port.send(zio.Message(level=zio.MessageLevel.info, form="TEMP", label_object=reading, seqno=seqno))
            seqno += 1
            time.sleep(args.period)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("place", help="where the sensor is (advertised as the node header 'place')")
    parser.add_argument("--interface", help="interface name/address, localhost or subnet ($ZIO_INTERFACE)")
    parser.add_argument("--discovery", help="discovery backend ($ZIO_DISCOVERY, else beacon)")
    parser.add_argument("--count", type=int, default=0, help="readings to publish (0: forever)")
    parser.add_argument("--period", type=float, default=0.1, help="seconds between readings")
    try:
        main(parser.parse_args())
    except zio.ZioError as err:
        sys.exit(f"sensor: {' '.join(str(err).split())}")
    except KeyboardInterrupt:
        print("sensor: interrupted", file=sys.stderr)
        sys.exit(130)
