"""Devices and virtual devices (VADs) as the cluster sees them, and the messages about them.

These shapes are the API's JSON and the replies of the device, VAD and audio actors. They
name their peer and never assume the local instance, so a peer actor mirroring a remote
instance answers the same messages with the same shapes.

Audio errors become RocdErrors here, in one place (`audio_errors`): refusals a caller
must hear about (no such device, driver down, a value the driver rejects) map to 404 /
503 / 501 / 422; any other AudioError is a failing driver call and crashes the actor that
made it, so its supervisor restarts it and the crash shows in the event stream.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from rocd.audio import (
    MAX_VOLUME,
    AudioDriver,
    DeviceEvent,
    DeviceInfo,
    DeviceNotFound,
    Direction,
    DriverStatus,
    DriverUnavailable,
    SampleSpec,
    StreamBroken,
    VirtualKind,
)
from rocd.audio import Unsupported as AudioUnsupported
from rocd.errors import InvalidRequest, NotFound, Unavailable, Unsupported

from ._actor import Request

Volume = Annotated[float, Meta(ge=0.0, le=MAX_VOLUME)]
Rate = Annotated[int, Meta(ge=1000, le=768000)]  # frames per second
Channels = Annotated[int, Meta(ge=1, le=32)]
LatencyMs = Annotated[int, Meta(ge=1, le=10000)]
DisplayName = Annotated[str, Meta(min_length=1, max_length=64)]
VadState = Literal["ready", "pending", "failed"]

#: Volumes closer than this are the same (a sound server stores 1/65536 steps).
VOLUME_EPSILON = 1e-4


@contextmanager
def audio_errors() -> Iterator[None]:
    """Turn the audio layer's refusals into RocdErrors (see the module docstring)."""
    try:
        yield
    except DeviceNotFound as exc:
        raise NotFound(str(exc) or "no such device") from exc
    except (DriverUnavailable, StreamBroken) as exc:
        raise Unavailable(str(exc) or "the audio driver is down") from exc
    except AudioUnsupported as exc:
        raise Unsupported(str(exc)) from exc
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc


def invalid(field: str, message: str) -> InvalidRequest:
    """A 422 naming the body field at fault (the shape of the API's own 422s)."""
    return InvalidRequest(
        f"invalid body: {field}: {message}",
        details=[{"in": "body", "message": message, "field": field}],
    )


def new_vad_uid() -> str:
    return uuid.uuid4().hex[:12]


def vad_system_name(uid: str) -> str:
    """The name a VAD has in its driver: made of the uid, so it is unique and safe in a
    sound server's module arguments (the user's name is only ever a description)."""
    return f"rocd_vad_{uid}"


def vad_of_device(info: DeviceInfo) -> str | None:
    """The VAD uid a device's system name carries (`vad_system_name`), if any."""
    name = info.name.split(".", 1)[0]
    prefix = vad_system_name("")
    if name.startswith(prefix) and len(name) == len(prefix) + 12:
        return name[len(prefix) :]
    return None


# -- devices ----------------------------------------------------------------------------


