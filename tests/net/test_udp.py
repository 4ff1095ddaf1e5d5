"""UdpEndpoint on real sockets: batched receive, oversize drop, non-blocking send, close."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from rocd.net.roc import UdpEndpoint, resolve_udp


async def test_receive_drains_everything_queued_in_one_call() -> None:
    with trio.fail_after(5):
        rx = await UdpEndpoint.bind(("127.0.0.1", 0))
        tx = await UdpEndpoint.bind(("127.0.0.1", 0))
        try:
            for i in range(50):
                assert tx.send(bytes([i]) * 100, rx.local)
            await trio.sleep(0.05)
            batch = await rx.receive()
            assert [data[0] for data, _ in batch] == list(range(50))
            assert {src for _, src in batch} == {tx.local}
            assert rx.stats.received == 50
            assert tx.stats.sent == 50
        finally:
            rx.close()
            tx.close()


async def test_oversize_datagrams_are_dropped_and_counted() -> None:
    with trio.fail_after(5):
        rx = await UdpEndpoint.bind(("127.0.0.1", 0), max_datagram=2048)
        tx = await UdpEndpoint.bind(("127.0.0.1", 0))
        try:
            tx.send(b"x" * 2049, rx.local)
            tx.send(b"y" * 2048, rx.local)
            got: list[bytes] = []
            while not got:
                got = [d for d, _ in await rx.receive()]
            assert got == [b"y" * 2048]
            assert rx.stats.oversize == 1
        finally:
            rx.close()
            tx.close()


async def test_sending_to_a_closed_port_is_counted_not_raised() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()
    with trio.fail_after(5):
        tx = await UdpEndpoint.bind(("127.0.0.1", 0))
        try:
            for _ in range(5):
                tx.send(b"hello", dead)  # nobody listens: never an exception
                await trio.sleep(0.01)
            assert tx.stats.sent + tx.stats.send_errors == 5
        finally:
            tx.close()


async def test_close_wakes_a_waiting_receiver() -> None:
    with trio.fail_after(5):
        rx = await UdpEndpoint.bind(("127.0.0.1", 0))
        async with trio.open_nursery() as nursery:
            done = trio.Event()

            async def wait() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await rx.receive()
                done.set()

            nursery.start_soon(wait)
            await trio.testing.wait_all_tasks_blocked()
            rx.close()
            await done.wait()


async def test_names_resolve_and_bad_names_are_oserrors() -> None:
    family, (_host, port) = await resolve_udp(("localhost", 5000))
    assert family in (socket.AF_INET, socket.AF_INET6)
    assert port == 5000
    with pytest.raises(OSError, match="cannot resolve"):
        await resolve_udp(("no-such-host.invalid", 5000))


async def test_multicast_group_bind_and_join() -> None:
    with trio.fail_after(5):
        rx = await UdpEndpoint.bind(("239.255.7.7", 0), multicast_iface="0.0.0.0")
        try:
            assert rx.local[0] == "239.255.7.7"
            assert rx.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        finally:
            rx.close()


async def test_send_many_keeps_every_datagram_and_its_order() -> None:
    # Runs of equal-sized datagrams to one address leave in one system call (UDP
    # segmentation offload where the kernel has it) and may arrive in one read (GRO on
    # `a`, not on `b`); what the drains hand over must not show it.
    with trio.fail_after(5):
        a = await UdpEndpoint.bind(("127.0.0.1", 0), timestamps=True, gro=True)
        b = await UdpEndpoint.bind(("127.0.0.1", 0), timestamps=True)
        tx = await UdpEndpoint.bind(("127.0.0.1", 0), gso=True)
        try:
            plan = [(bytes([i]) * 902, a.local) for i in range(12)]  # a long run
            plan += [(b"short", a.local), (b"x" * 902, b.local), (b"y" * 902, b.local)]
            plan += [(bytes([100 + i]) * 40, a.local) for i in range(3)]
            assert tx.send_many(plan) == len(plan)
            assert tx.stats.sent == len(plan)
            await trio.sleep(0.05)
            got_a = [d for d, _src, _t in a.drain(0, 0)]
            got_b = [d for d, _src, _t in b.drain(0, 0)]
            assert got_a == [d for d, addr in plan if addr == a.local]
            assert got_b == [b"x" * 902, b"y" * 902]
        finally:
            for udp in (a, b, tx):
                udp.close()
