"""The actor runtime: ask/tell, timeouts, back-pressure, supervision, shutdown (virtual time)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio
import trio.testing

from rocd.actors import (
    Actor,
    ActorRef,
    Registry,
    Request,
    Restart,
    Supervisor,
    SupervisorGaveUp,
)
from rocd.errors import (
    ActorCrashed,
    ActorGone,
    AskTimeout,
    Busy,
    Conflict,
    InvalidRequest,
    NotFound,
)


class Add(msgspec.Struct, frozen=True):
    n: int


class Total(Request[int], frozen=True):
    pass


class Nap(Request[None], frozen=True):
    seconds: float


class Boom(Request[None], frozen=True):
    pass


class Refuse(Request[None], frozen=True):
    pass


class Counter(Actor):
    """Keeps a running total; Boom crashes it, Refuse is a polite error."""

    kind = "counter"
    mailbox_capacity = 4

    def __init__(self, uid: str, *, fail_start: bool = False) -> None:
        super().__init__(uid)
        self.total = 0
        self.starts = 0
        self.stops = 0
        self.fail_start = fail_start

    async def on_start(self) -> None:
        self.starts += 1
        self.total = 0  # runtime state is rebuilt on every (re)start
        if self.fail_start:
            raise RuntimeError("cannot open the thing")

    async def on_stop(self) -> None:
        self.stops += 1

    async def handle(self, msg: Any) -> Any:
        match msg:
            case Add(n=n):
                self.total += n
            case Total():
                return self.total
            case Nap(seconds=s):
                await trio.sleep(s)
            case Boom():
                raise RuntimeError("boom")
            case Refuse():
                raise InvalidRequest("not like that")
        return None


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, kind: str, subject: str, data: dict[str, Any]) -> None:
        self.seen.append((kind, subject, data))

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.seen]


async def start_tree(nursery: trio.Nursery, **kw: Any) -> tuple[Supervisor, Registry, Events]:
    registry = Registry()
    events = Events()
    sup = Supervisor("root", registry=registry, publish=events, **kw)
    await nursery.start(sup.run)
    return sup, registry, events


async def test_tell_then_ask_sees_the_effects_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        sup, registry, _ = await start_tree(nursery)
        counter = Counter("c1")
        await sup.start_child(counter)
        ref = registry.lookup("counter", "c1")
        for n in (1, 2, 3):
            await ref.tell(Add(n))
        assert await ref.ask(Total()) == 6
        nursery.cancel_scope.cancel()


async def test_a_refusal_reaches_the_asker_and_the_actor_goes_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        sup, _, events = await start_tree(nursery)
        counter = Counter("c1")
        await sup.start_child(counter)
        with pytest.raises(InvalidRequest, match="not like that"):
            await counter.ref.ask(Refuse())
        await counter.ref.tell(Add(5))
        assert await counter.ref.ask(Total()) == 5
        assert counter.starts == 1
        assert events.seen == []
        nursery.cancel_scope.cancel()


async def test_ask_times_out_at_its_deadline(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        sup, _, _ = await start_tree(nursery)
        counter = Counter("c1")
        await sup.start_child(counter)
        t0 = trio.current_time()
        with pytest.raises(AskTimeout, match=r"did not answer Nap within 1\.5 s"):
            await counter.ref.ask(Nap(10.0), within=1.5)
        assert trio.current_time() - t0 == pytest.approx(1.5)
        nursery.cancel_scope.cancel()


async def test_full_mailbox_means_busy_now_or_back_pressure_later(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        sup, _, _ = await start_tree(nursery)
        counter = Counter("c1")
        await sup.start_child(counter)
        ref = counter.ref
        nursery.start_soon(ref.ask, Nap(4.0))
        await trio.testing.wait_all_tasks_blocked()  # the nap is being handled
        for _ in range(Counter.mailbox_capacity):
            ref.tell_nowait(Add(1))
        with pytest.raises(Busy, match="mailbox full"):
            ref.tell_nowait(Add(1))
        with pytest.raises(Busy):
            await ref.ask(Total())
        t0 = trio.current_time()
        await ref.tell(Add(1))  # waits until the nap is over and a slot frees up
        assert trio.current_time() - t0 == pytest.approx(4.0)
        await trio.testing.wait_all_tasks_blocked()
        assert await ref.ask(Total()) == Counter.mailbox_capacity + 1
        stats = counter.mailbox_stats()
        assert stats.peak == Counter.mailbox_capacity
        assert stats.overruns == 2
        nursery.cancel_scope.cancel()


async def test_a_crash_fails_the_ask_and_the_actor_is_restarted_in_place(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        sup, registry, events = await start_tree(nursery)
        counter = Counter("c1")
        await sup.start_child(counter)
        await counter.ref.tell(Add(7))
        with pytest.raises(ActorCrashed, match="counter c1 failed: RuntimeError"):
            await counter.ref.ask(Boom())
        # The same ref reaches the new incarnation, whose state was rebuilt.
        assert await counter.ref.ask(Total()) == 0
        assert counter.starts == 2
        assert counter.stops == 1
        assert registry.lookup("counter", "c1") is counter.ref
        assert events.kinds() == ["actor.crashed", "actor.restarted"]
        assert events.seen[1][2] == {"actor": "counter/c1", "restarts": 1}
        assert "RuntimeError('boom')" in sup.failures["counter/c1"][0].error
        nursery.cancel_scope.cancel()


async def test_messages_sent_during_a_restart_wait_for_the_new_incarnation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        sup, _, _ = await start_tree(nursery)
        counter = Counter("c1")
        await sup.start_child(counter)
        ref = counter.ref
        crashes: list[BaseException] = []

        async def crash() -> None:
            with pytest.raises(ActorCrashed) as info:
                await ref.ask(Boom())
            crashes.append(info.value)

        nursery.start_soon(ref.ask, Nap(1.0))
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(crash)
        await trio.testing.wait_all_tasks_blocked()
        ref.tell_nowait(Add(2))  # queued behind the crash
        await trio.sleep(2.0)
        assert len(crashes) == 1
        assert counter.starts == 2
        assert await ref.ask(Total()) == 2
        nursery.cancel_scope.cancel()


async def test_too_many_restarts_make_the_supervisor_give_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = Registry()
    events = Events()
    sup = Supervisor("root", registry=registry, publish=events, max_restarts=2, within=10.0)
    counter = Counter("c1")
    with pytest.RaisesGroup(
        pytest.RaisesExc(SupervisorGaveUp, match="more than 2 restarts"), flatten_subgroups=True
    ):
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            await sup.start_child(counter)
            for _ in range(3):
                with pytest.raises(ActorCrashed):
                    await counter.ref.ask(Boom())
                await trio.sleep(1.0)
            await trio.sleep_forever()  # the supervisor's failure ends this
    assert events.kinds()[-1] == "supervisor.gave_up"
    assert counter.starts == 3


async def test_restarts_spread_over_time_are_fine(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        sup, _, _ = await start_tree(nursery, max_restarts=2, within=10.0)
        counter = Counter("c1")
        await sup.start_child(counter)
        for _ in range(6):
            with pytest.raises(ActorCrashed):
                await counter.ref.ask(Boom())
            await trio.sleep(6.0)  # never more than 2 restarts within 10 s
        assert counter.starts == 7
        nursery.cancel_scope.cancel()


async def test_a_supervisor_that_gives_up_is_restarted_by_its_parent_with_its_children(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        root, registry, events = await start_tree(nursery, max_restarts=5, within=60.0)
        inner = Supervisor(
            "devices", registry=registry, publish=events, max_restarts=1, within=60.0
        )
        await root.start_child(inner)
        flaky, steady = Counter("flaky"), Counter("steady")
        await inner.start_child(flaky)
        await inner.start_child(steady)
        await steady.ref.tell(Add(3))
        for _ in range(2):
            with pytest.raises(ActorCrashed):
                await flaky.ref.ask(Boom())
            await trio.testing.wait_all_tasks_blocked()
        # Escalation: the inner supervisor failed, the root restarted it, and it brought
        # both children back (the steady one too: one-for-all at this level).
        assert await steady.ref.ask(Total()) == 0
        assert steady.starts == 2
        assert flaky.starts == 3
        assert "supervisor.gave_up" in events.kinds()
        assert ("actor.restarted", "devices", {"actor": "supervisor/devices", "restarts": 1}) in (
            events.seen
        )
        nursery.cancel_scope.cancel()


async def test_a_failed_first_start_goes_to_the_caller_and_leaves_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        sup, registry, _ = await start_tree(nursery)
        broken = Counter("c1", fail_start=True)
        with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="cannot open")):
            await sup.start_child(broken)
        assert registry.find("counter", "c1") is None
        assert sup.children() == []
        with pytest.raises(ActorGone):
            await broken.ref.ask(Total())
        nursery.cancel_scope.cancel()


async def test_stopped_actor_is_gone_and_its_queued_asks_fail_fast(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        sup, registry, _ = await start_tree(nursery)
        counter = Counter("c1")
        await sup.start_child(counter)
        ref = counter.ref
        results: list[BaseException] = []

        async def ask_and_record(msg: Request[Any]) -> None:
            try:
                await ref.ask(msg)
            except ActorGone as exc:
                results.append(exc)

        nursery.start_soon(ask_and_record, Nap(100.0))
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(ask_and_record, Total())
        await trio.testing.wait_all_tasks_blocked()
        t0 = trio.current_time()
        await sup.stop_child("counter", "c1", reason="removed by the user")
        await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == t0  # nobody waited for the nap or a timeout
        assert len(results) == 2
        assert "removed by the user" in str(results[1])
        assert counter.stops == 1
        assert registry.find("counter", "c1") is None
        with pytest.raises(NotFound):
            registry.lookup("counter", "c1")
        with pytest.raises(ActorGone, match="has stopped"):
            await ref.ask(Total())
        assert not ref.alive
        nursery.cancel_scope.cancel()


async def test_never_restart_child_is_dropped_after_a_crash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        sup, registry, events = await start_tree(nursery)
        once = Counter("once")
        await sup.start_child(once, Restart.NEVER)
        with pytest.raises(ActorCrashed):
            await once.ref.ask(Boom())
        await trio.testing.wait_all_tasks_blocked()
        assert registry.find("counter", "once") is None
        assert events.kinds() == ["actor.crashed"]
        nursery.cancel_scope.cancel()


async def test_duplicate_child_is_a_conflict(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        sup, _, _ = await start_tree(nursery)
        await sup.start_child(Counter("c1"))
        with pytest.raises(Conflict):
            await sup.start_child(Counter("c1"))
        nursery.cancel_scope.cancel()


class SlowStopper(Actor):
    kind = "slow"
    stop_grace = 1.0

    def __init__(self, uid: str, flush_seconds: float) -> None:
        super().__init__(uid)
        self.flush_seconds = flush_seconds
        self.flushed = False
        self.ticks = 0

    async def on_start(self) -> None:
        self.nursery.start_soon(self._tick)

    async def _tick(self) -> None:
        while True:
            await trio.sleep(0.1)
            self.ticks += 1

    async def on_stop(self) -> None:
        await trio.sleep(self.flush_seconds)
        self.flushed = True


async def test_cancelling_the_root_stops_everything_with_a_grace_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = Registry()
    quick, slow = SlowStopper("quick", 0.5), SlowStopper("slow", 5.0)
    refs: list[ActorRef] = []
    with trio.CancelScope() as outer:
        async with trio.open_nursery() as nursery:
            sup = Supervisor("root", registry=registry)
            await nursery.start(sup.run)
            for actor in (quick, slow):
                await sup.start_child(actor)
                refs.append(actor.ref)
            await trio.sleep(1.0)
            t0 = trio.current_time()
            outer.cancel()
    # The quick actor finished its flush; the slow one was cut at its 1 s grace.
    assert quick.flushed
    assert not slow.flushed
    assert trio.current_time() - t0 == pytest.approx(1.0)
    ticks = quick.ticks
    await trio.sleep(1.0)
    assert quick.ticks == ticks  # its background task is gone too
    assert not quick.running
    sup.close("daemon stopped")
    assert len(registry) == 0
    for ref in refs:
        with pytest.raises(ActorGone):
            await ref.ask(Total())
