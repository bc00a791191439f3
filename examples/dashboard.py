"""A dashboard: subscribes by name to every node called "sensor", however many come and go.

    python examples/dashboard.py [--count 50]
"""
import argparse
import collections

import zmq

import zio

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--interface", help="interface name/address, localhost or subnet ($ZIO_INTERFACE)")
parser.add_argument("--discovery", help="discovery backend ($ZIO_DISCOVERY, else beacon)")
parser.add_argument("--count", type=int, default=0, help="readings to show before exiting (0: forever)")
args = parser.parse_args()

backend = zio.make_backend(args.discovery, **({"interface": args.interface} if args.interface else {}))
with zio.Node("dashboard", discovery=backend) as node:
    port = node.port("in", zmq.SUB)
    port.subscribe("ZIO4TEMP")  # level info, form TEMP: the prefix is a subscription filter
    port.connect("sensor", "readings")  # every sensor, now and later
    node.online(timeout_ms=10000)
    latest = collections.OrderedDict()
    shown = 0
    while args.count == 0 or shown < args.count:
        msg = port.recv(10000)
        if msg is None:
            break
        reading = msg.label_object
        latest[reading["place"]] = reading["celsius"]
        print(" | ".join(f"{place}: {c:5.2f} C" for place, c in latest.items()), flush=True)
        shown += 1
