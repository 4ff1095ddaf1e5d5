"""Sound cards through PortAudio (sounddevice), kept thin behind the AudioDriver seam.

Each PortAudio device with inputs is a source `portaudio:source:<host api>:<name>`, each
with outputs a sink `portaudio:sink:<host api>:<name>` (names, not indices, so ids survive
a restart). A stream runs PortAudio's callback in its own thread; the callback only
moves frames through a FrameRing (capture: overrun drops the newest frames; playback:
underrun plays silence), so it never waits on Trio. Volume and mute are applied in
software. PortAudio knows no virtual devices and cannot report hot-plugging: devices are
the ones it found when it was initialised.

On Linux without sound hardware PortAudio sees ALSA's `pulse` and `default` plugins,
which lead to the sound server; streams on real cards are not tested here (no hardware).
sounddevice is imported on first use, so importing rocd.audio does not start PortAudio.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ._driver import DeviceInfo, StreamBase, StreamStats
from ._errors import AudioError, DeviceNotFound, StreamBroken
from ._format import Frames, SampleSpec, as_frames
from ._ring import FrameRing
from ._watch import TableDriver

_RING_SECONDS = 0.5  # ring capacity; capture overruns only if Trio stalls this long


def _sounddevice() -> Any:
    import sounddevice

    return sounddevice


class _Stream(StreamBase):
    clocked = True

    def __init__(self, driver: TableDriver, device_id: str, ring: FrameRing, spec: SampleSpec):
        super().__init__(device_id, spec)
        self._driver = driver
        self._ring = ring
        self.xruns = 0  # callbacks where PortAudio itself reported an overflow/underflow

    def stats(self) -> StreamStats:
        s = self._ring.stats()
        return StreamStats(
            frames=s.pulled_frames if isinstance(self, PortAudioCapture) else s.pushed_frames,
            overrun_frames=s.overrun_frames,
            overruns=s.overruns,
            underrun_frames=s.underrun_frames,
            underruns=s.underruns,
        )


class PortAudioCapture(_Stream):
    async def read(self, frames: int) -> Frames:
        block = await self._ring.read(frames)
        if len(block) < frames:
            raise StreamBroken(f"{self._id}: PortAudio stopped the stream")
        return self._driver.gain(self._id, block)


class PortAudioPlayback(_Stream):
    async def write(self, frames: Frames) -> None:
        block = self._driver.gain(self._id, as_frames(frames, self._spec))
        try:
            await self._ring.write(block)
        except trio.BrokenResourceError:
            raise StreamBroken(f"{self._id}: PortAudio stopped the stream") from None


class PortAudioDriver(TableDriver):
    """PortAudio devices (driver name "portaudio")."""

    def __init__(self, latency: float | str = "low") -> None:
        """`latency`: PortAudio's suggested latency, seconds or "low" / "high"."""
        super().__init__("portaudio")
        self.latency = latency
        self._index: dict[str, int] = {}
        self._open_streams = 0

    async def reinitialize(self) -> list[DeviceInfo]:
        """Restart PortAudio so it sees devices that appeared since it started, and list.

        PortAudio is process-global: do this only while no stream of the process is open.
        """
        if self._open_streams:
            raise AudioError("cannot restart PortAudio while streams are open")

        def restart() -> None:
            sd = _sounddevice()
            sd._terminate()
            sd._initialize()

        await trio.to_thread.run_sync(restart)
        return await self.list_devices()

    async def list_devices(self) -> list[DeviceInfo]:
        found = await trio.to_thread.run_sync(self._scan)
        for info in self.table.list():
            if info.id not in found:
                self.table.remove(info.id)
        for device_id, (info, index) in found.items():
            self._index[device_id] = index
            if device_id not in self.table:
                self.table.add(info)
        return self.table.list()

    def _scan(self) -> dict[str, tuple[DeviceInfo, int]]:
        sd = _sounddevice()
        apis = sd.query_hostapis()
        found = {}
        for d in sd.query_devices():
            api = apis[d["hostapi"]]["name"]
            for direction, channels in (
                ("source", d["max_input_channels"]),
                ("sink", d["max_output_channels"]),
            ):
                if channels <= 0:
                    continue
                info = DeviceInfo(
                    id=f"portaudio:{direction}:{api}:{d['name']}",
                    name=d["name"],
                    description=f"{d['name']} ({api})",
                    direction="source" if direction == "source" else "sink",
                    driver=self.name,
                    virtual=False,
                    rate=int(d["default_samplerate"]),
                    channels=min(channels, 2),
                    volume=1.0,
                    mute=False,
                    state="idle",
                    clocked=True,
                )
                found[info.id] = (info, d["index"])
        return found

    async def _resolve(self, device_id: str, direction: str) -> tuple[DeviceInfo, int]:
        if device_id not in self.table:
            await self.list_devices()
        info = self.device(device_id, "source" if direction == "source" else "sink")
        try:
            return info, self._index[device_id]
        except KeyError:
            raise DeviceNotFound(device_id) from None

    @asynccontextmanager
    async def open_capture(
        self, device_id: str, spec: SampleSpec | None = None
    ) -> AsyncIterator[PortAudioCapture]:
        info, index = await self._resolve(device_id, "source")
        spec = spec or info.spec
        with FrameRing(spec.frames_for(_RING_SECONDS), spec.channels) as ring:
            stream = PortAudioCapture(self, device_id, ring, spec)

            def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
                if status:
                    stream.xruns += 1
                ring.push(indata)

            async with self._running(index, spec, "input", callback, ring.close_write):
                yield stream

    @asynccontextmanager
    async def open_playback(
        self, device_id: str, spec: SampleSpec | None = None
    ) -> AsyncIterator[PortAudioPlayback]:
        info, index = await self._resolve(device_id, "sink")
        spec = spec or info.spec
        with FrameRing(spec.frames_for(_RING_SECONDS), spec.channels) as ring:
            stream = PortAudioPlayback(self, device_id, ring, spec)

            def callback(outdata: Any, frames: int, time: Any, status: Any) -> None:
                if status:
                    stream.xruns += 1
                ring.pull_into(outdata)

            async with self._running(index, spec, "output", callback, ring.close_read):
                yield stream
                ring.close_write()  # normal exit: let the callback play out what is queued
                with trio.move_on_after(_RING_SECONDS + 0.2):
                    await ring.wait_writable(ring.capacity)  # the ring is empty

    @asynccontextmanager
    async def _running(
        self, index: int, spec: SampleSpec, kind: str, callback: Any, on_finish: Any
    ) -> AsyncIterator[None]:
        sd = _sounddevice()
        cls = sd.InputStream if kind == "input" else sd.OutputStream

        def start() -> Any:
            s = cls(
                device=index,
                samplerate=spec.rate,
                channels=spec.channels,
                dtype="float32",
                latency=self.latency,
                callback=callback,
                finished_callback=on_finish,
            )
            s.start()
            return s

        try:
            pa_stream = await trio.to_thread.run_sync(start)
        except sd.PortAudioError as exc:
            raise AudioError(f"PortAudio: {exc}") from exc
        self._open_streams += 1
        try:
            yield
        finally:
            self._open_streams -= 1
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_stop, pa_stream)


def _stop(stream: Any) -> None:
    # abort, not stop: stop drains the host's buffers, which took 2 s through ALSA's pulse
    # plugin. Playback has already played out its ring when it ends normally.
    stream.abort()
    stream.close()
