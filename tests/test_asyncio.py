"""zio.asyncio: live resolution while a coroutine awaits, cancellation without loss, async
iteration that ends with the port, peer waits and events, on both built-in backends."""
from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest
import zmq

import zio
import zio.asyncio as zioa

pytestmark = [pytest.mark.needs_netns, pytest.mark.usefixtures("discovery")]


def run(coro, timeout: float = 30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def in_thread(fn, *args):
    """Run blocking zio calls (a sync node coming or going) without blocking the loop."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def sync_node(nick: str, name: str, kind: int, origin: int = 0) -> tuple[zio.Node, zio.Port]:
    node = zio.Node(nick, origin=origin)
    port = node.port(name, kind)
    port.bind()
    node.online(timeout_ms=0)
    return node, port


def test_a_pending_recv_follows_a_node_that_appears_and_one_that_moves():
    async def main():
        async with zioa.Node("sink") as sink:
            pull = sink.port("in", zmq.PULL)
            pull.connect("source", "out")
            await sink.online(timeout_ms=0)  # nobody named "source" yet
            assert pull.connected == []
            pending = asyncio.create_task(pull.recv())
            await asyncio.sleep(0.05)
            node, push = await in_thread(sync_node, "source", "out", zmq.PUSH, 7)
            first_address = push.bound[0]
            await in_thread(push.send, zio.Message(form="TEXT", label="one"))
            msg = await asyncio.wait_for(pending, 10)  # resolved in the loop while recv awaited
            assert (msg.label, msg.origin) == ("one", 7)
            assert pull.connected == [first_address]
            await in_thread(node.close)
            # the source restarts elsewhere (a new ephemeral port): the pending recv follows it
            pending = asyncio.create_task(pull.recv())
            node, push = await in_thread(sync_node, "source", "out", zmq.PUSH, 8)
            await in_thread(push.send, zio.Message(form="TEXT", label="two"))
            msg = await asyncio.wait_for(pending, 10)
            assert (msg.label, msg.origin) == ("two", 8)
            assert push.bound[0] != first_address
            # the departed address is let go once its closed connection is seen (or its grace
            # ends), which on a loaded machine may come after the new source's first message
            deadline = time.monotonic() + 5.0
            while pull.connected != [push.bound[0]] and time.monotonic() < deadline:
                assert await pull.recv(20) is None  # nothing else was sent
            assert pull.connected == [push.bound[0]]
            assert pull.departures == 1
            await in_thread(node.close)

    run(main())


def test_a_blocked_send_goes_out_when_a_worker_appears():
    async def main():
        async with zioa.Node("boss") as boss:
            push = boss.port("jobs", zmq.PUSH)
            push.connect("worker", "jobs")
            await boss.online(timeout_ms=0)
            sending = asyncio.create_task(push.send(zio.Message(form="TEXT", label="job")))
            await asyncio.sleep(0.1)
            assert not sending.done()  # no worker: the send awaits, the loop runs on
            node, pull = await in_thread(sync_node, "worker", "jobs", zmq.PULL)
            await asyncio.wait_for(sending, 10)
            msg = await in_thread(pull.recv, 5000)
            assert msg is not None and msg.label == "job"
            await in_thread(node.close)

    run(main())


def test_send_times_out_with_the_reason_and_sends_nothing():
    async def main():
        async with zioa.Node("boss") as boss:
            push = boss.port("jobs", zmq.PUSH)
            push.connect("nobody", "jobs")
            await boss.online(timeout_ms=0)
            started = time.monotonic()
            with pytest.raises(zio.PortTimeout, match="no node named 'nobody'"):
                await push.send(zio.Message(form="TEXT"), timeout_ms=200)
            assert 0.15 < time.monotonic() - started < 5

    run(main())


def test_cancelled_recvs_lose_no_message():
    """Receives cancelled at random moments while messages stream in: every message is
    received exactly once, by a later recv()."""
    total = 300

    async def main():
        async with zioa.Node("sink") as sink:
            pull = sink.port("in", zmq.PULL)
            pull.bind()
            await sink.online()
            push = zio.Port("out", zmq.PUSH)
            push.connect(pull.bound[0])
            push.online()

            def produce():
                for i in range(total):
                    push.send(zio.Message(form="SEQ ", seqno=i))
                    if i % 10 == 0:
                        time.sleep(0.002)

            producer = threading.Thread(target=produce)
            producer.start()
            seen: list[int] = []
            cancelled = 0
            rng = random.Random(14)
            while len(seen) < total:
                task = asyncio.create_task(pull.recv(5000))
                done, _ = await asyncio.wait([task], timeout=rng.choice([0, 0.0005, 0.001, 0.003]))
                if not done:
                    task.cancel()
                try:
                    msg = await task
                except asyncio.CancelledError:
                    cancelled += 1
                    continue
                assert msg is not None, f"lost messages: got {len(seen)} of {total}"
                seen.append(msg.seqno)
            producer.join()
            push.close()
            assert sorted(seen) == list(range(total))  # none lost, none twice
            assert cancelled > 10  # the cancellations did happen
            assert await pull.recv(50) is None

    run(main())


def test_a_cancelled_send_sends_nothing_and_the_port_stays_usable():
    async def main():
        async with zioa.Node("boss") as boss:
            push = boss.port("jobs", zmq.PUSH)
            push.connect("worker", "jobs")
            await boss.online(timeout_ms=0)
            sending = asyncio.create_task(push.send(zio.Message(form="TEXT", label="cancelled")))
            await asyncio.sleep(0.05)
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            node, pull = await in_thread(sync_node, "worker", "jobs", zmq.PULL)
            await push.send(zio.Message(form="TEXT", label="kept"), timeout_ms=5000)
            labels = []
            while (msg := await in_thread(pull.recv, 300)) is not None:
                labels.append(msg.label)
            assert labels == ["kept"]
            await in_thread(node.close)

    run(main())


def test_async_for_ends_when_the_node_goes_offline():
    async def main():
        server = zioa.Node("server", origin=3)
        pull = server.port("in", zmq.PULL)
        pull.bind()
        await server.online()

        async def consume() -> list[str]:
            return [msg.label async for msg in pull]  # ends at offline()

        consumer = asyncio.create_task(consume())
        async with zioa.Node("client") as client:
            push = client.port("out", zmq.PUSH)
            push.connect("server", "in")
            await client.online()
            for i in range(5):
                await push.send(zio.Message(form="TEXT", label=str(i)))
            await asyncio.sleep(0.3)  # let them arrive and be consumed
        await server.offline()
        assert await asyncio.wait_for(consumer, 5) == ["0", "1", "2", "3", "4"]
        assert [m async for m in pull] == []  # offline: ends at once
        await server.close()

    run(main())


def test_waitfor_waituntil_and_events():
    async def main():
        async with zioa.Peer("watcher") as watcher:
            assert await watcher.waitfor("thing", 100) == []
            assert await watcher.poll(50) is None
            thing = await in_thread(lambda: zio.Peer("thing", role="test"))
            uuids = await watcher.waitfor("thing", 10000)
            assert uuids == [thing.uuid]
            info = await watcher.waituntil(thing.uuid, 1000)
            assert info is not None and info.nick == "thing" and info.headers["role"] == "test"
            kinds = []
            async for event in watcher.events(timeout_ms=10000):
                if event.peer.uuid != thing.uuid:
                    continue
                kinds.append(event.kind)
                if event.kind == "enter":
                    await in_thread(thing.stop)  # seen leaving by the same iteration
                elif event.kind == "exit":
                    break
            assert kinds[0] == "enter" and kinds[-1] == "exit"
            assert await watcher.waituntil(thing.uuid, 50) is None  # gone
        assert watcher.stopped
        assert [e async for e in watcher.events()] == []  # a stopped peer's events end

    run(main())


def test_online_awaits_absent_nodes_without_blocking_the_loop():
    """While online() awaits (bounded) a node that never comes, other tasks of the loop run."""

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async with zioa.Node("a") as a:
            a.port("out", zmq.PUSH).connect("absent", "in")
            tick_task = asyncio.create_task(ticker())
            started = time.monotonic()
            await a.online(timeout_ms=400)
            waited = time.monotonic() - started
            tick_task.cancel()
            assert a.is_online and a.port("out").is_online
        assert waited >= 0.35
        assert ticks >= 10  # about 40 when nothing else loads the machine

    run(main())
