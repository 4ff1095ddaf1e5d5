"""One source, several readers: each reader gets every frame, the source is read once.

A sender with several destinations (`rocd send -s A ... -s B ...`) runs one link per
destination; they all read the same input through a `Tee`. Readers may run at slightly
different moments (each link steps on its own schedule): what one reader has not taken yet
is kept, up to `max_lag` frames; a reader further behind than that skips ahead (it loses
frames rather than hold the others' memory hostage).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import trio

from ._format import Frames, SampleSpec

__all__ = ["Tee"]


class _Source(Protocol):
    @property
    def spec(self) -> SampleSpec: ...

    @property
    def clocked(self) -> bool: ...

    async def read(self, frames: int) -> Frames: ...


class Tee:
    """Fans `source` out to `count` readers (`tee.readers[i]`)."""

    def __init__(self, source: _Source, count: int, *, max_lag: int | None = None) -> None:
        if count < 1:
            raise ValueError(f"a tee needs at least one reader, got {count}")
        self._source = source
        self.spec: SampleSpec = source.spec
        self.clocked: bool = source.clocked
        self._max_lag = max_lag if max_lag is not None else 10 * self.spec.rate
        self._chunks: list[Frames] = []
        self._start = 0  # stream position of the first kept frame
        self._end = 0  # stream position after the last frame read from the source
        self._ended = False
        self._lock = trio.Lock()
        self.readers = [TeeReader(self) for _ in range(count)]
        self.skipped = 0  # frames readers lost by lagging too far behind

    async def _fill(self, until: int) -> None:
        async with self._lock:  # one reader reads the source; the others wait for it
            while self._end < until and not self._ended:
                need = until - self._end
                block = await self._source.read(need)
                if len(block):
                    self._chunks.append(block)
                    self._end += len(block)
                # A source returns fewer frames than asked only at its end.
                self._ended = len(block) < need

    def _slice(self, start: int, stop: int) -> Frames:
        data = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks = [data]
        return data[start - self._start : stop - self._start]

    def _trim(self) -> None:
        oldest = min(r.position for r in self.readers)
        if self._end - oldest > self._max_lag:
            floor = self._end - self._max_lag
            for r in self.readers:
                if r.position < floor:
                    self.skipped += floor - r.position
                    r.position = floor
            oldest = floor
        if oldest > self._start and self._chunks:
            data = np.concatenate(self._chunks)
            self._chunks = [data[oldest - self._start :]]
            self._start = oldest


class TeeReader:
    """One reader's view of a Tee (a frame source like the one it wraps)."""

    def __init__(self, tee: Tee) -> None:
        self._tee = tee
        self.position = 0

    @property
    def spec(self) -> SampleSpec:
        return self._tee.spec

    @property
    def clocked(self) -> bool:
        return self._tee.clocked

    async def read(self, frames: int) -> Frames:
        """The next `frames` frames; fewer at the end of the source."""
        tee = self._tee
        if self.position < tee._start:  # skipped ahead while lagging
            self.position = tee._start
        want = self.position + frames
        if tee._end < want and not tee._ended:
            await tee._fill(want)
        stop = min(want, tee._end)
        if stop <= self.position:
            return np.zeros((0, tee.spec.channels), np.float32)
        block = tee._slice(self.position, stop)
        self.position = stop
        tee._trim()
        return block
