"""One conformance suite that every audio driver passes (the AudioDriver seam).

Each case is a live driver plus the devices to exercise: a source to capture, a sink to
play into, a device whose volume can change, a device that is not virtual. PortAudio has
no sound card here; it runs through ALSA's `pulse` plugin into the test server, so its
streams run in a real PortAudio callback thread (its capture takes 1-2 s to deliver the
first frames through that plugin, which makes those cases the slow ones).
"""

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import numpy as np
import pytest
import soundfile as sf
import trio

from rocd.audio import (
    MAX_VOLUME,
    AudioDriver,
    DeviceAdded,
    DeviceChanged,
    DeviceEvent,
    DeviceInfo,
    DeviceNotFound,
    DeviceRemoved,
    FileDriver,
    PortAudioDriver,
    SampleSpec,
    Tone,
    ToneDriver,
    ToneGenerator,
    Unsupported,
    open_pulse_driver,
)
from tests.pulse_server import PulseServer

SPEC = SampleSpec(48000, 2)


class Case(msgspec.Struct):
    driver: AudioDriver
    source: str  # a device to capture from
    sink: str  # a device to play into
    plain: str  # a device that is not a virtual one of this driver
    volume_device: str  # a device whose volume and mute the driver can set


@pytest.fixture(params=["pulse", "file", "tone", "portaudio"])
async def case(
    request: pytest.FixtureRequest,
    pulse_server: PulseServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Case]:
    kind = request.param
    if kind == "pulse":
        async with open_pulse_driver(pulse_server.env) as pulse:
            spk = await pulse.create_virtual("speaker", "conf_spk", SPEC)
            try:
                # The speaker is both a sink and (through its monitor) a source. It was
                # made by rocd, so the plain device is a sink loaded behind its back.
                module = pulse_server.pactl("load-module", "module-null-sink", "sink_name=conf_hw")
                try:
                    await pulse.refresh()
                    yield Case(pulse, spk.id, spk.id, "pulse:sink:conf_hw", spk.id)
                finally:
                    pulse_server.pactl("unload-module", module.strip())
            finally:
                await pulse.delete_virtual(spk.id)
    elif kind == "file":
        wav = tmp_path / "tone.wav"
        sf.write(wav, ToneGenerator(Tone(kind="sine"), SPEC).generate(SPEC.rate), SPEC.rate)
        files = FileDriver(tmp_path)
        sink = await files.create_virtual("speaker", "out.wav", SPEC)
        yield Case(files, "file:source:tone.wav", sink.id, "file:source:tone.wav", sink.id)
    elif kind == "tone":
        yield Case(ToneDriver(SPEC), "tone:sine", "tone:null", "tone:sine", "tone:sine")
    else:
        # PortAudio is process-global: point it (through ALSA's pulse plugin) at the test
        # server and restart it so it lists the plugin's devices.
        for key, value in pulse_server.env.items():
            monkeypatch.setenv(key, value)
        module = pulse_server.pactl("load-module", "module-null-sink", "sink_name=conf_pa")
        monkeypatch.setenv("PULSE_SINK", "conf_pa")
        monkeypatch.setenv("PULSE_SOURCE", "conf_pa.monitor")
        try:
            pa = PortAudioDriver()
            ids = {d.id for d in await pa.reinitialize()}
            assert "portaudio:source:ALSA:pulse" in ids, f"PortAudio sees no pulse plugin: {ids}"
            src, snk = "portaudio:source:ALSA:pulse", "portaudio:sink:ALSA:pulse"
            yield Case(pa, src, snk, src, snk)
        finally:
            pulse_server.pactl("unload-module", module.strip())


async def wait_for(
    events: trio.MemoryReceiveChannel[DeviceEvent], kind: type, device_id: str
) -> object:
    async for event in events:
        if (
            isinstance(event, kind)
            and isinstance(event, DeviceAdded | DeviceRemoved | DeviceChanged)
            and event.device.id == device_id
        ):
            return event
    raise AssertionError("watch ended")


