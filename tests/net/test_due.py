"""`DueQueue`: items come out at their time, in time order, and an earlier push wakes
the waiter at once. Trio's MockClock: the times are exact."""

from __future__ import annotations

import trio
import trio.testing

from rocd.net.roc._due import EARLY_NS, DueQueue, clock_ns


async def drain(queue: DueQueue[str], out: list[tuple[str, float]]) -> None:
    while True:
        await queue.wait_due()
        now = clock_ns()
        while queue.peek_due(now) is not None:
            out.append((queue.pop(), trio.current_time()))


async def test_items_come_out_at_their_time_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = DueQueue[str]()
    out: list[tuple[str, float]] = []
    t0 = clock_ns()
    for name, at_ms in [("c", 30), ("a", 10), ("b", 20), ("b2", 20)]:
        queue.push(t0 + at_ms * 1_000_000, name)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain, queue, out)
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    start = t0 / 1e9
    assert [(name, round((t - start) * 1000, 6)) for name, t in out] == [
        ("a", 10.0),
        ("b", 20.0),
        ("b2", 20.0),  # same time: in push order
        ("c", 30.0),
    ]
    assert len(queue) == 0


async def test_an_earlier_push_wakes_the_waiter(autojump_clock: trio.testing.MockClock) -> None:
    queue = DueQueue[str]()
    out: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain, queue, out)
        await trio.sleep(0.001)  # the waiter sleeps on an empty queue
        t0 = clock_ns()
        queue.push(t0 + 1_000_000_000, "late")
        await trio.sleep(0.001)  # now it sleeps until "late"
        queue.push(clock_ns() + 5_000_000, "early")
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    assert [name for name, _ in out] == ["early", "late"]
    assert round(out[0][1] - t0 / 1e9, 6) == 0.006
    assert round(out[1][1] - t0 / 1e9, 6) == 1.0


def test_an_item_is_due_a_little_before_its_time() -> None:
    queue = DueQueue[str]()
    queue.push(1_000_000, "x")
    assert queue.first_at() == 1_000_000
    assert queue.peek_due(1_000_000 - EARLY_NS - 1) is None
    assert queue.peek_due(1_000_000 - EARLY_NS) == "x"
    assert queue.peek_due(1_000_000 - EARLY_NS) == "x"  # left in place
    assert queue.pop() == "x"
    assert queue.first_at() is None
