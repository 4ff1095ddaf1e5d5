"""`LoopWatch` on Trio's MockClock: a wake later than `STALL_S` is a stall, counted and
logged at most once per `LOG_EVERY_S` (with how many there were since)."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from rocd.loop_watch import LOG_EVERY_S, PERIOD_S, LoopWatch


async def test_stalls_are_counted_and_their_warnings_spaced(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    watch = LoopWatch()

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch.run)
        await trio.sleep(1)
        assert watch.stats().stalls == 0
        assert watch.stats().last_stall_s_ago is None
        autojump_clock.jump(0.03)  # late, not a stall
        await trio.sleep(1)
        assert watch.stats().stalls == 0
        assert watch.stats().worst_ms >= 10
        for late in (0.3, 0.08, 0.12):  # within LOG_EVERY_S of each other
            autojump_clock.jump(late)
            await trio.sleep(1)
        stats = watch.stats()
        assert stats.stalls == 3
        assert 300 - PERIOD_S * 1000 <= stats.worst_ms <= 300
        assert stats.last_stall_s_ago is not None
        assert 0 < stats.last_stall_s_ago <= 1
        assert len(warnings()) == 1
        assert "stalled 2" in warnings()[0] or "stalled 3" in warnings()[0]
        await trio.sleep(LOG_EVERY_S)
        autojump_clock.jump(0.07)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert watch.stats().stalls == 4
    assert len(warnings()) == 2
    assert "(the worst of 3 since the last warning)" in warnings()[1]