class TestDriverConformance:
    async def test_identity_and_status(self, case: Case) -> None:
        d = case.driver
        assert d.name
        assert d.status.driver == d.name
        assert d.status.up, d.status.reason
        assert d.features.virtual <= {"speaker", "microphone"}

    async def test_devices_are_well_formed(self, case: Case) -> None:
        with trio.fail_after(10):
            devices = await case.driver.list_devices()
        ids = [dev.id for dev in devices]
        assert len(ids) == len(set(ids))
        assert {case.source, case.sink, case.plain, case.volume_device} <= set(ids)
        for dev in devices:
            assert dev.id.startswith(f"{case.driver.name}:")
            assert dev.driver == case.driver.name
            assert dev.direction in ("source", "sink")
            assert dev.rate > 0
            assert dev.channels > 0
            assert 0 <= dev.volume <= MAX_VOLUME
            assert msgspec.json.decode(msgspec.json.encode(dev), type=DeviceInfo) == dev

    async def test_unknown_devices_are_not_found(self, case: Case) -> None:
        d = case.driver
        with trio.fail_after(10):
            for bad in (f"{d.name}:source:nope", "other:sink:x"):
                with pytest.raises(DeviceNotFound):
                    async with d.open_capture(bad):
                        pass
                with pytest.raises(DeviceNotFound):
                    async with d.open_playback(bad):
                        pass
                with pytest.raises(DeviceNotFound):
                    await d.set_volume(bad, 0.5)

    async def test_volume_and_mute_are_reported(self, case: Case) -> None:
        d, dev = case.driver, case.volume_device
        assert d.features.volume
        with trio.fail_after(10):
            async with d.watch() as events:
                await d.set_volume(dev, 0.5)
                changed = await wait_for(events, DeviceChanged, dev)
                assert isinstance(changed, DeviceChanged)
                assert changed.device.volume == pytest.approx(0.5, abs=1e-4)
                await d.set_mute(dev, True)
                while not changed.device.mute:
                    changed = await wait_for(events, DeviceChanged, dev)
                    assert isinstance(changed, DeviceChanged)
                (now,) = [x for x in await d.list_devices() if x.id == dev]
                assert now.volume == pytest.approx(0.5, abs=1e-4)
                assert now.mute
                await d.set_volume(dev, 1.0)
                await d.set_mute(dev, False)
            for bad in (-0.1, MAX_VOLUME + 0.1):
                with pytest.raises(ValueError, match="outside"):
                    await d.set_volume(dev, bad)

    async def test_events_are_numbered_by_event_count(self, case: Case) -> None:
        """A watcher opened at count n gets events n + 1, n + 2...: after a call, the
        count says which events report it."""
        d, dev = case.driver, case.volume_device
        with trio.fail_after(10):
            async with d.watch() as events:
                start = d.event_count
                await d.set_volume(dev, 0.5)
                after = d.event_count
                assert after > start
                received = [events.receive_nowait() for _ in range(after - start)]
                assert any(isinstance(e, DeviceChanged) and e.device.id == dev for e in received)
                with pytest.raises(trio.WouldBlock):
                    events.receive_nowait()
                await d.set_volume(dev, 1.0)

    async def test_virtual_devices_come_and_go(self, case: Case) -> None:
        d = case.driver
        with trio.fail_after(10):
            for kind in ("speaker", "microphone"):
                if kind not in d.features.virtual:
                    with pytest.raises(Unsupported):
                        await d.create_virtual(kind, "conf_v", SPEC)
                    continue
                async with d.watch() as events:
                    info = await d.create_virtual(kind, "conf_v", SPEC, description="Conf")
                    assert info.virtual
                    assert info.direction == ("sink" if kind == "speaker" else "source")
                    assert (info.rate, info.channels) == (SPEC.rate, SPEC.channels)
                    assert await wait_for(events, DeviceAdded, info.id)
                    assert info.id in {x.id for x in await d.list_devices()}
                    with pytest.raises(ValueError, match="exists"):
                        await d.create_virtual(kind, "conf_v", SPEC)
                    await d.delete_virtual(info.id)
                    assert await wait_for(events, DeviceRemoved, info.id)
                    assert info.id not in {x.id for x in await d.list_devices()}
            for kind in d.features.virtual:
                with pytest.raises(ValueError, match="invalid device name"):
                    await d.create_virtual(kind, "no spaces", SPEC)
            with pytest.raises(Unsupported):
                await d.delete_virtual(case.plain)

    async def test_capture_delivers_frames(self, case: Case) -> None:
        d = case.driver
        (info,) = [x for x in await d.list_devices() if x.id == case.source]
        with trio.fail_after(10):
            async with d.open_capture(case.source, SPEC) as stream:
                assert stream.device_id == case.source
                assert stream.spec == SPEC
                assert stream.clocked == info.clocked
                for _ in range(5):
                    block = await stream.read(480)
                    assert block.shape == (480, 2)
                    assert block.dtype == np.float32
                assert stream.stats().frames >= 5 * 480

    async def test_playback_takes_frames(self, case: Case) -> None:
        d = case.driver
        tone = ToneGenerator(Tone(kind="sine"), SPEC)
        with trio.fail_after(10):
            async with d.open_playback(case.sink, SPEC) as stream:
                assert stream.device_id == case.sink
                assert stream.spec == SPEC
                for _ in range(10):
                    await stream.write(tone.generate(480))
                assert stream.stats().frames == 4800
                with pytest.raises(ValueError, match="channel"):
                    await stream.write(np.zeros((10, 3), np.float32))

    async def test_cancelled_streams_close_promptly(self, case: Case) -> None:
        d = case.driver
        with trio.fail_after(10):
            with trio.move_on_after(0.05):
                async with d.open_capture(case.source, SPEC) as cap:
                    while True:
                        await cap.read(480)
            with trio.move_on_after(0.05):
                async with d.open_playback(case.sink, SPEC) as play:
                    while True:
                        await play.write(np.zeros((480, 2), np.float32))
            # and the devices still work afterwards
            async with d.open_capture(case.source, SPEC) as cap:
                assert len(await cap.read(480)) == 480

    async def test_a_watcher_that_falls_behind_is_ended(self, case: Case) -> None:
        d, dev = case.driver, case.volume_device
        with trio.fail_after(10):
            async with d.watch(buffer=1) as events:
                for volume in (0.2, 0.3, 0.4, 1.0):
                    await d.set_volume(dev, volume)
                await trio.sleep(0.2)  # let a server's events arrive
                received = [event async for event in events]  # ends: the watcher was dropped
                assert len(received) == 1
