"""Reading and writing one audio file by path (the `file:PATH` of `rocd send/recv`).

Any format libsndfile reads is a source; a sink's format follows its extension (.wav:
32-bit float, .flac: 24-bit, .ogg: Vorbis; anything else: WAV). A recording goes to a
hidden `.NAME.part` beside the target and is renamed when the writer closes, also on
cancellation (shielded), so the target path only ever holds a complete, valid file.
Blocking file calls run in a worker thread. Files are unclocked: whoever reads or writes
them paces them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import soundfile as sf
import trio

from ._errors import AudioError
from ._format import Frames, SampleSpec, as_frames

__all__ = ["FileReader", "FileWriter", "open_file_reader", "open_file_writer"]

#: Recording formats by extension: (libsndfile container, subtype).
FORMATS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24"), ".ogg": ("OGG", "VORBIS")}


def file_format(path: Path) -> tuple[str, str]:
    """(container, subtype) a recording to `path` is written in."""
    return FORMATS.get(path.suffix.lower(), FORMATS[".wav"])


class FileReader:
    """Frames of one file; a read returns fewer frames at its end, then none."""

    clocked = False

    def __init__(self, f: Any, spec: SampleSpec) -> None:
        self._file = f
        self.spec = spec
        self.frames = 0

    async def read(self, frames: int) -> Frames:
        block = await trio.to_thread.run_sync(
            lambda: self._file.read(frames, dtype="float32", always_2d=True)
        )
        self.frames += len(block)
        return as_frames(block, self.spec)


class FileWriter:
    """A recording in progress."""

    clocked = False

    def __init__(self, f: Any, spec: SampleSpec) -> None:
        self._file = f
        self.spec = spec
        self.frames = 0

    async def write(self, frames: Frames) -> None:
        block = as_frames(frames, self.spec)
        await trio.to_thread.run_sync(self._file.write, block)
        self.frames += len(block)


@asynccontextmanager
async def open_file_reader(path: Path | str) -> AsyncIterator[FileReader]:
    """Open `path` for reading; AudioError with the reason if it cannot be read as audio."""
    try:
        f = await trio.to_thread.run_sync(_open_for_reading, str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot read {path}: {_reason(exc)}") from None
    try:
        yield FileReader(f, SampleSpec(f.samplerate, f.channels))
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(f.close)


@asynccontextmanager
async def open_file_writer(path: Path | str, spec: SampleSpec) -> AsyncIterator[FileWriter]:
    """Record into `path` (complete and valid once the context is left, however)."""
    final = Path(path)
    part = final.with_name(f".{final.name}.part")
    container, subtype = file_format(final)
    try:
        f = await trio.to_thread.run_sync(
            lambda: sf.SoundFile(
                str(part), "w", spec.rate, spec.channels, subtype, format=container
            )
        )
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot write {final}: {_reason(exc)}") from None
    try:
        yield FileWriter(f, spec)
    finally:
        # Shielded: a cancelled recording must still end as a complete file.
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(finish_recording, f, part, final)


def _open_for_reading(path: str) -> Any:
    # libsndfile says "System error." for a missing file: say what is wrong first.
    if not os.path.isfile(path):
        raise AudioError(f"cannot read {path}: no such file")
    if not os.access(path, os.R_OK):
        raise AudioError(f"cannot read {path}: permission denied")
    return sf.SoundFile(path)


def finish_recording(f: Any, part: Path, final: Path) -> None:
    """Close a recording (libsndfile writes the header sizes) and give it its name."""
    try:
        f.close()
    finally:
        if part.exists():
            os.replace(part, final)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, sf.LibsndfileError) and ":" in text:
        text = text.rsplit(":", 1)[1].strip()
    return getattr(exc, "strerror", None) or text
