"""The event bus: filters, fan-out, slow subscribers dropped, publishers never blocked."""

from __future__ import annotations

import re
from pathlib import Path

import trio
import trio.testing

import rocd
from rocd.actors import (
    EVENT_FAMILIES,
    EVENT_KINDS,
    MAX_SUBSCRIBER_BUFFER,
    Event,
    EventBus,
    EventFilter,
    GetBusStats,
    Recent,
    Subscribe,
    check_kind_filter,
)
from rocd.actors._events import Publish


def event(kind: str, peer: str = "p1") -> Event:
    return Event(1, 0.0, kind, peer, "", {})


def test_filters_match_exact_kinds_prefixes_and_peers() -> None:
    everything = EventFilter()
    devices = EventFilter(kinds=("device.",))
    renames = EventFilter(kinds=("peer.updated",), peer="p2")
    assert everything.matches(event("anything.at.all"))
    assert devices.matches(event("device.added"))
    assert not devices.matches(event("devices"))  # a prefix ends at a dot
    assert not devices.matches(event("peer.updated"))
    assert renames.matches(event("peer.updated", "p2"))
    assert not renames.matches(event("peer.updated", "p1"))
    assert not renames.matches(event("peer.updated.more", "p2"))


async def test_subscribers_get_what_they_asked_for_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus("p1")
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        all_events = await bus.ref.ask(Subscribe())
        devices = await bus.ref.ask(Subscribe(EventFilter(kinds=("device.",))))
        bus.publish("device.added", "d1", {"name": "speaker"})
        bus.publish("peer.updated", "p1")
        bus.publish("device.removed", "d1")
        await trio.testing.wait_all_tasks_blocked()
        got_all = [await all_events.__anext__() for _ in range(3)]
        got_dev = [await devices.__anext__() for _ in range(2)]
        assert [e.kind for e in got_all] == ["device.added", "peer.updated", "device.removed"]
        assert [e.seq for e in got_all] == [1, 2, 3]
        assert got_all[0].data == {"name": "speaker"}
        assert got_all[0].peer == "p1"
        assert got_all[0].subject == "d1"
        assert [e.kind for e in got_dev] == ["device.added", "device.removed"]
        recent = await bus.ref.ask(Recent(limit=2))
        assert [e.seq for e in recent] == [2, 3]
        nursery.cancel_scope.cancel()


async def test_a_slow_subscriber_is_dropped_and_the_others_go_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus("p1")
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        slow = await bus.ref.ask(Subscribe(buffer=4))
        fast = await bus.ref.ask(Subscribe(buffer=4))
        received: list[int] = []

        async def consume() -> None:
            async for ev in fast:
                received.append(ev.seq)

        nursery.start_soon(consume)
        for _ in range(20):
            bus.publish("tick")
            await trio.testing.wait_all_tasks_blocked()
        assert received == list(range(1, 21))
        # The slow one kept what fitted, then its stream ended with a reason.
        kept = [ev.seq async for ev in slow]
        assert kept == [1, 2, 3, 4]
        assert slow.dropped_reason is not None
        assert "slow subscriber" in slow.dropped_reason
        assert fast.dropped_reason is None
        assert bus.subscriber_count == 1
        nursery.cancel_scope.cancel()


async def test_publish_never_blocks_even_when_the_bus_is_swamped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus("p1")
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        sub = await bus.ref.ask(Subscribe(buffer=10_000))
        total = EventBus.mailbox_capacity + 10
        for _ in range(total):
            bus.publish("flood")  # no checkpoint: the bus cannot drain meanwhile
        # About 10 did not fit (one more may go straight to the waiting bus task).
        assert 9 <= bus.dropped_events <= 10
        await trio.testing.wait_all_tasks_blocked()
        delivered = total - bus.dropped_events
        assert [(await sub.__anext__()).seq for _ in range(delivered)] == list(
            range(1, delivered + 1)
        )
        sub.close()
        nursery.cancel_scope.cancel()


async def test_closed_subscriptions_are_forgotten(autojump_clock: trio.testing.MockClock) -> None:
    bus = EventBus("p1")
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        sub = await bus.ref.ask(Subscribe(EventFilter(kinds=("device.",))))
        assert bus.subscriber_count == 1
        sub.close()
        bus.publish("peer.updated")  # does not match, yet the closed one is noticed
        await trio.testing.wait_all_tasks_blocked()
        assert bus.subscriber_count == 0
        nursery.cancel_scope.cancel()


async def test_stopping_the_bus_ends_every_subscription_with_a_reason(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus("p1")
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.run)
            sub = await bus.ref.ask(Subscribe())
            scope.cancel()
    assert [ev async for ev in sub] == []
    assert sub.dropped_reason == "daemon shutting down"


def test_every_kind_published_is_in_the_catalogue() -> None:
    """Filters refuse kinds not in EVENT_KINDS, so a kind published but not listed could
    never be subscribed to by name."""
    root = Path(rocd.__file__).parent
    published: set[str] = set()
    call = re.compile(r"(?:publish|_emit)\(\s*\"([a-z_]+\.[a-z_]+)\"")
    for path in [root / "daemon.py", *(root / "actors").glob("*.py"), *(root / "api").glob("*.py")]:
        published |= set(call.findall(path.read_text()))
    assert published >= {"device.added", "vad.created", "peer.updated", "store.error"}
    assert published <= set(EVENT_KINDS), published - set(EVENT_KINDS)


def test_kind_filters_name_known_kinds_or_families() -> None:
    assert check_kind_filter("device.") is None
    assert check_kind_filter("device.added") is None
    assert check_kind_filter("store.error") is None
    assert "no event kind 'bogus'" in (check_kind_filter("bogus") or "")
    assert "no event family 'dev.'" in (check_kind_filter("dev.") or "")
    assert {"peer.", "device.", "vad.", "driver.", "actor.", "store."} <= EVENT_FAMILIES


async def test_a_closed_subscription_is_forgotten_without_any_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus("p1")
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        subs = [await bus.ref.ask(Subscribe(buffer=10**9)) for _ in range(100)]
        assert bus.subscriber_count == 100
        for sub in subs:
            sub.close()
        await trio.testing.wait_all_tasks_blocked()
        assert bus.subscriber_count == 0
        assert (await bus.ref.ask(GetBusStats())).subscribers == 0
        nursery.cancel_scope.cancel()


async def test_a_subscriber_buffer_is_bounded_whatever_it_asks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus("p1")
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        sub = await bus.ref.ask(Subscribe(buffer=10**9))
        for _ in range(MAX_SUBSCRIBER_BUFFER + 1):
            bus.ref.tell_nowait(Publish("peer.updated"))
            await trio.testing.wait_all_tasks_blocked()
        assert sub.overrun
        assert bus.subscriber_count == 0
        nursery.cancel_scope.cancel()
