"""One source sent to several Roc slots: each `SendLink` fed the same frames, read once.

A device that several streams start from (a microphone sent to two rooms) is opened once;
a `FanoutLink` reads it chunk by chunk and hands every chunk to each attached link (its
own sender, socket and destinations), scaled by the link's gain. One loop per source,
whatever the number of streams, instead of a reader per stream.

Pacing is the source's, as in `SendLink.run`: a clocked source (a sound device) paces the
loop through its `read`, in its own task; an unclocked one (a file, a tone) is held to
real time by a `Pacer` and stepped by the shared `Ticker` at the PRODUCE stage, and is
not read while no link is attached (a file starts when its first stream does). The first
link attached to an idle unclocked source gets its first chunk at once, in `add`, and
the rest on the ticker's schedule (chunks due half a period before the ticks): waiting
for the next tick would hold every stream's first packet back by up to a period. An
unclocked source is read ahead in blocks of `read_ahead_ns` by a task of its own (a file
read is a thread hop: one per block, not one per 10 ms chunk, and never inside a tick,
where it would hold up every other link). Links are attached and detached between chunks.

A read shorter than asked ends the source: every attached link is flushed and finished
(`SendLink.finish`) and `ended` is set.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import trio

from ._pacer import Pacer
from ._send_link import FrameInput, SendLink
from ._ticker import PRODUCE, Ticker, now_ns

__all__ = ["FanoutLink", "FanoutSlot"]

DEFAULT_CHUNK_NS = 10_000_000
DEFAULT_READ_AHEAD_NS = 250_000_000

Frames = npt.NDArray[np.float32]


class FanoutSlot:
    """One link fed by a fan-out, and its gain (linear amplitude, 1.0 = unchanged)."""

    __slots__ = ("gain", "link")

    def __init__(self, link: SendLink, gain: float) -> None:
        self.link = link
        self.gain = gain


class FanoutLink:
    """Feeds the attached links from `source`; see the module docstring."""

    def __init__(
        self,
        source: FrameInput,
        *,
        ticker: Ticker,
        chunk_ns: int = DEFAULT_CHUNK_NS,
        read_ahead_ns: int = DEFAULT_READ_AHEAD_NS,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.source = source
        self.ticker = ticker
        rate = source.spec.rate
        self.chunk = max(1, rate * chunk_ns // 1_000_000_000)
        self._block = max(self.chunk, rate * read_ahead_ns // 1_000_000_000)
        self._wall_ns = wall_ns
        self._slots: list[FanoutSlot] = []
        self._ahead: deque[Frames] = deque()  # read ahead, not sent yet
        self._buffered = 0  # frames in `_ahead`
        self._wanted = trio.Event()  # set when the read-ahead runs low
        self.starved = 0  # ticks at which the source had not delivered in time
        self._source_ended = False
        self._pacer: Pacer | None = None  # an unclocked source's schedule while fed
        self._ticking = False  # an unclocked source's loop is running
        self.chunks = 0  # chunks read from the source
        self.ended = trio.Event()

    @property
    def slots(self) -> list[FanoutSlot]:
        return list(self._slots)

    def add(self, link: SendLink, gain: float = 1.0) -> FanoutSlot:
        """Feed `link` (opened: its socket bound) from the next chunk on."""
        udp = link.udp
        if udp is None:
            raise RuntimeError("open the link before attaching it")
        slot = FanoutSlot(link, gain)
        self._slots.append(slot)
        if not self.source.clocked:
            self.ticker.watch(udp.fd)
            if self._pacer is None and self._ticking:
                self._start(now_ns())
        return slot

    def remove(self, slot: FanoutSlot) -> None:
        """Stop feeding `slot`'s link (idempotent); the caller finishes the link."""
        if slot in self._slots:
            self._slots.remove(slot)
            udp = slot.link.udp
            if not self.source.clocked and udp is not None:
                self.ticker.unwatch(udp.fd)

    def _feed(self, frames: Frames, capture_ns: int) -> None:
        for slot in self._slots:
            if slot.gain == 1.0:
                slot.link.write(frames, capture_ns)
            else:
                slot.link.write(frames * np.float32(slot.gain), capture_ns)

    async def run(self) -> None:
        """Feed the links until the source ends (then finish them and return) or the task
        is cancelled. The source's errors (a device that went away) are raised."""
        try:
            if self.source.clocked:
                await self._run_clocked()
            else:
                await self._run_ticked()
        finally:
            if self._source_ended:
                for slot in self._slots:
                    slot.link.finish()
                self.ended.set()

    async def _run_clocked(self) -> None:
        rate = self.source.spec.rate
        chunk = self.chunk
        while True:
            frames = await self.source.read(chunk)
            self.chunks += 1
            # The device delivered these frames just now: they were captured one chunk ago.
            if len(frames):
                self._feed(frames, self._wall_ns() - len(frames) * 1_000_000_000 // rate)
            now = now_ns()
            for slot in self._slots:
                slot.link.service(now)
            if len(frames) < chunk:
                self._source_ended = True
                return

    async def _prefetch(self) -> None:
        """Keep `read_ahead` to two blocks of an unclocked source read ahead, off the
        ticker (a file read is a thread hop: it must not hold up every other link)."""
        while not self._source_ended:
            if self._buffered >= 2 * self._block:
                self._wanted = trio.Event()
                await self._wanted.wait()
                continue
            block = await self.source.read(self._block)
            if len(block):
                self._ahead.append(block)
                self._buffered += len(block)
            if len(block) < self._block:
                self._source_ended = True

    def _take(self, frames: int) -> Frames | None:
        """The next `frames` frames read ahead; fewer only at the end of the source; None
        while the source is behind (the pacer then catches up when it is back)."""
        if self._buffered < frames and not self._source_ended:
            return None
        out: list[Frames] = []
        left = frames
        while left and self._ahead:
            head = self._ahead[0]
            if len(head) <= left:
                out.append(self._ahead.popleft())
                left -= len(head)
            else:
                out.append(head[:left])
                self._ahead[0] = head[left:]
                left = 0
        taken = frames - left
        self._buffered -= taken
        if self._buffered < 2 * self._block:
            self._wanted.set()
        if len(out) == 1:
            return out[0]
        if not out:
            return np.zeros((0, self.source.spec.channels), np.float32)
        return np.concatenate(out)

    def _start(self, now: int) -> bool:
        """Start feeding an unclocked source's links: its first chunk is due `now`, and the
        next ones half a period before the ticks (`Ticker.pacer_start_ns`), so it is sent
        now and the rest at their ticks. False (nothing started) while it is not read yet:
        it then starts on time once it is, not in a burst."""
        if self._buffered < self.chunk and not self._source_ended:
            return False
        start = self.ticker.pacer_start_ns(now)
        while start > now:  # between two ticks: the last due time before now
            start -= self.ticker.period_ns
        self._pacer = Pacer(
            self.source.spec.rate,
            start,
            chunk_samples=self.chunk,
            wall_start_ns=self._wall_ns() + start - now,
            max_lag_ns=10**9,
        )
        self._send_due(now, self._pacer)
        return True

    def _send_due(self, now: int, pacer: Pacer) -> bool:
        """Feed the links every chunk due at `now`; True once the source has ended."""
        chunk = self.chunk
        for _ in range(pacer.due(now)):
            frames = self._take(chunk)
            if frames is None:
                self.starved += 1
                break
            self.chunks += 1
            if len(frames):
                self._feed(frames, pacer.capture_ns(pacer.sent_samples))
                pacer.sent(len(frames))
            if len(frames) < chunk:
                return True
        return False

    async def _run_ticked(self) -> None:
        ticker = self.ticker

        async def step(now: int) -> bool:
            if not self._slots:
                # Nothing attached: an unclocked source waits (a file's start is not lost
                # before its first stream is committed), and restarts on time after.
                self._pacer = None
                return False
            if self._pacer is None and not self._start(now):
                return False
            assert self._pacer is not None
            finished = self._send_due(now, self._pacer)
            for slot in self._slots:
                udp = slot.link.udp
                slot.link.service(now, readable=udp is None or ticker.readable(udp.fd))
            return finished

        self._ticking = True
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._prefetch)
                await ticker.attach(step, stage=PRODUCE).wait()
                nursery.cancel_scope.cancel()
        finally:
            self._ticking = False
            self._pacer = None
