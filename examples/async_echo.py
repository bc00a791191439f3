"""The tutorial's echo service and its client in one asyncio program, found by name (zio.asyncio).

    python examples/async_echo.py [--interface eth0] [--discovery mdns] hello world

The server node "echo" (``--nick``; origin 42) serves port "service" (SERVER); the client node connects
to it by name and awaits each echo. Both run as tasks of one event loop: neither blocks the
other. Errors are one line on stderr with exit code 1; Ctrl-C exits 130.
"""
import argparse
import asyncio
import sys

import zmq

import zio
import zio.asyncio as zioa


async def serve(node: zioa.Node) -> None:
    """Echo every message back to the client that sent it, until the port goes offline."""
    port = node.port("service")
    async for msg in port:  # ends when the node goes offline
        print("echo", msg.label, flush=True)
        await port.send(msg)  # the reply goes back to the client that asked (routing id)


async def main(args: argparse.Namespace) -> None:
    options = {"interface": args.interface} if args.interface else {}
    async with zioa.Node(args.nick, origin=42, discovery=zio.make_backend(args.discovery, **options)) as server:
        server.port("service", zmq.SERVER).bind()
        await server.online()
        server_task = asyncio.create_task(serve(server))
        async with zioa.Node("asker", discovery=zio.make_backend(args.discovery, **options)) as client:
            ask = client.port("ask", zmq.CLIENT)
            ask.connect(args.nick, "service")  # resolved by name, followed while the node lives
            await client.online()
            for word in args.words:
                await ask.send(zio.Message(form="TEXT", label=word), timeout_ms=args.timeout)
                reply = await ask.recv(args.timeout)
                if reply is None:
                    raise zio.PortTimeout(f"no echo of {word!r} within {args.timeout} ms")
                print(f"echoed {reply.label!r} from origin {reply.origin}", flush=True)
        await server.offline()  # ends the server's `async for`
        await server_task


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interface", help="interface name/address, localhost or subnet ($ZIO_INTERFACE)")
    parser.add_argument("--discovery", help="discovery backend ($ZIO_DISCOVERY, else beacon)")
    parser.add_argument("--nick", default="echo", help="the server node's name")
    parser.add_argument("--timeout", type=int, default=5000, help="ms to wait for each echo")
    parser.add_argument("words", nargs="*", default=["hello"], help="what to send")
    try:
        asyncio.run(main(parser.parse_args()))
    except zio.ZioError as err:
        sys.exit(f"async_echo: {' '.join(str(err).split())}")
    except KeyboardInterrupt:
        print("async_echo: interrupted", file=sys.stderr)
        sys.exit(130)
