"""A WAV recording that is a valid file at every moment: crash-safe float32 WAV / RF64.

libsndfile writes a WAV's sizes when the file is closed: a recorder killed before that
(SIGKILL, a power cut, the OOM killer) leaves a header that says "no data", or no file
at all when it wrote to a temporary name. `WavFile` writes the header itself and keeps
its sizes current: every `append` writes the samples, makes them durable (fdatasync),
then rewrites the header with the new sizes. Whatever stops the process, the file on
disk is a valid WAV holding every sample up to the last `append` (the header never
claims samples that are not on disk yet; at worst it claims fewer).

The header has a fixed size, so the data never moves. Its layout (EBU Tech 3306):

    RIFF <size> WAVE | JUNK (28 bytes) | fmt  (IEEE float) | fact <frames> | data <size>

The JUNK chunk reserves the room of a `ds64` chunk: when the data outgrows the 4 GiB a
RIFF size can count (3.4 hours of 44.1 kHz stereo float32), the same header is rewritten
as RF64 in place (`RF64`, `ds64` with 64-bit sizes, 32-bit sizes set to 0xFFFFFFFF),
which libsndfile, ffmpeg and sox read. Samples are float32 little-endian, the frame
convention of the whole audio layer, so a block is written as it is.

The pure part (`wav_header`) is bytes in, bytes out; `WavFile` is blocking (call it from
a worker thread).
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
from collections.abc import Callable
from typing import Final

import numpy as np

from ._format import Frames, SampleSpec

__all__ = ["RIFF_LIMIT", "WavFile", "wav_header", "wav_header_size"]

#: Largest RIFF chunk size a 32-bit field holds; beyond it the file becomes RF64.
RIFF_LIMIT: Final = 0xFFFFFFFF

_WAVE_FORMAT_IEEE_FLOAT: Final = 0x0003
_WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE
#: KSDATAFORMAT_SUBTYPE_IEEE_FLOAT, as stored in a WAVE_FORMAT_EXTENSIBLE fmt chunk.
_SUBTYPE_IEEE_FLOAT: Final = bytes.fromhex("0300000000001000800000aa00389b71")
_DS64_SIZE: Final = 28  # riff size, data size, sample count (u64 each), table length (u32)


def _fmt_chunk(spec: SampleSpec) -> bytes:
    """The fmt chunk: plain IEEE float up to stereo, WAVE_FORMAT_EXTENSIBLE beyond (as
    the format asks for more than two channels)."""
    align = spec.bytes_per_frame
    common = (spec.channels, spec.rate, spec.rate * align, align, 32)
    if spec.channels <= 2:
        body = struct.pack("<HHIIHHH", _WAVE_FORMAT_IEEE_FLOAT, *common, 0)
    else:
        body = struct.pack("<HHIIHHHHI", _WAVE_FORMAT_EXTENSIBLE, *common, 22, 32, 0)
        body += _SUBTYPE_IEEE_FLOAT
    return b"fmt " + struct.pack("<I", len(body)) + body


def wav_header_size(spec: SampleSpec) -> int:
    """Bytes before the first sample (the same whatever the data size)."""
    return 12 + 8 + _DS64_SIZE + len(_fmt_chunk(spec)) + 12 + 8


def wav_header(spec: SampleSpec, frames: int, *, riff_limit: int = RIFF_LIMIT) -> bytes:
    """The header of a float32 WAV holding `frames` frames; RF64 once the RIFF size
    would pass `riff_limit` (lowered only by tests)."""
    data_bytes = frames * spec.bytes_per_frame
    header_size = wav_header_size(spec)
    riff_size = header_size - 8 + data_bytes
    fmt = _fmt_chunk(spec)
    if riff_size <= riff_limit:
        head = b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        reserved = b"JUNK" + struct.pack("<I", _DS64_SIZE) + bytes(_DS64_SIZE)
        sizes = (frames, data_bytes)
    else:
        head = b"RF64" + struct.pack("<I", RIFF_LIMIT) + b"WAVE"
        ds64 = struct.pack("<QQQI", riff_size, data_bytes, frames, 0)
        reserved = b"ds64" + struct.pack("<I", _DS64_SIZE) + ds64
        sizes = (RIFF_LIMIT, RIFF_LIMIT)
    fact = b"fact" + struct.pack("<II", 4, min(sizes[0], RIFF_LIMIT))
    data = b"data" + struct.pack("<I", min(sizes[1], RIFF_LIMIT))
    header = head + reserved + fmt + fact + data
    assert len(header) == header_size
    return header


class WavFile:
    """A float32 WAV being recorded at `path` (created or truncated when opened).

    Blocking: run its methods in a worker thread. Not thread-safe: one caller at a time.
    """

    def __init__(self, path: str, spec: SampleSpec, *, riff_limit: int = RIFF_LIMIT) -> None:
        self.spec = spec
        self.frames = 0
        self._riff_limit = riff_limit
        header = wav_header(spec, 0, riff_limit=riff_limit)
        if not _is_regular_or_absent(path):  # a FIFO, a device: written in place
            self._fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            self._guard(lambda: self._write_all(header))
            return
        # Made beside the target and renamed over it once its header is written, so that
        # `path` never shows an empty or half-written header (a reader, or a kill -9, at
        # any moment finds a valid WAV).
        directory, name = os.path.split(path)
        new = os.path.join(directory, f".{name}.new")
        self._fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)

        def publish() -> None:
            self._write_all(header)
            os.replace(new, path)

        try:
            self._guard(publish)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(new)
            raise

    def _guard(self, step: Callable[[], None]) -> None:
        """Run `step`; on any error close the file before raising it."""
        try:
            step()
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            raise

    def append(self, block: Frames, *, sync: bool = True) -> None:
        """Add `block` (float32 frames of this spec) and bring the header up to date.

        With `sync`, the samples are made durable before the header counts them, so even
        a power cut leaves a valid file (the header then reaches the disk with the next
        append or `close`)."""
        if len(block) == 0:
            return
        data = np.ascontiguousarray(block, dtype="<f4")
        if data.ndim != 2 or data.shape[1] != self.spec.channels:
            raise ValueError(f"frames of shape {data.shape} do not fit {self.spec}")
        self._write_all(data.data.cast("B"))
        if sync:
            os.fdatasync(self._fd)
        self.frames += len(data)
        header = wav_header(self.spec, self.frames, riff_limit=self._riff_limit)
        os.pwrite(self._fd, header, 0)

    def close(self) -> None:
        """Make everything durable and close (idempotent)."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_all(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]


def _is_regular_or_absent(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
