"""Pacing an unclocked source (file, tone) by the system clock.

A device produces frames at its own pace; a file or a generator produces them as fast
as it is asked. `Paced` makes the second behave like the first: each read returns when
the frames it returns would have been captured, measured from the first read on
`trio.current_time()` (so tests pace on a MockClock). It follows the schedule rather than
sleeping a fixed period per read, so late wake-ups do not add up to drift.
"""

import trio

from ._driver import FrameSource
from ._format import Frames, SampleSpec


class Paced:
    """A clocked view of an unclocked FrameSource."""

    def __init__(self, source: FrameSource) -> None:
        self._source = source
        self._start: float | None = None
        self._frames = 0  # frames returned since the first read

    @property
    def spec(self) -> SampleSpec:
        return self._source.spec

    @property
    def clocked(self) -> bool:
        return True

    async def read(self, frames: int) -> Frames:
        """The next `frames` frames, no earlier than their place in real time.

        Cancellation while waiting loses nothing (the source was not read yet).
        """
        if self._start is None:
            self._start = trio.current_time()
        await trio.sleep_until(self._start + (self._frames + frames) / self.spec.rate)
        block = await self._source.read(frames)
        self._frames += len(block)
        return block
