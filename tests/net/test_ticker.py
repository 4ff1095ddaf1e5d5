"""Ticker: stages within a tick, pacer phase, and the shared readiness poll."""

from __future__ import annotations

import socket

import trio
import trio.testing

from rocd.net.roc import Step, Ticker
from rocd.net.roc._ticker import CONSUME, PRODUCE

PERIOD = 10_000_000


async def test_producers_step_before_consumers_whatever_the_attach_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    order: list[str] = []

    def step(name: str, last: int) -> Step:
        async def run(now: int) -> bool:
            order.append(name)
            return len(order) >= last

        return run

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            ticker = await nursery.start(Ticker(PERIOD).run)
            consumer = ticker.attach(step("recv", 4), stage=CONSUME)
            producer = ticker.attach(step("send", 4), stage=PRODUCE)
            await consumer.wait()
            await producer.wait()
            nursery.cancel_scope.cancel()
    assert order[:4] == ["send", "recv", "send", "recv"]


async def test_pacers_start_half_a_period_off_the_ticks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            ticker = await nursery.start(Ticker(PERIOD).run)
            now = round(trio.current_time() * 1e9)
            start = ticker.pacer_start_ns(now)
            # The next tick is one period after the ticker started (just now).
            assert start == now + PERIOD - PERIOD // 2
            nursery.cancel_scope.cancel()
    assert Ticker(PERIOD).pacer_start_ns(123) == 123  # not running: now


async def test_watched_sockets_are_readable_only_when_data_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    seen: list[bool] = []
    with a, b, trio.fail_after(5):
        ticker = Ticker(PERIOD)
        ticker.watch(a.fileno())
        assert ticker.readable(b.fileno())  # not watched: read it to know

        async def producer(now: int) -> bool:
            if len(seen) == 1:
                b.send(b"x")  # sent in the tick: the consumers' poll sees it
            return False

        async def consumer(now: int) -> bool:
            readable = ticker.readable(a.fileno())
            seen.append(readable)
            if readable:
                a.recv(16)
            return len(seen) >= 3

        async with trio.open_nursery() as nursery:
            await nursery.start(ticker.run)
            ticker.attach(producer, stage=PRODUCE)
            await ticker.attach(consumer, stage=CONSUME).wait()
            ticker.unwatch(a.fileno())
            assert ticker.readable(a.fileno())
            nursery.cancel_scope.cancel()
    assert seen == [False, True, False]


async def test_a_lead_puts_chunks_that_long_before_the_ticks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            ticker = await nursery.start(Ticker(PERIOD).run)
            now = round(trio.current_time() * 1e9)
            assert ticker.pacer_start_ns(now, lead_ns=500_000) == now + PERIOD - 500_000
            nursery.cancel_scope.cancel()


async def test_ticks_say_their_nominal_time(autojump_clock: trio.testing.MockClock) -> None:
    ticks: list[int | None] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            ticker = await nursery.start(Ticker(PERIOD).run)
            start = round(trio.current_time() * 1e9)

            async def step(now: int) -> bool:
                ticks.append(ticker.tick_ns)
                return len(ticks) == 3

            await ticker.attach(step).wait()
            nursery.cancel_scope.cancel()
    assert ticks == [start + PERIOD, start + 2 * PERIOD, start + 3 * PERIOD]


async def test_a_kernel_timer_ticks_on_schedule_on_the_real_clock() -> None:
    lateness: list[int] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            ticker = await nursery.start(Ticker(PERIOD, os_timer=True).run)

            async def step(now: int) -> bool:
                assert ticker.tick_ns is not None
                lateness.append(now - ticker.tick_ns)
                return len(lateness) == 50

            t0 = trio.current_time()
            await ticker.attach(step).wait()
            elapsed = trio.current_time() - t0
            nursery.cancel_scope.cancel()
    assert min(lateness) >= 0  # never early
    assert 0.45 < elapsed < 0.75  # 50 ticks of 10 ms (a loaded machine may skip some)
    assert ticker.ticks + ticker.late_ticks >= 40
