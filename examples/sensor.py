"""A sensor: publishes readings on its PUB port "readings" as node "sensor-<name>".

    python examples/sensor.py kitchen [--count 100] [--period 0.1]
"""
import argparse
import math
import time

import zmq

import zio

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("name", help="where the sensor is")
parser.add_argument("--interface", help="interface name/address, localhost or subnet ($ZIO_INTERFACE)")
parser.add_argument("--discovery", help="discovery backend ($ZIO_DISCOVERY, else beacon)")
parser.add_argument("--count", type=int, default=0, help="readings to publish (0: forever)")
parser.add_argument("--period", type=float, default=0.1, help="seconds between readings")
args = parser.parse_args()

backend = zio.make_backend(args.discovery, **({"interface": args.interface} if args.interface else {}))
with zio.Node("sensor", discovery=backend) as node:
    port = node.port("readings", zmq.PUB)
    port.bind()
    node.online(place=args.name)
    print("sensor", args.name, "publishing at", port.bound[0], flush=True)
    seqno = 0
    while args.count == 0 or seqno < args.count:
        reading = {"place": args.name, "celsius": round(20 + 5 * math.sin(seqno / 10), 2)}
        port.send(zio.Message(level=zio.MessageLevel.info, form="TEMP", label_object=reading, seqno=seqno))
        seqno += 1
        time.sleep(args.period)
