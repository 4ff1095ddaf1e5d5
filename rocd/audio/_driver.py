"""The seam between rocd and audio backends: one small interface every driver implements.

A driver (sound server, PortAudio, files, tone generators) lists devices, reports changes,
opens capture and playback streams, and where it can, makes virtual devices and sets
volume and mute. The layers above speak only to `AudioDriver`; a new OS backend is a new
module implementing it, checked by the shared conformance tests in tests/audio.

Streams are frame sources and sinks. A *clocked* one runs at its device's pace (a read
waits for the device to produce, a write waits for it to consume); an *unclocked* one
(file, tone, null sink) answers at once, and whoever drives it paces it by the system
clock (see `paced`).
"""

from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol

import msgspec
import trio

from ._format import Frames, SampleSpec

Direction = Literal["source", "sink"]
"""A source produces audio (microphone, monitor, file to read); a sink consumes it."""

VirtualKind = Literal["speaker", "microphone"]
"""A virtual speaker is a sink apps play into; a virtual microphone a source apps record."""


class DeviceInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a driver knows of one device; `id` stays the same across driver restarts."""

    id: str
    name: str
    description: str
    direction: Direction
    driver: str
    virtual: bool
    rate: int
    channels: int
    volume: float
    mute: bool
    state: str  # "running", "idle", "suspended" or "unknown"
    clocked: bool
    monitor_of: str | None = None  # for a monitor source: the id of the sink it mirrors

    @property
    def spec(self) -> SampleSpec:
        return SampleSpec(self.rate, self.channels)


class DriverStatus(msgspec.Struct, frozen=True):
    """Whether a driver's backend works; `reason` says why not when it is down."""

    driver: str
    up: bool
    reason: str = ""


class DriverFeatures(msgspec.Struct, frozen=True):
    """What a driver can do beyond listing and streaming."""

    virtual: frozenset[VirtualKind] = frozenset()
    volume: bool = False


class DeviceAdded(msgspec.Struct, frozen=True, tag="device_added"):
    device: DeviceInfo


class DeviceRemoved(msgspec.Struct, frozen=True, tag="device_removed"):
    device: DeviceInfo  # as last seen


class DeviceChanged(msgspec.Struct, frozen=True, tag="device_changed"):
    device: DeviceInfo  # as it is now


class DriverUp(msgspec.Struct, frozen=True, tag="driver_up"):
    driver: str


class DriverDown(msgspec.Struct, frozen=True, tag="driver_down"):
    driver: str
    reason: str


DeviceEvent = DeviceAdded | DeviceRemoved | DeviceChanged | DriverUp | DriverDown


class StreamStats(msgspec.Struct, frozen=True):
    """Counters of an open stream; frames are per channel."""

    frames: int
    overrun_frames: int = 0
    overruns: int = 0
    underrun_frames: int = 0
    underruns: int = 0


class StreamBase:
    """Identity of an open stream, shared by the drivers' stream classes."""

    clocked = False

    def __init__(self, device_id: str, spec: SampleSpec) -> None:
        self._id = device_id
        self._spec = spec

    @property
    def device_id(self) -> str:
        return self._id

    @property
    def spec(self) -> SampleSpec:
        return self._spec


class FrameSource(Protocol):
    """Anything that yields frames."""

    @property
    def spec(self) -> SampleSpec: ...

    @property
    def clocked(self) -> bool: ...

    async def read(self, frames: int) -> Frames:
        """Exactly `frames` frames; fewer only at the end of the source (empty after it).

        Raises StreamBroken when the device went away. Cancellation loses no frames.
        """
        ...


class FrameSink(Protocol):
    """Anything that takes frames."""

    @property
    def spec(self) -> SampleSpec: ...

    @property
    def clocked(self) -> bool: ...

    async def write(self, frames: Frames) -> None:
        """Take all of `frames` (shape (n, spec.channels), float32).

        Raises StreamBroken when the device went away. On cancellation a prefix of
        `frames` may have been taken.
        """
        ...


class CaptureStream(FrameSource, Protocol):
    """A source opened on a device."""

    @property
    def device_id(self) -> str: ...

    def stats(self) -> StreamStats: ...


class PlaybackStream(FrameSink, Protocol):
    """A sink opened on a device."""

    @property
    def device_id(self) -> str: ...

    def stats(self) -> StreamStats: ...


class AudioDriver(Protocol):
    """One audio backend. Methods never crash on a backend failure: they raise AudioError."""

    @property
    def name(self) -> str:
        """Short and unique among drivers; the first part of every device id it makes."""
        ...

    @property
    def status(self) -> DriverStatus: ...

    @property
    def features(self) -> DriverFeatures: ...

    @property
    def event_count(self) -> int:
        """Events published so far. A watcher opened when this was n receives events
        n + 1, n + 2, ... in order: comparing an event's number with a count noted after a
        call tells whether the event reports that call's effect or a later change."""
        ...

    async def list_devices(self) -> list[DeviceInfo]:
        """Every device now; empty while the driver is down."""
        ...

    def watch(
        self, buffer: int = 256
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[DeviceEvent]]:
        """Changes from now on. A watcher more than `buffer` events behind is ended (its
        channel closes): list again and watch anew."""
        ...

    def open_capture(
        self, device_id: str, spec: SampleSpec | None = None
    ) -> AbstractAsyncContextManager[CaptureStream]:
        """Read from a source (or from a sink's monitor). `spec` None: the device's own.

        Raises DeviceNotFound, or ValueError for a spec the device cannot deliver. Leaving
        the context (also by cancellation) stops the stream and frees the device.
        """
        ...

    def open_playback(
        self, device_id: str, spec: SampleSpec | None = None
    ) -> AbstractAsyncContextManager[PlaybackStream]:
        """Write into a sink (or into a virtual microphone). `spec` None: the device's own.

        Leaving the context normally plays out what was written; by cancellation, it
        stops at once. Files are complete and valid either way.
        """
        ...

    async def create_virtual(
        self, kind: VirtualKind, name: str, spec: SampleSpec, *, description: str = ""
    ) -> DeviceInfo:
        """Make a virtual device; returns the device apps use (the sink of a speaker, the
        source of a microphone). Raises Unsupported, or ValueError for a bad name."""
        ...

    async def delete_virtual(self, device_id: str) -> None:
        """Remove a virtual device made by `create_virtual` (by this or an earlier run)."""
        ...

    async def set_description(self, device_id: str, description: str) -> None:
        """Rename a virtual device in place (what apps see), without re-making it: streams
        into or out of it go on. Raises Unsupported where the backend cannot."""
        ...

    async def set_volume(self, device_id: str, volume: float) -> None:
        """Set the volume, 0..MAX_VOLUME, 1.0 nominal (see `volume_to_amplitude`)."""
        ...

    async def set_mute(self, device_id: str, mute: bool) -> None: ...
