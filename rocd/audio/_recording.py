"""Recording into a file without slowing the audio path, and without losing it on a crash.

`Recording.write` only copies the frames into a buffer: it never touches the disk. Every
`flush_s` (0.5 s) of audio the buffer goes to a flusher task, which appends it in a worker
thread. So the audio path (a receiver's tick, a device's pump) costs one memory copy per
block and one thread hop per half second, instead of a thread hop and a system call per
10 ms block; a slow disk delays the flusher, not the audio (the queue holds `QUEUE_S` of
audio before `write` waits).

What a crash leaves, by format:
- WAV (`WavFile`): written in place at the target path, the header's sizes kept current
  on every flush. Killed at any moment, the file is a valid WAV holding everything up to
  the last flush (at most `flush_s` plus one disk write lost).
- FLAC and OGG (libsndfile): these formats are finished only on close, so they are
  written to a hidden `.NAME.part` beside the target and renamed when the recording
  ends, also on cancellation: the target path only ever holds a complete file.

The target file is created on the first flush (or at the end, empty, if nothing came),
so a recorder that fails to start (its port in use) does not truncate an existing file.
When the recording ends, however (normal end, cancellation, an error), what was given to
`write` is flushed and the file is finished: the end runs shielded.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import soundfile as sf
import trio

from ._errors import AudioError, Unsupported
from ._format import Frames, SampleSpec, as_frames
from ._tasks import open_service_nursery
from ._wav import WavFile

__all__ = [
    "FORMATS",
    "Recording",
    "check_recording_path",
    "open_recording",
    "recording_format",
    "sndfile_reason",
]

#: Recording formats by extension: (libsndfile container, subtype).
FORMATS: Final = {
    ".wav": ("WAV", "FLOAT"),
    ".flac": ("FLAC", "PCM_24"),
    ".ogg": ("OGG", "VORBIS"),
}

#: Audio buffered before it goes to the disk (seconds): what a crash may lose.
FLUSH_S: Final = 0.5
#: Audio the flusher may fall behind by (seconds) before `write` waits for the disk.
QUEUE_S: Final = 30.0


def recording_format(path: Path | str) -> tuple[str, str]:
    """(container, subtype) a recording to `path` is written in; Unsupported when its
    extension names no format we can write."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(FORMATS)
        what = f"{suffix[1:].upper()} files" if suffix else "a file without an extension"
        raise Unsupported(f"cannot record {what} ({path}): use {known}")
    return FORMATS[suffix]


def check_recording_path(path: Path) -> None:
    """AudioError with the reason when a recording cannot be written at `path` (missing
    or unwritable directory, a directory in the way, a format we cannot write). Blocking."""
    recording_format(path)
    parent = path.parent
    if not parent.exists():
        raise AudioError(f"cannot write {path}: no such directory {parent}")
    if not parent.is_dir():
        raise AudioError(f"cannot write {path}: {parent} is not a directory")
    if path.is_dir():
        raise AudioError(f"cannot write {path}: it is a directory")
    if path.exists() and not path.is_file():
        raise AudioError(f"cannot write {path}: not a regular file")
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK):
        raise AudioError(f"cannot write {path}: permission denied")


class _Target(Protocol):
    def append(self, block: Frames) -> None: ...

    def close(self, *, keep: bool) -> None: ...


class _WavTarget:
    """A WAV at its final path, valid at every moment (see `WavFile`)."""

    def __init__(self, path: Path, spec: SampleSpec) -> None:
        self._path, self._spec = path, spec
        self._file: WavFile | None = None

    def append(self, block: Frames) -> None:
        if self._file is None:
            self._file = WavFile(str(self._path), self._spec)
        self._file.append(block)

    def close(self, *, keep: bool) -> None:
        if self._file is None and keep:
            self._file = WavFile(str(self._path), self._spec)  # an empty recording
        if self._file is not None:
            self._file.close()


class _SndfileTarget:
    """A FLAC or OGG through libsndfile, at `.NAME.part` until it is closed."""

    def __init__(self, path: Path, spec: SampleSpec) -> None:
        self._path, self._spec = path, spec
        self._part = path.with_name(f".{path.name}.part")
        self._file: Any = None

    def _open(self) -> Any:
        container, subtype = recording_format(self._path)
        spec = self._spec
        return sf.SoundFile(
            str(self._part), "w", spec.rate, spec.channels, subtype, format=container
        )

    def append(self, block: Frames) -> None:
        if self._file is None:
            self._file = self._open()
        self._file.write(block)

    def close(self, *, keep: bool) -> None:
        if self._file is None and keep:
            self._file = self._open()
        if self._file is None:
            return
        try:
            self._file.close()
        finally:
            if self._part.exists():
                os.replace(self._part, self._path)


