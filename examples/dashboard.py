"""A dashboard: subscribes by name to every node called "sensor", however many come and go.

    python examples/dashboard.py [--count 50] [--idle 10]

It follows the sensors with its Peer's events: a sensor whose node leaves (or is lost)
is dropped from the display at once, and its late readings are not shown. Ctrl-C stops
it (exit code 130); errors are one line on stderr with exit code 1.
"""
import argparse
import sys
import time

import zmq

import zio


def main(args: argparse.Namespace) -> None:
    backend = zio.make_backend(args.discovery, **({"interface": args.interface} if args.interface else {}))
    with zio.Node("dashboard", discovery=backend) as node:
        port = node.port("in", zmq.SUB)
        port.subscribe("ZIO4TEMP")  # level info, form TEMP: the prefix is a subscription filter
        port.connect("sensor", "readings")  # every sensor, now and later
        node.online(timeout_ms=args.idle * 1000)
        present = {}  # uuid -> place, of the sensor nodes here now
        latest = {}  # place -> last reading in celsius, shown in arrival order

        def show() -> None:
            print(" | ".join(f"{place}: {c:5.2f} C" for place, c in latest.items()) or "(no sensors)", flush=True)

        def follow_sensors() -> None:
            """Apply the Peer's events: who came, who went (and why)."""
            for event in node.peer.drain():
                if event.peer.nick != "sensor":
                    continue
                if event.kind == zio.EXIT:
                    place = present.pop(event.peer.uuid, None)
                    if place is not None and place not in present.values():
                        latest.pop(place, None)
                        print(f"sensor {place} is gone ({event.reason or 'exit'})", flush=True)
                        show()
                else:  # enter or update
                    present[event.peer.uuid] = event.peer.headers.get("place")

        shown = 0
        last = time.monotonic()
        while args.count == 0 or shown < args.count:
            msg = port.recv(200)
            follow_sensors()  # after recv: a reading's sender has been seen entering by now
            if msg is None:
                if time.monotonic() - last > args.idle:
                    break  # nothing for a while
                continue
            last = time.monotonic()
            reading = msg.label_object
            if reading["place"] not in present.values():
                continue  # a late reading of a sensor that has gone
            latest[reading["place"]] = reading["celsius"]
            show()
            shown += 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interface", help="interface name/address, localhost or subnet ($ZIO_INTERFACE)")
    parser.add_argument("--discovery", help="discovery backend ($ZIO_DISCOVERY, else beacon)")
    parser.add_argument("--count", type=int, default=0, help="readings to show before exiting (0: forever)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds without readings before exiting")
    try:
        main(parser.parse_args())
    except zio.ZioError as err:
        sys.exit(f"dashboard: {' '.join(str(err).split())}")
    except KeyboardInterrupt:
        print("dashboard: interrupted", file=sys.stderr)
        sys.exit(130)
