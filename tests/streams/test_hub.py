"""The hub actor: relays leased per stream (the same one again for the same stream),
at most `max_relays` of them, given back on release or when idle, counted in /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from rocd.actors import ListRelays, StreamHub
from rocd.actors._stream_media import AllocateRelay, ReleaseRelay
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
