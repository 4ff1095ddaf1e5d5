"""Frames, tones, files, pacing and event fan-out: the parts that need no sound server."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import trio
import trio.testing

from rocd.audio import (
    DeviceAdded,
    DeviceChanged,
    DeviceInfo,
    DeviceRemoved,
    EventHub,
    FileDriver,
    Paced,
    SampleSpec,
    Tone,
    ToneDriver,
    ToneGenerator,
    apply_gain,
    as_frames,
    diff_devices,
    frames_from_s16,
    frames_to_s16,
)

SPEC = SampleSpec(48000, 2)


def test_sample_spec_bounds() -> None:
    assert SampleSpec().frames_for(0.01) == 480
    assert SampleSpec(44100, 1).bytes_per_frame == 4
    for rate, channels in ((0, 2), (48000, 0), (48000, 33)):
        with pytest.raises(ValueError, match="out of range"):
            SampleSpec(rate, channels)


def test_s16_round_trip_is_exact() -> None:
    every = np.arange(-32768, 32768, dtype=np.int16).reshape(-1, 2)
    assert np.array_equal(frames_to_s16(frames_from_s16(every)), every)
    loud = np.array([[1.5, -1.5]], np.float32)
    assert frames_to_s16(loud).tolist() == [[32767, -32768]]


def test_as_frames_checks_shape() -> None:
    assert as_frames(np.zeros(5), SampleSpec(48000, 1)).shape == (5, 1)
    with pytest.raises(ValueError, match="channel"):
        as_frames(np.zeros((5, 3)), SPEC)


def test_gain_follows_the_sound_server_scale() -> None:
    ones = np.ones((4, 2), np.float32)
    assert apply_gain(ones, 1.0, False) is ones
    assert np.allclose(apply_gain(ones, 0.5, False), 0.125)  # 50 % is -18 dB, as in PulseAudio
    assert not apply_gain(ones, 1.0, True).any()


@pytest.mark.parametrize("kind", ["sine", "sweep", "noise", "silence"])
def test_tones_are_continuous_across_blocks(kind: str) -> None:
    tone = Tone(kind=kind)  # type: ignore[arg-type]
    whole = ToneGenerator(tone, SPEC).generate(3000)
    gen = ToneGenerator(tone, SPEC)
    parts = np.concatenate([gen.generate(1000), gen.generate(1500), gen.generate(500)])
    assert np.allclose(parts, whole, atol=1e-6)
    assert whole.dtype == np.float32
    assert np.abs(whole).max() <= tone.amplitude + 1e-6


def test_sine_has_its_frequency() -> None:
    block = ToneGenerator(Tone(kind="sine", frequency=1000.0), SPEC).generate(SPEC.rate)
    spectrum = np.abs(np.fft.rfft(block[:, 0]))
    assert int(np.argmax(spectrum)) == 1000  # 1 Hz bins over one second
    with pytest.raises(ValueError, match="cannot be played"):
        ToneGenerator(Tone(kind="sine", frequency=30000.0), SPEC)


async def test_tone_volume_applies_between_blocks() -> None:
    tones = ToneDriver(SPEC)
    async with tones.open_capture("tone:sine") as cap:
        loud = await cap.read(480)
        await tones.set_volume("tone:sine", 0.5)
        quiet = await cap.read(480)
        assert np.abs(quiet).max() == pytest.approx(np.abs(loud).max() * 0.125, rel=1e-3)


async def test_tone_to_file_and_back_is_bit_exact(tmp_path: Path) -> None:
    tones, files = ToneDriver(SPEC), FileDriver(tmp_path)
    sink = await files.create_virtual("speaker", "noise", SPEC)
    assert sink.id == "file:sink:noise.wav"
    written = []
    async with tones.open_capture("tone:noise") as src, files.open_playback(sink.id) as out:
        for _ in range(10):
            block = await src.read(480)
            written.append(block)
            await out.write(block)
    devices = {d.id: d for d in await files.list_devices()}
    assert devices["file:source:noise.wav"].spec == SPEC
    async with files.open_capture("file:source:noise.wav") as back:
        assert not back.clocked
        read = [await back.read(480) for _ in range(10)]
        assert len(await back.read(480)) == 0  # the end of the file
    assert np.array_equal(np.concatenate(read), np.concatenate(written))


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_cancelled_recording_is_a_complete_file(tmp_path: Path) -> None:
    files = FileDriver(tmp_path)
    sink = await files.create_virtual("speaker", "cut.flac", SPEC)
    block = ToneGenerator(Tone(kind="sine"), SPEC).generate(480)
    with trio.CancelScope() as scope:
        async with files.open_playback(sink.id) as out:
            for _ in range(5):
                await out.write(block)
            scope.cancel()
            await out.write(block)  # cancelled here
    assert names(tmp_path) == ["cut.flac"]  # no partial file left behind
    data, rate = sf.read(tmp_path / "cut.flac", dtype="float32")
    assert rate == SPEC.rate
    assert len(data) in (5 * 480, 6 * 480)
    assert np.allclose(data[:480], block, atol=2**-22)  # 24-bit FLAC


async def test_files_added_behind_its_back_are_reported(tmp_path: Path) -> None:
    files = FileDriver(tmp_path)
    async with files.watch() as events:
        sf.write(tmp_path / "new.ogg", np.zeros((4800, 1), np.float32), 44100)
        (tmp_path / "notes.txt").write_text("not audio")
        devices = await files.list_devices()
        assert [d.id for d in devices] == ["file:source:new.ogg"]
        assert (devices[0].rate, devices[0].channels) == (44100, 1)
        added = events.receive_nowait()
        assert isinstance(added, DeviceAdded)
        (tmp_path / "new.ogg").unlink()
        assert await files.list_devices() == []
        assert isinstance(events.receive_nowait(), DeviceRemoved)
    sf.write(tmp_path / "a.wav", np.zeros((10, 2), np.float32), 44100)
    with pytest.raises(ValueError, match="does not convert"):
        async with files.open_capture("file:source:a.wav", SPEC):
            pass


async def test_paced_source_follows_the_clock(
    mock_clock: trio.testing.MockClock,
) -> None:
    mock_clock.autojump_threshold = 0
    async with ToneDriver(SPEC).open_capture("tone:sine") as cap:
        paced = Paced(cap)
        assert paced.clocked
        start = trio.current_time()
        for _ in range(100):
            await paced.read(480)
        assert trio.current_time() - start == pytest.approx(1.0)


def _info(device_id: str, volume: float = 1.0) -> DeviceInfo:
    return DeviceInfo(
        id=device_id,
        name=device_id,
        description="",
        direction="sink",
        driver="x",
        virtual=True,
        rate=48000,
        channels=2,
        volume=volume,
        mute=False,
        state="idle",
        clocked=True,
    )


def test_diff_devices() -> None:
    old = {"a": _info("a"), "b": _info("b")}
    new = {"b": _info("b", 0.5), "c": _info("c")}
    events = diff_devices(old, new)
    assert events == [
        DeviceRemoved(_info("a")),
        DeviceChanged(_info("b", 0.5)),
        DeviceAdded(_info("c")),
    ]
    assert diff_devices(new, new) == []


async def test_hub_ends_a_watcher_that_falls_behind() -> None:
    hub = EventHub()
    async with hub.watch(buffer=2) as slow, hub.watch(buffer=10) as fast:
        for name in "abc":
            hub.publish(DeviceAdded(_info(name)))
        assert len([e async for e in slow]) == 2  # then the channel ended
        assert [fast.receive_nowait() for _ in range(3)] == [DeviceAdded(_info(n)) for n in "abc"]
        hub.close()
        assert [e async for e in fast] == []
