"""The hub actor: relays leased per stream (the same one again for the same stream),
at most `max_relays` of them, given back on release or when idle, counted in /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from rocd.actors import ListRelays, ListSettings, StreamHub
from rocd.actors._stream_media import AllocateRelay, HubLease, ReleaseRelay
from rocd.errors import Busy
from rocd.net.roc import HubKind, HubRole, PortPool, encode_hub_message
from tests.client import RunningDaemon, running_daemon


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[tuple[RunningDaemon, StreamHub]]:
    async with running_daemon(tmp_path) as rocd:
        actor = StreamHub(
            rocd.info.uid, pool=PortPool(), max_relays=2, idle_s=0.6, probe_port=lambda: 4711
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            rocd.daemon.registry.register(actor.ref)  # as its supervisor would
            yield rocd, actor
            rocd.daemon.registry.unregister(actor.ref)
            nursery.cancel_scope.cancel()


async def test_relays_are_leased_bounded_and_given_back(
    hub: tuple[RunningDaemon, StreamHub],
) -> None:
    rocd, actor = hub
    ref = actor.ref
    first = await ref.ask(AllocateRelay(stream="s1"))
    assert first.hub == rocd.info.uid
    assert first.probe_port == 4711
    assert len(set(first.sender_ports) | {first.receiver_port}) == 4
    assert len(bytes.fromhex(first.token)) == 16
    # The same stream asking again (a retried setup) gets the same relay.
    assert await ref.ask(AllocateRelay(stream="s1")) == first
    second = await ref.ask(AllocateRelay(stream="s2"))
    assert second.token != first.token
    with pytest.raises(Busy, match="relays 2 streams already"):
        await ref.ask(AllocateRelay(stream="s3"))
    text = (await rocd.http.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["rocd_hub_relays"].samples[0].value == 2
    assert await ref.ask(ReleaseRelay(stream="s1")) is True
    assert await ref.ask(ReleaseRelay(stream="s1")) is False
    assert [r.stream for r in await ref.ask(ListRelays())] == ["s2"]
    await ref.ask(AllocateRelay(stream="s3"))  # room again


async def test_a_relay_kept_alive_by_registrations_and_closed_when_idle(
    hub: tuple[RunningDaemon, StreamHub],
) -> None:
    _, actor = hub
    lease = await actor.ref.ask(AllocateRelay(stream="s1"))
    await actor.ref.ask(AllocateRelay(stream="s2"))
    register = encode_hub_message(HubKind.REGISTER, HubRole.SOURCE, bytes.fromhex(lease.token))
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind(("127.0.0.1", 0))
        # s1's receiver registers every 0.2 s for 7 s; s2 hears nothing.
        for _ in range(35):
            await sock.sendto(register, ("127.0.0.1", lease.receiver_port))
            await trio.sleep(0.2)
    relays = await actor.ref.ask(ListRelays())
    assert [r.stream for r in relays] == ["s1"]  # the hub sweeps every 5 s
    assert relays[0].stats.registrations >= 30


async def test_a_hub_that_restarts_reopens_its_relays_where_they_were(tmp_path: Path) -> None:
    # The ends of a stream keep registering with and sending to the same ports with the
    # same token: a hub that comes back with the relay as it was carries the audio again.
    async with running_daemon(tmp_path) as rocd:
        store = rocd.daemon.registry.find("store", "state")
        assert store is not None

        @asynccontextmanager
        async def incarnation() -> AsyncIterator[StreamHub]:
            hub = StreamHub(rocd.info.uid, pool=PortPool(), store=store, probe_port=lambda: 9)
            async with trio.open_nursery() as nursery:
                await nursery.start(hub.run)
                yield hub
                nursery.cancel_scope.cancel()  # the daemon stops: relays closed, kept

        async with incarnation() as first:
            kept = await first.ref.ask(AllocateRelay(stream="kept"))
            gone = await first.ref.ask(AllocateRelay(stream="gone"))
            assert await first.ref.ask(ReleaseRelay(stream="gone")) is True
        async with incarnation() as second:
            assert [r.stream for r in await second.ref.ask(ListRelays())] == ["kept"]
            assert await second.ref.ask(AllocateRelay(stream="kept")) == kept
            assert await second.ref.ask(AllocateRelay(stream="gone")) != gone  # a new one
            await relays_a_datagram(kept)
            assert await second.ref.ask(ReleaseRelay(stream="kept")) is True
            assert await second.ref.ask(ReleaseRelay(stream="gone")) is True
        async with incarnation() as third:
            assert await third.ref.ask(ListRelays()) == []  # what was released stays gone


async def test_a_relay_whose_ports_are_taken_is_forgotten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_daemon(tmp_path) as rocd:
        store = rocd.daemon.registry.find("store", "state")
        assert store is not None
        taken = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        with taken:
            async with trio.open_nursery() as nursery:
                hub = StreamHub(rocd.info.uid, pool=PortPool(), store=store)
                await nursery.start(hub.run)
                lease = await hub.ref.ask(AllocateRelay(stream="s"))
                nursery.cancel_scope.cancel()
            await taken.bind(("0.0.0.0", lease.receiver_port))  # someone else took Y
            async with trio.open_nursery() as nursery:
                hub = StreamHub(rocd.info.uid, pool=PortPool(), store=store)
                await nursery.start(hub.run)
                assert await hub.ref.ask(ListRelays()) == []
                nursery.cancel_scope.cancel()
        assert "relay for stream s not reopened" in caplog.text
        assert await store.ask(ListSettings("hub_relay")) == {}


async def relays_a_datagram(lease: HubLease) -> None:
    """A receiver socket registers, then the sender: its datagram to S_source arrives."""
    token = bytes.fromhex(lease.token)
    with (
        trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as receiver,
        trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sender,
    ):
        await receiver.bind(("127.0.0.1", 0))
        await sender.bind(("127.0.0.1", 0))
        register = encode_hub_message(HubKind.REGISTER, HubRole.SOURCE, token)
        await receiver.sendto(register, ("127.0.0.1", lease.receiver_port))
        register = encode_hub_message(HubKind.REGISTER, HubRole.SENDER, token)
        await sender.sendto(register, ("127.0.0.1", lease.sender_ports[2]))
        with trio.fail_after(5):
            while True:
                await sender.sendto(b"\x80audio", ("127.0.0.1", lease.sender_ports[0]))
                with trio.move_on_after(0.1):
                    if await receiver.recv(2048) == b"\x80audio":
                        return