class DeviceConfig(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A device's persistent settings; None: the device's own value."""

    name: str | None = None  # display name
    enabled: bool = True  # a disabled device is not opened for streams
    volume: float | None = None  # 0..1.5, 1.0 nominal
    mute: bool | None = None
    rate: int | None = None  # format rocd streams it at, frames per second
    channels: int | None = None
    latency_ms: int | None = None  # target latency of rocd's streams on it


class Device(msgspec.Struct, frozen=True, kw_only=True):
    """A device of some peer: what its driver reports, with the settings applied."""

    id: str  # "<driver>:...", stable across restarts
    peer: str  # uid of the instance the device belongs to
    driver: str
    direction: Direction  # "source" produces audio, "sink" consumes it
    name: str  # display name: the configured one, else the driver's description
    description: str  # the driver's description
    system_name: str  # the driver's own name for it
    virtual: bool
    vad: str | None  # uid of the VAD this device is, if it is one
    state: str  # "running", "idle", "suspended" or "unknown"
    clocked: bool
    enabled: bool
    volume: float  # 0..1.5, now (rounded to 1e-4)
    mute: bool
    rate: int  # what rocd streams it at (configured, else native)
    channels: int
    latency_ms: int | None
    native_rate: int
    native_channels: int
    monitor_of: str | None = None  # of a monitor source: the sink it mirrors
    config: DeviceConfig  # what is persisted
    #: Only on a copy answered from another instance's mirror while that instance is
    #: offline: the copy may be out of date, by `age_s` seconds (since last contact).
    stale: bool | UnsetType = UNSET
    age_s: float | UnsetType = UNSET


class DeviceUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """PUT body: only the fields given change; null resets a setting to the device's own."""

    name: DisplayName | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET
    volume: Volume | UnsetType = UNSET
    mute: bool | UnsetType = UNSET
    rate: Rate | UnsetType | None = UNSET
    channels: Channels | UnsetType | None = UNSET
    latency_ms: LatencyMs | UnsetType | None = UNSET


class DeviceList(msgspec.Struct, frozen=True):
    """A peer's devices, with the state of its drivers (a down driver lists none)."""

    drivers: list[DriverStatus]
    devices: list[Device]
    stale: bool | UnsetType = UNSET  # as Device.stale
    age_s: float | UnsetType = UNSET


@dataclass(frozen=True)
class DeviceEndpoint:
    """What a local stream needs to open a device (never leaves the instance)."""

    driver: AudioDriver
    device_id: str
    spec: SampleSpec  # the configured format, else the device's own
    latency_ms: int | None
    direction: Direction


class GetDevice(Request[Device], frozen=True):
    pass


class ListDevices(Request[DeviceList], frozen=True):
    """Told to the audio service: every device, after listing the drivers that do not
    push their changes (so a file just copied into the files directory is there)."""


class UpdateDevice(Request[Device], frozen=True):
    update: DeviceUpdate


class GetEndpoint(Request[DeviceEndpoint], frozen=True):
    """The device's driver and format, to open a stream on it (Conflict if disabled)."""


class Observed(msgspec.Struct, frozen=True):
    """Told by the audio service: the driver reports the device so (event number `seq`)."""

    info: DeviceInfo
    seq: int


# -- virtual devices --------------------------------------------------------------------


class VadConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A VAD's persistent definition."""

    name: str
    kind: VirtualKind
    driver: str
    rate: int
    channels: int
    device: str | None = None  # id of the device made for it last time


class Vad(msgspec.Struct, frozen=True, kw_only=True):
    """A virtual speaker (a sink apps play into) or microphone (a source apps record)."""

    uid: str
    peer: str
    name: str
    kind: VirtualKind
    driver: str
    rate: int
    channels: int
    device: str | None  # the device id (also listed under /devices)
    state: VadState  # "pending": its driver is down; it is made when the driver is back
    reason: str = ""  # why it is pending or failed
    stale: bool | UnsetType = UNSET  # as Device.stale
    age_s: float | UnsetType = UNSET


class VadCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: DisplayName
    kind: VirtualKind
    driver: str = "pulse"
    rate: Rate = 48000
    channels: Channels = 2


class VadUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """PUT body: a change of format re-creates the device in its driver."""

    name: DisplayName | UnsetType = UNSET
    rate: Rate | UnsetType = UNSET
    channels: Channels | UnsetType = UNSET


class GetVad(Request[Vad], frozen=True):
    pass


class ListVads(Request[list[Vad]], frozen=True):
    """Told to the audio service: every VAD, by name."""


class UpdateVad(Request[Vad], frozen=True):
    update: VadUpdate


class EnsureVad(Request[Vad], frozen=True):
    """Make the VAD's device now; raises what the driver refused."""


class DestroyVad(Request[None], frozen=True):
    """Remove the device from its driver and forget the VAD's settings."""


class DriverBack(msgspec.Struct, frozen=True):
    """Told to a VAD: its driver is up again (after a sound server restart)."""


class DriverGone(msgspec.Struct, frozen=True):
    reason: str


# -- the audio service ------------------------------------------------------------------


class GetDrivers(Request[list[DriverStatus]], frozen=True):
    pass


class Rescan(Request[None], frozen=True):
    """List every driver now, so changes not pushed by it (new files) are seen."""


class CreateVad(Request[Vad], frozen=True):
    create: VadCreate


class DeleteVad(Request[None], frozen=True):
    uid: str


class DriverSynced(msgspec.Struct, frozen=True):
    """Internal: a driver's full listing (after its watch opened or was renewed)."""

    driver: str
    devices: list[DeviceInfo]
    seq: int


class DriverEvent(msgspec.Struct, frozen=True):
    """Internal: one event of a driver's watch, with its number."""

    driver: str
    event: DeviceEvent
    seq: int
