"""One timer for many paced links: every period, each attached link takes a step.

A link fed by a file or a tone, or feeding a file, has no device to pace it: it must
wake up every 10 ms to send or play what is due. A Trio timer wake-up costs ~20 us here
(cancel scope, deadline heap, scheduler), so 64 sending and 64 receiving links sleeping
on their own timers spend a sixth of a core just waking up. A `Ticker` wakes once per
period for all of them and runs their steps one after another.

Rules:
- A step is `async def step(now_ns) -> bool` (True: the link is finished). It must not
  wait for long: every other link on the ticker waits behind it. Unclocked sources and
  sinks (memory, files, generators) answer at once, which is what the ticker is for; a
  device-paced link runs its own loop instead.
- A step that raises is detached and its error goes to the link's `wait`, which re-raises
  it in the link's own task: one link failing never stops the others.
- Ticks are on an absolute schedule (no drift); a late wake-up runs the steps once, and
  each link's `Pacer` says how many chunks are due, so the link catches up in a burst.
- Sockets a step reads every tick can be watched (`watch`): the ticker polls them all
  with one `epoll` call before each stage, and a step skips the read of a socket that
  had nothing (`readable`). A read of an empty non-blocking socket costs ~1.5 us in
  Python (a system call and an exception); a repair or control socket is empty at most
  ticks, so one poll for all of them is cheaper than a try on each.
- With `os_timer` the ticks come from a periodic kernel timer (`PeriodicTimer`, Linux
  timerfd) instead of `trio.sleep_until`: half the CPU per wake-up and ~0.1 ms late
  instead of ~0.6 ms (see `_timerfd`); for the system clock only (not a MockClock).
- A link's pacer starts half a period off the ticks (`pacer_start_ns`): its chunks then
  fall due half-way between two ticks, so the wake-up lateness (~1-2 ms here) never
  decides whether a chunk is due at this tick or the next. Otherwise a sender whose chunk
  is due right at the tick sends none at one tick and two at the next, and its receiver
  sees its queue dip by a whole chunk (10 ms) now and then: noise for the latency tuner,
  and an underrun at small targets.
"""

from __future__ import annotations

import contextlib
import select
from collections.abc import Awaitable, Callable

import outcome
import trio

from ._timerfd import PeriodicTimer

__all__ = ["CONSUME", "PRODUCE", "Step", "TickHandle", "Ticker"]

#: A link's step: do what is due at `now_ns` (monotonic); True when the link is done.
Step = Callable[[int], Awaitable[bool]]

DEFAULT_PERIOD_NS = 10_000_000

PRODUCE = 0
"""Stage of sending links: they step first in every tick."""
CONSUME = 1
"""Stage of receiving links."""


def now_ns() -> int:
    """Trio's clock in integer nanoseconds (what every link passes around as `now_ns`)."""
    return round(trio.current_time() * 1e9)


class TickHandle:
    """A link's attachment to a ticker."""

    def __init__(self, ticker: Ticker, step: Step) -> None:
        self._ticker = ticker
        self.step = step
        self._done = trio.Event()
        self._result: outcome.Outcome[None] | None = None
        self.stage = 0

    def detach(self) -> None:
        """Stop stepping this link (idempotent)."""
        self._ticker._handles.discard(self)
        if self._result is None:
            self._result = outcome.Value(None)
        self._done.set()

    def _fail(self, error: BaseException) -> None:
        self._ticker._handles.discard(self)
        if self._result is None:
            self._result = outcome.Error(error)
        self._done.set()

    async def wait(self) -> None:
        """Until the link finishes or is detached; re-raises its step's error. On
        cancellation the link is detached."""
        try:
            await self._done.wait()
        finally:
            self.detach()
        assert self._result is not None
        self._result.unwrap()


def _stage(handle: TickHandle) -> int:
    return handle.stage


