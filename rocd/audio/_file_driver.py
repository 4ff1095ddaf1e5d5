"""Audio files in one directory as devices, through soundfile (libsndfile).

Every readable WAV, FLAC or OGG file in the directory is a source `file:source:<name>`.
A sink is made with `create_virtual("speaker", name)` as `file:sink:<name>`; playing into
it records `<name>` (its extension picks the format: .wav float32, .flac 24-bit, .ogg
Vorbis), through the same `Recording` as `rocd recv`: a WAV is valid on disk at every
moment (a daemon killed mid-recording leaves everything up to the last half second), a
FLAC or OGG is written to a hidden `.<name>.part` and renamed when the stream closes,
also on cancellation. A file being recorded is not listed as a source until it is done.

Files are unclocked: reads and writes return as fast as the disk allows. Their rate and
channels are the file's: there is no conversion here (the resampler lives elsewhere), a
different spec is a ValueError. Blocking file calls run in a worker thread, a second of
audio per hop for reads, half a second for recordings (see `_file_io`). Files added or
removed behind the driver's back are noticed on the next `list_devices` (with events).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import soundfile as sf
import trio

from ._driver import DeviceInfo, DriverFeatures, VirtualKind
from ._errors import AudioError, Unsupported
from ._file_io import BlockReader, open_sound_file
from ._format import Frames, SampleSpec
from ._recording import FORMATS as _FORMATS
from ._recording import Recording, open_recording
from ._watch import SoftStream, TableDriver, check_name


class FileCapture(SoftStream):
    """A file opened for reading; reads return fewer frames at the end, then none."""

    def __init__(self, driver: TableDriver, device_id: str, f: Any, spec: SampleSpec) -> None:
        super().__init__(driver, device_id, spec)
        self._reader = BlockReader(f, spec)

    async def read(self, frames: int) -> Frames:
        block = await self._reader.read(frames)
        self._frames += len(block)
        return self._gain(block)


class FilePlayback(SoftStream):
    """A recording in progress into a file sink."""

    def __init__(
        self, driver: TableDriver, device_id: str, recording: Recording, spec: SampleSpec
    ) -> None:
        super().__init__(driver, device_id, spec)
        self._recording = recording

    async def write(self, frames: Frames) -> None:
        block = self._gain(frames)
        await self._recording.write(block)
        self._frames += len(block)


class FileDriver(TableDriver):
    """Files in `root` as sources and sinks (driver name "file")."""

    features = DriverFeatures(virtual=frozenset({"speaker"}), volume=True)

    def __init__(self, root: Path | str) -> None:
        super().__init__("file")
        self.root = Path(root)
        if not self.root.is_dir():
            raise AudioError(f"{self.root} is not a directory")
        self._recording: set[str] = set()  # names of the files being recorded

    async def list_devices(self) -> list[DeviceInfo]:
        await self.rescan()
        return self.table.list()

    async def rescan(self) -> None:
        """Bring the sources in line with the directory (publishing what changed)."""
        found = await trio.to_thread.run_sync(self._scan)
        for info in self.table.list():
            if info.direction == "source" and info.id not in found:
                self.table.remove(info.id)
        for info in found.values():
            if info.id in self.table:
                old = self.table.get(info.id)
                self.table.replace(
                    msgspec.structs.replace(info, volume=old.volume, mute=old.mute, state=old.state)
                )
            else:
                self.table.add(info)

    def _scan(self) -> dict[str, DeviceInfo]:
        found = {}
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(".") or path.suffix.lower() not in _FORMATS:
                continue
            if path.name in self._recording:
                continue  # not a source until it is complete
            try:
                info = sf.info(str(path))
            except (sf.LibsndfileError, RuntimeError, OSError):
                continue  # unreadable or not audio after all: not a device
            device = self._info(
                f"file:source:{path.name}", path.name, "source", info.samplerate, info.channels
            )
            found[device.id] = msgspec.structs.replace(
                device, description=f"{info.format_info} file"
            )
        return found

    def _info(
        self, device_id: str, name: str, direction: str, rate: int, channels: int
    ) -> DeviceInfo:
        spec = SampleSpec(rate, channels)
        return self.soft_device(
            device_id, name, name, direction, virtual=direction == "sink", spec=spec
        )

    @asynccontextmanager
    async def open_capture(
        self, device_id: str, spec: SampleSpec | None = None
    ) -> AsyncIterator[FileCapture]:
        if device_id not in self.table:
            await self.rescan()
        info = self.device(device_id, "source")
        if spec is not None and spec != info.spec:
            raise ValueError(f"{device_id} is {info.spec}; the file driver does not convert")
        path = self.root / info.name
        f = await trio.to_thread.run_sync(open_sound_file, str(path))
        self.table.set_state(device_id, "running")
        try:
            yield FileCapture(self, device_id, f, info.spec)
        finally:
            self.table.set_state(device_id, "idle")
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(f.close)

    @asynccontextmanager
    async def open_playback(
        self, device_id: str, spec: SampleSpec | None = None
    ) -> AsyncIterator[FilePlayback]:
        info = self.device(device_id, "sink")
        if spec is not None and spec != info.spec:
            raise ValueError(f"{device_id} is {info.spec}; the file driver does not convert")
        if info.name in self._recording:
            raise ValueError(f"{device_id} is recording already")
        self._recording.add(info.name)
        try:
            async with open_recording(self.root / info.name, info.spec) as recording:
                self.table.set_state(device_id, "running")
                try:
                    yield FilePlayback(self, device_id, recording, info.spec)
                finally:
                    self.table.set_state(device_id, "idle")
        finally:
            self._recording.discard(info.name)

    async def create_virtual(
        self, kind: VirtualKind, name: str, spec: SampleSpec, *, description: str = ""
    ) -> DeviceInfo:
        await trio.lowlevel.checkpoint()
        if kind != "speaker":
            raise Unsupported("the file driver makes file sinks (virtual speakers) only")
        check_name(name)
        if Path(name).suffix.lower() not in _FORMATS:
            name += ".wav"
        device_id = f"file:sink:{name}"
        if device_id in self.table:
            raise ValueError(f"{device_id} exists already")
        info = self._info(device_id, name, "sink", spec.rate, spec.channels)
        info = msgspec.structs.replace(info, description=description or f"records {name}")
        self.table.add(info)
        return info

    async def delete_virtual(self, device_id: str) -> None:
        await trio.lowlevel.checkpoint()
        if not self.table.get(device_id).virtual:
            raise Unsupported(f"{device_id} is a file, not a virtual device")
        self.table.remove(device_id)
