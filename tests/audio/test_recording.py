"""Recordings: a WAV valid on disk at every moment, the flusher, formats and path errors."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import trio

from rocd.audio import (
    AudioError,
    Recording,
    SampleSpec,
    Tone,
    ToneGenerator,
    Unsupported,
    WavFile,
    open_recording,
    recording_format,
    wav_header,
)
from rocd.audio._wav import wav_header_size

SPEC = SampleSpec(44100, 2)


def noise(frames: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (frames, channels)).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_a_wav_reads_back_exactly_after_every_append(tmp_path: Path, channels: int) -> None:
    spec = SampleSpec(48000, channels)
    path = tmp_path / "x.wav"
    wav = WavFile(str(path), spec)
    try:
        assert sf.info(str(path)).frames == 0  # valid from the start, empty
        written = []
        for i in range(3):
            block = noise(1000 + i, channels, seed=i)
            wav.append(block)
            written.append(block)
            # The file on disk now, as a crash would leave it: every block so far.
            data, rate = sf.read(path, dtype="float32", always_2d=True)
            assert rate == 48000
            assert np.array_equal(data, np.concatenate(written))
    finally:
        wav.close()
    info = sf.info(str(path))
    assert info.subtype == "FLOAT"
    assert info.format == ("WAVEX" if channels > 2 else "WAV")


@pytest.mark.parametrize("existing", [False, True])
def test_a_wav_path_never_shows_a_missing_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    """Whenever the file is written to, what `path` holds is a readable WAV (or nothing
    yet): a reader (or a kill -9) between creating the file and writing its header must
    not find an empty file, nor an old recording cut to nothing."""
    path = tmp_path / "x.wav"
    if existing:
        sf.write(path, noise(100), 48000, subtype="FLOAT")
    seen: list[int | None] = []
    write = os.write

    def checked_write(fd: int, data: bytes | memoryview) -> int:
        seen.append(sf.info(str(path)).frames if path.exists() else None)
        return write(fd, data)

    monkeypatch.setattr(os, "write", checked_write)
    wav = WavFile(str(path), SPEC)
    wav.append(noise(441))
    wav.close()
    monkeypatch.undo()
    assert seen == [100 if existing else None, 0]  # header, then samples
    assert sf.info(str(path)).frames == 441
    assert not [p.name for p in tmp_path.iterdir() if p.name != "x.wav"]


def test_samples_beyond_the_header_sizes_are_ignored_not_read(tmp_path: Path) -> None:
    # Killed between writing samples and rewriting the header: the header still counts
    # the previous append only, and that is what a reader gets.
    path = tmp_path / "x.wav"
    wav = WavFile(str(path), SPEC)
    first = noise(500)
    wav.append(first)
    with path.open("ab") as f:
        f.write(noise(300, seed=1).tobytes())
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    assert np.array_equal(data, first)
    wav.close()


def test_the_header_becomes_rf64_past_the_riff_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.wav"
    header = wav_header_size(SPEC)
    # A limit that 1000 frames (8000 bytes) pass: the same layout as past 4 GiB.
    wav = WavFile(str(path), SPEC, riff_limit=header + 4000)
    blocks = [noise(400, seed=1), noise(600, seed=2)]
    for block in blocks:
        wav.append(block)
    wav.close()
    raw = path.read_bytes()
    assert raw[:4] == b"RF64"
    assert struct.unpack_from("<I", raw, 4)[0] == 0xFFFFFFFF
    assert raw[12:16] == b"ds64"
    riff, data_size, frames = struct.unpack_from("<QQQ", raw, 20)
    assert (riff, data_size, frames) == (len(raw) - 8, 1000 * 8, 1000)
    assert sf.info(str(path)).format == "RF64"
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    assert np.array_equal(data, np.concatenate(blocks))


def test_the_header_has_a_fixed_size() -> None:
    for frames in (0, 1, 10**6, 10**9):
        assert len(wav_header(SPEC, frames)) == wav_header_size(SPEC)


def test_formats_come_from_the_extension() -> None:
    assert recording_format("a.wav") == ("WAV", "FLOAT")
    assert recording_format("a.FLAC") == ("FLAC", "PCM_24")
    assert recording_format("a.ogg") == ("OGG", "VORBIS")
    with pytest.raises(Unsupported, match="cannot record MP3 files"):
        recording_format("x.mp3")
    with pytest.raises(Unsupported, match="without an extension"):
        recording_format("/tmp/x")


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll `condition` (the file system has no event to wait on) until it holds (5 s)."""
    with trio.fail_after(5):
        for _ in range(501):
            if condition():
                return
            await trio.sleep(0.01)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def record(path: Path, blocks: list[np.ndarray], **kwargs: float) -> Recording:
    async with open_recording(path, SPEC, **kwargs) as recording:
        for block in blocks:
            await recording.write(block)
    return recording


