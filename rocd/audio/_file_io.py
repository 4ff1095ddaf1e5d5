"""Reading and writing one audio file by path (the `file:PATH` of `rocd send/recv`).

Any format libsndfile reads is a source. A recording's format follows its extension
(.wav: 32-bit float, crash-safe; .flac: 24-bit; .ogg: Vorbis; see `_recording`); any
other extension is refused with a clear error rather than written as something else.

Files are unclocked: whoever reads or writes them paces them, 10 ms at a time. Blocking
file calls run in a worker thread, but a thread hop per 10 ms block costs more than the
block itself (and wakes the event loop twice): a reader fetches `READ_AHEAD_S` (1 s) per
hop and serves the small reads from memory; a recording buffers, see `Recording`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import numpy as np
import soundfile as sf
import trio

from ._errors import AudioError
from ._format import Frames, SampleSpec
from ._recording import Recording, open_recording, sndfile_reason

__all__ = ["READ_AHEAD_S", "BlockReader", "FileReader", "FileWriter", "open_file_reader",
           "open_file_writer", "open_sound_file"]  # fmt: skip

#: Audio a file reader fetches per worker-thread hop (seconds).
READ_AHEAD_S: Final = 1.0

FileWriter = Recording
"""A recording in progress (see `Recording`)."""


class BlockReader:
    """Frames of an open SoundFile, fetched `READ_AHEAD_S` at a time in a worker thread.

    A read returns fewer frames than asked only at the end of the file, then none.
    Returned blocks are views of a read-ahead block that is never written again."""

    def __init__(self, f: Any, spec: SampleSpec, *, read_ahead_s: float = READ_AHEAD_S) -> None:
        self._file = f
        self.spec = spec
        self._fetch = max(1, round(read_ahead_s * spec.rate))
        self._block: Frames = np.zeros((0, spec.channels), np.float32)
        self._pos = 0
        self._eof = False

    async def read(self, frames: int) -> Frames:
        if len(self._block) - self._pos < frames and not self._eof:
            await self._refill(frames)
        else:
            await trio.lowlevel.checkpoint()  # a loop of reads must stay cancellable
        start = self._pos
        self._pos = min(len(self._block), start + frames)
        return self._block[start : self._pos]

    async def _refill(self, frames: int) -> None:
        rest = self._block[self._pos :]
        want = max(self._fetch, frames - len(rest))
        fresh: Frames = await trio.to_thread.run_sync(
            lambda: self._file.read(want, dtype="float32", always_2d=True)
        )
        self._eof = len(fresh) < want
        self._block = np.concatenate((rest, fresh)) if len(rest) else fresh
        self._pos = 0


class FileReader(BlockReader):
    """An audio file opened for reading (see `open_file_reader`)."""

    clocked = False

    @property
    def frames(self) -> int:
        """Frames returned so far."""
        return int(self._file.tell()) - (len(self._block) - self._pos)


def open_sound_file(path: str) -> Any:
    """`path` opened for reading by libsndfile; AudioError saying what is wrong (libsndfile
    itself says "System error." for most of it). Blocking."""
    if os.path.isdir(path):
        raise AudioError(f"cannot read {path}: it is a directory")
    if not os.path.exists(path):
        raise AudioError(f"cannot read {path}: no such file")
    if not os.access(path, os.R_OK):
        raise AudioError(f"cannot read {path}: permission denied")
    try:
        return sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot read {path}: {sndfile_reason(exc)}") from None


@asynccontextmanager
async def open_file_reader(path: Path | str) -> AsyncIterator[FileReader]:
    """Open `path` for reading; AudioError with the reason if it cannot be read as audio."""
    f = await trio.to_thread.run_sync(open_sound_file, str(path))
    try:
        try:
            spec = SampleSpec(f.samplerate, f.channels)
        except ValueError as exc:
            raise AudioError(f"cannot read {path}: {exc}") from None
        yield FileReader(f, spec)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(f.close)


@asynccontextmanager
async def open_file_writer(path: Path | str, spec: SampleSpec) -> AsyncIterator[Recording]:
    """Record into `path` (see `Recording` for what a crash or a cancellation leaves)."""
    async with open_recording(path, spec) as recording:
        yield recording