class Recording:
    """A recording in progress (see the module docstring); made by `open_recording`."""

    clocked = False

    def __init__(
        self, spec: SampleSpec, path: Path, channel: trio.MemorySendChannel[Frames], flush: int
    ) -> None:
        self.spec = spec
        self.path = path
        self.frames = 0  # frames given to `write`
        self._channel = channel
        self._flush_frames = flush
        self._buffer = np.empty((flush, spec.channels), np.float32)
        self._buffered = 0
        self.error: AudioError | None = None  # set when the flusher failed
        self.keep_empty = True  # make the file even if no frame came (cleared on failure)

    async def write(self, frames: Frames) -> None:
        """Take `frames` (float32, this spec). Returns at once unless the disk is more
        than QUEUE_S behind. Raises the flusher's AudioError once writing failed."""
        block = as_frames(frames, self.spec)
        while len(block):
            if self.error is not None:
                raise self.error
            room = self._flush_frames - self._buffered
            take = block[:room]
            self._buffer[self._buffered : self._buffered + len(take)] = take
            self._buffered += len(take)
            self.frames += len(take)
            block = block[len(take) :]
            if self._buffered == self._flush_frames:
                await self._hand_over()
        await trio.lowlevel.checkpoint()  # a loop of writes must stay cancellable

    async def _hand_over(self) -> None:
        full, self._buffered = self._buffer, 0
        self._buffer = np.empty_like(full)
        try:
            try:
                self._channel.send_nowait(full)
            except trio.WouldBlock:
                await self._channel.send(full)  # the disk is QUEUE_S behind: wait for it
        except trio.BrokenResourceError:
            raise self.error or AudioError(f"{self.path}: the recording has ended") from None

    def _take_rest(self) -> Frames | None:
        """What `write` buffered and did not hand over yet (at the end)."""
        rest = self._buffer[: self._buffered]
        self._buffered = 0
        return rest if len(rest) else None


@asynccontextmanager
async def open_recording(
    path: Path | str, spec: SampleSpec, *, flush_s: float = FLUSH_S
) -> AsyncIterator[Recording]:
    """Record into `path` (format by extension, see FORMATS). AudioError at once when it
    cannot be written there. Leaving the context, however, finishes the file; an error
    while writing (disk full) is raised as an AudioError."""
    target_path = Path(path)
    await trio.to_thread.run_sync(check_recording_path, target_path)
    target: _Target
    if target_path.suffix.lower() == ".wav":
        target = _WavTarget(target_path, spec)
    else:
        target = _SndfileTarget(target_path, spec)
    flush = max(1, round(flush_s * spec.rate))
    send, receive = trio.open_memory_channel[Frames](max(1, round(QUEUE_S / flush_s)))
    recording = Recording(spec, target_path, send, flush)
    async with open_service_nursery() as nursery:
        nursery.start_soon(_flusher, recording, receive, target)
        try:
            yield recording
        except BaseException:
            # A recording that never got a frame and failed (e.g. its port was taken)
            # leaves nothing behind; a started one is finished whatever ended it.
            recording.keep_empty = False
            raise
        finally:
            # The flusher writes what is queued and what is left in the buffer, then
            # finishes the file (shielded), and the nursery waits for it.
            send.close()
    if recording.error is not None:  # the last flush failed after the body was done
        raise recording.error


async def _flusher(
    recording: Recording, blocks: trio.MemoryReceiveChannel[Frames], target: _Target
) -> None:
    """Write each block handed over; once the channel is closed, the rest, then finish the
    file. Shielded: a cancelled recording is still written out to its last frame."""
    with trio.CancelScope(shield=True):
        async with blocks:  # closed (writers then fail) only once `error` is set
            try:
                async for block in blocks:
                    await trio.to_thread.run_sync(target.append, block)
                rest = recording._take_rest()
                if rest is not None:
                    await trio.to_thread.run_sync(target.append, rest)
                keep = recording.keep_empty or recording.frames > 0
                await trio.to_thread.run_sync(lambda: target.close(keep=keep))
            except (OSError, sf.LibsndfileError, RuntimeError) as exc:
                # `write` raises it in the recording task (which ends the recording), or
                # leaving `open_recording` does: raised once, by the owner, not here.
                reason = sndfile_reason(exc)
                recording.error = AudioError(f"cannot write {recording.path}: {reason}")
                with contextlib.suppress(OSError, sf.LibsndfileError, RuntimeError):
                    await trio.to_thread.run_sync(lambda: target.close(keep=True))


def sndfile_reason(exc: BaseException) -> str:
    """The useful end of a libsndfile or OS error's message."""
    text = str(exc)
    if isinstance(exc, sf.LibsndfileError) and ":" in text:
        text = text.rsplit(":", 1)[1].strip()
    return getattr(exc, "strerror", None) or text
