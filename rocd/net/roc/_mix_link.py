"""Several Roc slots played into one sink: the sum of their `RecvLink`s, one loop per sink.

A daemon's streams that end on the same device (three senders into one speaker) each keep
their own slot (sockets, FEC scheme, latency settings, sessions), so each is a `RecvLink`;
the device, though, can be written by one writer only. A `MixLink` owns the sink and, for
every output chunk, pulls one chunk from each attached link, scales it by the link's gain
and writes the sum: one loop per device whatever the number of streams.

Pacing is the sink's, as in `RecvLink.run`: a clocked sink (a sound device) sets the pace
through its `write`, and the loop runs in its own task; an unclocked one (a file, a null
sink) is held to real time by a `Pacer` and stepped by the shared `Ticker`, whose poll
says which of the links' sockets have anything to read. Links are attached and detached
between chunks (the loop never waits on the control plane: `add`, `remove` and `gain` are
plain assignments). With no link attached the sink gets silence, so a device that streams
come and go on plays a continuous signal.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import trio

from ._pacer import Pacer
from ._recv_link import FrameOutput, RecvLink
from ._ticker import CONSUME, Ticker, now_ns

__all__ = ["MixLink", "MixSlot"]

DEFAULT_CHUNK_NS = 10_000_000  # Roc's I/O frame: 10 ms


class MixSlot:
    """One link attached to a mix, and its gain (linear amplitude, 1.0 = unchanged)."""

    __slots__ = ("gain", "link")

    def __init__(self, link: RecvLink, gain: float) -> None:
        self.link = link
        self.gain = gain


class MixLink:
    """Plays the sum of the attached links into `sink`; see the module docstring."""

    def __init__(
        self, sink: FrameOutput, *, ticker: Ticker, chunk_ns: int = DEFAULT_CHUNK_NS
    ) -> None:
        self.sink = sink
        self.ticker = ticker
        self.chunk = max(1, sink.spec.rate * chunk_ns // 1_000_000_000)
        self._slots: list[MixSlot] = []
        self.chunks = 0  # chunks written to the sink

    @property
    def slots(self) -> list[MixSlot]:
        return list(self._slots)

    def add(self, link: RecvLink, gain: float = 1.0) -> MixSlot:
        """Mix `link` (opened: its sockets bound) from the next chunk on."""
        slot = MixSlot(link, gain)
        self._slots.append(slot)
        if not self.sink.clocked:
            for fd in link.fds:
                self.ticker.watch(fd)
        return slot

    def remove(self, slot: MixSlot) -> None:
        """Stop mixing `slot`'s link (idempotent); the caller closes the link."""
        if slot in self._slots:
            self._slots.remove(slot)
            if not self.sink.clocked:
                for fd in slot.link.fds:
                    self.ticker.unwatch(fd)

    def mix(self, now: int, ticker: Ticker | None) -> npt.NDArray[np.float32]:
        """The next chunk: every link's next chunk, scaled and summed."""
        out: npt.NDArray[np.float32] | None = None
        for slot in self._slots:
            frames = slot.link.pull(self.chunk, now, ticker)  # a fresh array: ours to scale
            if slot.gain != 1.0:
                frames *= np.float32(slot.gain)
            if out is None:
                out = frames
            else:
                out += frames
        if out is None:
            return np.zeros((self.chunk, self.sink.spec.channels), np.float32)
        return out

    async def run(self) -> None:
        """Play until cancelled. The sink's errors (a device that went away) are raised;
        the links stay open and attached (the owner decides what becomes of them)."""
        if self.sink.clocked:
            while True:
                await self.sink.write(self.mix(now_ns(), None))
                self.chunks += 1
        ticker = self.ticker
        pacer = Pacer(
            self.sink.spec.rate,
            ticker.pacer_start_ns(now_ns()),
            chunk_samples=self.chunk,
            max_lag_ns=10**9,
        )
        done = trio.Event()

        async def step(now: int) -> bool:
            for _ in range(pacer.due(now)):
                await self.sink.write(self.mix(now, ticker))
                pacer.sent(self.chunk)
                self.chunks += 1
            return done.is_set()

        try:
            await ticker.attach(step, stage=CONSUME).wait()
        finally:
            done.set()
