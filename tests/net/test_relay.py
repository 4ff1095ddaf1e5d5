"""The UDP impairment relay over real sockets on 127.0.0.1."""

import os
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from rocd.net.roc import ImpairmentConfig, ImpairmentModel, RelayRoute, UdpRelay

LOCAL = "127.0.0.1"
Address = tuple[str, int]


def open_sockets() -> set[str]:
    """The sockets this process holds open (as 'socket:[inode]')."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the fd of the listing itself, gone by now
        if link.startswith("socket:"):
            found.add(link)
    return found


async def udp() -> trio.socket.SocketType:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind((LOCAL, 0))
    return sock


async def recv(sock: trio.socket.SocketType) -> tuple[bytes, Address]:
    with trio.fail_after(2):
        data, source = await sock.recvfrom(65536)
    return data, source


async def recv_all(
    sock: trio.socket.SocketType, quiet: float, out: list[bytes] | None = None
) -> list[bytes]:
    """Every datagram until none came for `quiet` seconds (appended to `out` if given, so
    that a task started before the sending collects while the sender runs)."""
    out = [] if out is None else out
    while True:
        with trio.move_on_after(quiet) as scope:
            data, _ = await sock.recvfrom(65536)
        if scope.cancelled_caught:
            return out
        out.append(data)


class Rig:
    """Three targets (like a receiver's source, repair and control ports) behind a relay."""

    def __init__(self, relay: UdpRelay, targets: list[trio.socket.SocketType]) -> None:
        self.relay = relay
        self.targets = targets
        self.listen: list[Address] = []


@asynccontextmanager
async def relay_rig(
    forward: ImpairmentConfig | None = None,
    reverse: ImpairmentConfig | None = None,
    max_clients: int = 64,
) -> AsyncIterator[Rig]:
    targets = [await udp() for _ in range(3)]
    routes = [RelayRoute(listen=(LOCAL, 0), target=t.getsockname()) for t in targets]
    relay = UdpRelay(routes, forward=forward, reverse=reverse, max_clients=max_clients)
    rig = Rig(relay, targets)
    try:
        async with trio.open_nursery() as nursery:
            rig.listen = await nursery.start(relay.run)
            yield rig
            nursery.cancel_scope.cancel()
    finally:
        for t in targets:
            t.close()


async def test_all_ports_of_a_client_leave_from_one_upstream_socket() -> None:
    with trio.fail_after(5):
        async with relay_rig() as rig:
            assert [a[0] for a in rig.listen] == [LOCAL] * 3
            assert len({a[1] for a in rig.listen}) == 3
            client = await udp()
            with client:
                for port_index in range(3):
                    await client.sendto(b"to %d" % port_index, rig.listen[port_index])
                sources = set()
                for port_index, target in enumerate(rig.targets):
                    data, source = await recv(target)
                    assert data == b"to %d" % port_index
                    sources.add(source)
                assert len(sources) == 1
                upstream = sources.pop()
                assert upstream != client.getsockname()
                # Upstream sockets bind the wildcard address: compare ports.
                [(client_address, bound)] = rig.relay.clients.items()
                assert client_address == client.getsockname()
                assert bound[1] == upstream[1]
                # Replies from each target come back from the listen port routed to it.
                for port_index in (2, 1):
                    await rig.targets[port_index].sendto(b"report %d" % port_index, upstream)
                    data, source = await recv(client)
                    assert (data, source) == (b"report %d" % port_index, rig.listen[port_index])
                forward, reverse = rig.relay.forward_counters, rig.relay.reverse_counters
                assert (forward.impairment.received, forward.sent) == (3, 3)
                assert (reverse.impairment.received, reverse.sent) == (2, 2)


async def test_each_client_gets_its_own_upstream_socket() -> None:
    with trio.fail_after(5):
        async with relay_rig() as rig:
            clients = [await udp() for _ in range(3)]
            try:
                upstreams = []
                for i, client in enumerate(clients):
                    await client.sendto(b"client %d" % i, rig.listen[0])
                    data, source = await recv(rig.targets[0])
                    assert data == b"client %d" % i
                    upstreams.append(source)
                assert len(set(upstreams)) == 3
                for i in reversed(range(3)):
                    await rig.targets[2].sendto(b"reply %d" % i, upstreams[i])
                for i, client in enumerate(clients):
                    assert await recv(client) == (b"reply %d" % i, rig.listen[2])
            finally:
                for client in clients:
                    client.close()


async def test_unknown_repliers_are_not_forwarded() -> None:
    with trio.fail_after(5):
        async with relay_rig() as rig:
            client, stranger = await udp(), await udp()
            with client, stranger:
                await client.sendto(b"hello", rig.listen[0])
                _, upstream = await recv(rig.targets[0])
                await stranger.sendto(b"spoof", upstream)
                await rig.targets[0].sendto(b"genuine", upstream)
                assert await recv(client) == (b"genuine", rig.listen[0])
                assert await recv_all(client, 0.1) == []
                assert rig.relay.reverse_counters.unroutable == 1


async def test_seeded_loss_drops_exactly_what_the_model_predicts() -> None:
    config = ImpairmentConfig(seed=21, loss=0.3)
    predict = ImpairmentModel(config)
    expected = [i for i in range(400) if predict.process(0, b"")]
    with trio.fail_after(10):
        async with relay_rig(forward=config) as rig:
            client = await udp()
            received: list[bytes] = []
            with client:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(recv_all, rig.targets[0], 0.3, received)
                    for i in range(400):
                        await client.sendto(struct.pack("!I", i) + b"\0" * 896, rig.listen[0])
                        if i % 50 == 49:
                            await trio.sleep(0.002)  # stay well inside the socket buffers
            got = [struct.unpack_from("!I", d)[0] for d in received]
            assert got == expected
            assert 0.2 < 1 - len(got) / 400 < 0.4
            counters = rig.relay.forward_counters
            assert counters.impairment.received == 400
            assert counters.impairment.dropped == 400 - len(expected)
            assert counters.sent == len(expected)
            assert counters.pending == 0


async def test_delay_is_applied_on_the_real_clock() -> None:
    delay = 0.050
    config = ImpairmentConfig(delay_ns=round(delay * 1e9))
    with trio.fail_after(5):
        async with relay_rig(forward=config, reverse=config) as rig:
            client = await udp()
            with client:
                lags = []
                for i in range(5):
                    sent_at = trio.current_time()
                    await client.sendto(b"ping %d" % i, rig.listen[1])
                    data, upstream = await recv(rig.targets[1])
                    assert data == b"ping %d" % i
                    lags.append(trio.current_time() - sent_at)
                # A scheduler wakes a little late (PLATFORM.md: < 3 ms), never early.
                assert all(delay <= lag < delay + 0.025 for lag in lags), lags
                sent_at = trio.current_time()
                await rig.targets[1].sendto(b"pong", upstream)
                assert await recv(client) == (b"pong", rig.listen[1])
                assert delay <= trio.current_time() - sent_at < delay + 0.025


async def test_jitter_and_duplicates_pass_through_the_heap() -> None:
    config = ImpairmentConfig(seed=4, delay_ns=5_000_000, jitter_ns=30_000_000, duplicate=0.5)
    with trio.fail_after(10):
        async with relay_rig(forward=config) as rig:
            client = await udp()
            received: list[bytes] = []
            with client:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(recv_all, rig.targets[0], 0.3, received)
                    for i in range(200):
                        await client.sendto(struct.pack("!I", i), rig.listen[0])
                        await trio.sleep(0.001)
            got = [struct.unpack("!I", d)[0] for d in received]
            counters = rig.relay.forward_counters
            assert len(got) == 200 + counters.impairment.duplicated
            assert set(got) == set(range(200))
            assert 60 < counters.impairment.duplicated < 140
            assert got != sorted(got)  # 30 ms of jitter on 1 ms spacing reorders
            assert counters.impairment.reordered > 0


async def test_reverse_direction_has_its_own_model() -> None:
    with trio.fail_after(5):
        async with relay_rig(reverse=ImpairmentConfig(loss=1.0)) as rig:
            client = await udp()
            with client:
                await client.sendto(b"in", rig.listen[2])
                _, upstream = await recv(rig.targets[2])
                for _ in range(5):
                    await rig.targets[2].sendto(b"lost", upstream)
                assert await recv_all(client, 0.1) == []
                reverse = rig.relay.reverse_counters
                assert (reverse.impairment.received, reverse.impairment.dropped) == (5, 5)
                assert rig.relay.forward_counters.impairment.dropped == 0


async def test_the_least_recent_client_is_evicted_beyond_max_clients() -> None:
    with trio.fail_after(5):
        async with relay_rig(max_clients=1) as rig:
            first, second = await udp(), await udp()
            with first, second:
                await first.sendto(b"1", rig.listen[0])
                _, upstream_1 = await recv(rig.targets[0])
                before = open_sockets()
                await second.sendto(b"2", rig.listen[0])
                _, upstream_2 = await recv(rig.targets[0])
                assert upstream_1 != upstream_2
                assert list(rig.relay.clients) == [second.getsockname()]
                assert len(open_sockets()) == len(before)  # one closed, one opened
                await rig.targets[0].sendto(b"for 2", upstream_2)
                assert await recv(second) == (b"for 2", rig.listen[0])


async def test_cancellation_closes_every_socket() -> None:
    with trio.fail_after(5):
        before = open_sockets()
        targets = [await udp() for _ in range(2)]
        clients = [await udp() for _ in range(3)]
        opened = open_sockets()
        routes = [RelayRoute(listen=(LOCAL, 0), target=t.getsockname()) for t in targets]
        relay = UdpRelay(routes, forward=ImpairmentConfig(delay_ns=500_000_000))
        async with trio.open_nursery() as nursery:
            listen = await nursery.start(relay.run)
            for client in clients:
                await client.sendto(b"x", listen[0])
                await client.sendto(b"y", listen[1])
            for _ in range(200):  # the relay has read them all (polling: no event to wait on)
                if relay.forward_counters.impairment.received == 6:
                    break
                await trio.sleep(0.01)
            assert len(open_sockets() - opened) == 2 + 3  # listen + one upstream per client
            assert relay.forward_counters.pending == 6  # still inside the 500 ms delay
            nursery.cancel_scope.cancel()
        assert open_sockets() == opened
        assert relay.forward_counters.pending == 0
        # The listen ports are free again.
        for address in listen:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind(address)
        for sock in targets + clients:
            sock.close()
        assert open_sockets() == before


async def test_run_twice_is_refused() -> None:
    target = await udp()
    with target, trio.fail_after(5):
        relay = UdpRelay([RelayRoute(listen=(LOCAL, 0), target=target.getsockname())])
        async with trio.open_nursery() as nursery:
            await nursery.start(relay.run)
            with pytest.raises(RuntimeError, match="once"):
                await relay.run()
            nursery.cancel_scope.cancel()


def test_route_validation() -> None:
    with pytest.raises(ValueError, match=r"RelayRoute\.listen port"):
        RelayRoute(listen=(LOCAL, 70000), target=(LOCAL, 1))
    with pytest.raises(ValueError, match=r"RelayRoute\.target port must not be 0"):
        RelayRoute(listen=(LOCAL, 0), target=(LOCAL, 0))
    with pytest.raises(ValueError, match="at least one route"):
        UdpRelay([])


async def test_ipv6_routes() -> None:
    target = trio.socket.socket(trio.socket.AF_INET6, trio.socket.SOCK_DGRAM)
    client = trio.socket.socket(trio.socket.AF_INET6, trio.socket.SOCK_DGRAM)
    with target, client, trio.fail_after(5):
        await target.bind(("::1", 0))
        await client.bind(("::1", 0))
        relay = UdpRelay([RelayRoute(listen=("::1", 0), target=target.getsockname()[:2])])
        async with trio.open_nursery() as nursery:
            [listen] = await nursery.start(relay.run)
            assert listen[0] == "::1"
            await client.sendto(b"six", listen)
            data, upstream = await target.recvfrom(100)
            assert data == b"six"
            await target.sendto(b"back", upstream)
            data, source = await client.recvfrom(100)
            assert (data, source[:2]) == (b"back", listen)
            nursery.cancel_scope.cancel()