class Ticker:
    """Runs attached steps every `period_ns`; see the module docstring."""

    def __init__(self, period_ns: int = DEFAULT_PERIOD_NS, *, os_timer: bool = False) -> None:
        if period_ns <= 0:
            raise ValueError(f"tick period must be > 0 ns, got {period_ns}")
        self.period_ns = period_ns
        self.os_timer = os_timer
        """Tick from a kernel timer where there is one (see the module docstring)."""
        self._handles: set[TickHandle] = set()
        self._order: list[TickHandle] = []
        self.ticks = 0
        self.late_ticks = 0  # woke up more than a period late
        self._next_tick_ns: int | None = None
        self.tick_ns: int | None = None
        """Nominal time of the tick being stepped (of the last one between ticks)."""
        self._epoll: select.epoll | None = None
        self._watched: set[int] = set()
        self._ready: set[int] = set()

    def watch(self, fd: int) -> None:
        """Poll file descriptor `fd` for data before each stage of every tick (see
        `readable`); `unwatch` it before it is closed."""
        if fd in self._watched:
            return
        if self._epoll is None:
            self._epoll = select.epoll()
        self._epoll.register(fd, select.EPOLLIN)
        self._watched.add(fd)

    def unwatch(self, fd: int) -> None:
        """Stop polling `fd` (idempotent)."""
        if fd not in self._watched:
            return
        self._watched.discard(fd)
        self._ready.discard(fd)
        if self._epoll is not None:
            with contextlib.suppress(OSError):  # already closed: epoll forgot it
                self._epoll.unregister(fd)

    def readable(self, fd: int) -> bool:
        """Whether `fd` had data when the current stage of this tick began; True for a
        file descriptor that is not watched (read it to know)."""
        return fd in self._ready or fd not in self._watched

    def _poll(self) -> None:
        if self._epoll is not None and self._watched:
            events = self._epoll.poll(0, len(self._watched))
            self._ready = {fd for fd, _mask in events}

    def pacer_start_ns(self, now_ns: int, *, lead_ns: int | None = None) -> int:
        """Start time for a link's `Pacer` (chunks of about one period): `lead_ns` (half
        a period by default) before the next tick, so chunks fall due that long before
        the ticks. `now_ns` when the ticker is not running.

        Ticks are never early, so any lead keeps a chunk at its own tick; what the lead
        decides is how late a tick may be before it also takes the next chunk, early: a
        period minus the lead. A sender with a small lead never sends a burst ahead of
        its time unless a tick is almost a period late (see SendLink)."""
        if self._next_tick_ns is None:
            return now_ns
        lead = self.period_ns // 2 if lead_ns is None else lead_ns
        return self._next_tick_ns - lead

    @property
    def attached(self) -> int:
        return len(self._handles)

    def attach(self, step: Step, *, stage: int = 0) -> TickHandle:
        """Step `step` from the next tick on; `wait` on the handle for its end.

        Within a tick, links step by `stage` (then in attach order): senders use
        `PRODUCE`, receivers `CONSUME`, so what a process sends to itself in a tick is
        there when it reads, and after a stall the senders catch up before the receivers
        read (else a receiver reads chunks whose packets are still to be sent)."""
        handle = TickHandle(self, step)
        handle.stage = stage
        self._handles.add(handle)
        self._order.append(handle)
        self._order.sort(key=_stage)  # stable: attach order within a stage
        return handle

    async def run(self, *, task_status: trio.TaskStatus[Ticker] = trio.TASK_STATUS_IGNORED) -> None:
        """Tick until cancelled. Attached links see no more steps once it stops (their
        owners are cancelled with it when they live in the same nursery)."""
        deadline = now_ns()
        timer = PeriodicTimer.create(self.period_ns) if self.os_timer else None
        self._next_tick_ns = deadline + self.period_ns
        task_status.started(self)
        try:
            if timer is None:
                await self._tick(deadline)
            else:
                await self._tick_on_timer(deadline, timer)
        finally:
            if timer is not None:
                trio.lowlevel.notify_closing(timer.fd)
                timer.close()
            if self._epoll is not None:
                self._epoll.close()
                self._epoll = None
            self._watched.clear()
            self._ready.clear()

    async def _tick(self, deadline: int) -> None:
        while True:
            deadline += self.period_ns
            self._next_tick_ns = deadline
            await trio.sleep_until(deadline / 1e9)
            now = now_ns()
            if now - deadline > self.period_ns:
                self.late_ticks += 1
                deadline = now  # do not replay missed ticks: the pacers catch up
                self._next_tick_ns = deadline + self.period_ns
            self.tick_ns = deadline
            await self._step_all(now)

    async def _tick_on_timer(self, deadline: int, timer: PeriodicTimer) -> None:
        """Ticks on the kernel's schedule: `deadline` + k periods, missed ones coalesced
        (the pacers catch up)."""
        period = self.period_ns
        while True:
            await trio.lowlevel.wait_readable(timer.fd)
            missed = timer.expirations()
            if missed == 0:
                continue
            if missed > 1:
                self.late_ticks += 1
            deadline += missed * period
            self._next_tick_ns = deadline + period
            self.tick_ns = deadline
            await self._step_all(now_ns())

    async def _step_all(self, now: int) -> None:
        """One tick: every attached step, stage by stage."""
        self.ticks += 1
        self._order = [h for h in self._order if h in self._handles]
        stage = None
        for handle in list(self._order):
            if handle not in self._handles:
                continue
            if handle.stage != stage:
                stage = handle.stage
                self._poll()  # what the earlier stages sent is there now
            try:
                finished = await handle.step(now)
            except Exception as error:
                handle._fail(error)
                continue
            if finished:
                handle.detach()