async def test_a_recording_in_blocks_is_whole_whatever_the_flush_size(tmp_path: Path) -> None:
    blocks = [noise(441, seed=i) for i in range(25)]
    rec = await record(tmp_path / "a.wav", blocks, flush_s=0.03)  # 1323 frames a flush
    assert rec.frames == 25 * 441
    data, _ = sf.read(tmp_path / "a.wav", dtype="float32", always_2d=True)
    assert np.array_equal(data, np.concatenate(blocks))


async def test_a_wav_is_on_disk_while_recording(tmp_path: Path) -> None:
    path = tmp_path / "live.wav"
    tone = ToneGenerator(Tone(kind="sine"), SPEC)
    async with open_recording(path, SPEC, flush_s=0.1) as recording:
        for _ in range(30):  # 0.3 s: three flushes handed over
            await recording.write(tone.generate(441))
        await wait_until(lambda: path.exists() and sf.info(str(path)).frames >= 3 * 4410)
        # What a SIGKILL now would leave: a valid file with what was flushed.
        copy = tmp_path / "copy.wav"
        shutil.copyfile(path, copy)
    data, _ = sf.read(copy, dtype="float32", always_2d=True)
    assert len(data) == 3 * 4410
    assert np.abs(data).max() == pytest.approx(0.5, abs=1e-3)


async def test_a_cancelled_recording_is_finished(tmp_path: Path) -> None:
    blocks = [noise(441, seed=i) for i in range(7)]
    with trio.CancelScope() as scope:
        async with open_recording(tmp_path / "c.flac", SPEC) as recording:
            for block in blocks:
                await recording.write(block)
            scope.cancel()
            await trio.sleep_forever()
    assert names(tmp_path) == ["c.flac"]  # no .part left
    data, _ = sf.read(tmp_path / "c.flac", dtype="float32", always_2d=True)
    assert len(data) == 7 * 441
    assert np.allclose(data, np.concatenate(blocks), atol=2**-22)


async def test_flac_and_ogg_appear_only_when_finished(tmp_path: Path) -> None:
    for name in ("x.flac", "x.ogg"):
        async with open_recording(tmp_path / name, SPEC, flush_s=0.01) as recording:
            await recording.write(noise(4410))
            part = tmp_path / f".{name}.part"
            await wait_until(part.exists)
            assert not (tmp_path / name).exists()
        assert (tmp_path / name).exists()
        assert not (tmp_path / f".{name}.part").exists()
        assert sf.info(str(tmp_path / name)).frames == 4410


async def test_a_recording_that_fails_before_its_first_frame_leaves_the_file_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keep.wav"
    sf.write(path, noise(100), 44100, subtype="FLOAT")
    before = path.read_bytes()
    with pytest.raises(OSError, match="port in use"):
        async with open_recording(path, SPEC):
            raise OSError("port in use")  # e.g. the receiver could not bind
    assert path.read_bytes() == before
    # A recording that ends cleanly with nothing in it is an empty, valid file.
    await record(tmp_path / "empty.wav", [])
    assert sf.info(str(tmp_path / "empty.wav")).frames == 0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing/x.wav", "no such directory"),
        ("file.txt/x.wav", "is not a directory"),
        ("adir.wav", "it is a directory"),
        ("x.mp3", "cannot record MP3 files"),
    ],
)
async def test_unwritable_paths_are_refused_at_once(
    tmp_path: Path, name: str, message: str
) -> None:
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "adir.wav").mkdir()
    with pytest.raises(AudioError, match=message):
        async with open_recording(tmp_path / name, SPEC):
            pass


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (mounting needs root, which the test machines give)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill the disk needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


async def test_a_full_disk_is_an_audio_error_and_keeps_what_fitted(tiny_disk: Path) -> None:
    path = tiny_disk / "full.wav"
    with pytest.raises(AudioError, match="No space left on device"):  # noqa: PT012
        async with open_recording(path, SPEC, flush_s=0.01) as recording:
            with trio.fail_after(10):
                while True:
                    await recording.write(noise(441))
                    await trio.lowlevel.checkpoint()
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    assert 0 < len(data) * 8 < 64 * 1024
