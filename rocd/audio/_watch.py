"""Device-change fan-out and the device table that software drivers share.

`EventHub` hands every event to every watcher without ever waiting: a watcher whose
buffer is full is ended (its channel closes) rather than slowing the driver or silently
missing an event; it lists again and watches anew. `diff_devices` turns two snapshots
into events, so a driver that can only re-list (a sound server) reports the same events
as one that knows each change.
"""

from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import msgspec
import trio

from ._driver import (
    DeviceAdded,
    DeviceChanged,
    DeviceEvent,
    DeviceInfo,
    DeviceRemoved,
    Direction,
    DriverFeatures,
    DriverStatus,
    StreamBase,
    StreamStats,
    VirtualKind,
)
from ._errors import DeviceNotFound, StreamBroken, Unsupported
from ._format import Frames, SampleSpec, apply_gain, check_volume


class EventHub:
    """Publishes device events to any number of watchers (bounded memory channels)."""

    def __init__(self) -> None:
        self._senders: list[trio.MemorySendChannel[DeviceEvent]] = []
        #: Events published so far. A watcher opened when this was n receives events
        #: n + 1, n + 2, ... in order, so a reader can tell whether an event it receives
        #: was published before or after a moment it noted this count.
        self.published = 0

    @asynccontextmanager
    async def watch(
        self, buffer: int = 256
    ) -> AsyncIterator[trio.MemoryReceiveChannel[DeviceEvent]]:
        """A channel of the events published while the context is open."""
        send, receive = trio.open_memory_channel[DeviceEvent](buffer)
        self._senders.append(send)
        try:
            async with receive:
                yield receive
        finally:
            if send in self._senders:
                self._senders.remove(send)
            send.close()

    def publish(self, event: DeviceEvent) -> None:
        """Deliver `event` to every watcher now; end the watchers that are full."""
        self.published += 1
        for send in list(self._senders):
            try:
                send.send_nowait(event)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._senders.remove(send)
                send.close()

    def publish_all(self, events: Iterable[DeviceEvent]) -> None:
        for event in events:
            self.publish(event)

    def close(self) -> None:
        """End every watcher (the driver is going away)."""
        for send in self._senders:
            send.close()
        self._senders.clear()


def diff_devices(old: dict[str, DeviceInfo], new: dict[str, DeviceInfo]) -> list[DeviceEvent]:
    """The events that turn snapshot `old` into `new` (removals first, then additions)."""
    events: list[DeviceEvent] = [DeviceRemoved(info) for key, info in old.items() if key not in new]
    for key, info in new.items():
        before = old.get(key)
        if before is None:
            events.append(DeviceAdded(info))
        elif before != info:
            events.append(DeviceChanged(info))
    return events


class DeviceTable:
    """The devices of a driver that keeps its own state (file, tone, PortAudio).

    Every change goes through here so it is published once, in order.
    """

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        self._devices: dict[str, DeviceInfo] = {}

    def list(self) -> list[DeviceInfo]:
        return list(self._devices.values())

    def get(self, device_id: str) -> DeviceInfo:
        try:
            return self._devices[device_id]
        except KeyError:
            raise DeviceNotFound(device_id) from None

    def __contains__(self, device_id: str) -> bool:
        return device_id in self._devices

    def add(self, info: DeviceInfo) -> None:
        self._devices[info.id] = info
        self.hub.publish(DeviceAdded(info))

    def remove(self, device_id: str) -> DeviceInfo:
        info = self._devices.pop(device_id, None)
        if info is None:
            raise DeviceNotFound(device_id)
        self.hub.publish(DeviceRemoved(info))
        return info

    def replace(self, info: DeviceInfo) -> None:
        """Store a changed `info` of a known device; publish only if something changed."""
        before = self.get(info.id)
        if before != info:
            self._devices[info.id] = info
            self.hub.publish(DeviceChanged(info))

    def set_volume(self, device_id: str, volume: float) -> None:
        volume = check_volume(volume)
        info = self.get(device_id)
        self.replace(_evolve(info, volume=volume))

    def set_mute(self, device_id: str, mute: bool) -> None:
        info = self.get(device_id)
        self.replace(_evolve(info, mute=bool(mute)))

    def set_state(self, device_id: str, state: str) -> None:
        if device_id in self._devices:
            self.replace(_evolve(self._devices[device_id], state=state))


def _evolve(info: DeviceInfo, **changes: object) -> DeviceInfo:
    return msgspec.structs.replace(info, **changes)


class TableDriver:
    """Shared parts of the drivers that keep their devices in a `DeviceTable`.

    Their backend cannot go down, so they are always up; volume and mute are applied in
    software by their streams (`apply_gain`), reading the table at every block so a change
    applies between blocks.
    """

    features = DriverFeatures(volume=True)

    def __init__(self, name: str) -> None:
        self._name = name
        self.hub = EventHub()
        self.table = DeviceTable(self.hub)

    def soft_device(
        self,
        device_id: str,
        name: str,
        description: str,
        direction: str,
        *,
        virtual: bool,
        spec: SampleSpec,
    ) -> DeviceInfo:
        """A device of this driver as first listed: unclocked, idle, full volume."""
        return DeviceInfo(
            id=device_id,
            name=name,
            description=description,
            direction="source" if direction == "source" else "sink",
            driver=self._name,
            virtual=virtual,
            rate=spec.rate,
            channels=spec.channels,
            volume=1.0,
            mute=False,
            state="idle",
            clocked=False,
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def status(self) -> DriverStatus:
        return DriverStatus(self._name, up=True)

    @property
    def event_count(self) -> int:
        return self.hub.published

    async def list_devices(self) -> list[DeviceInfo]:
        await trio.lowlevel.checkpoint()
        return self.table.list()

    def watch(
        self, buffer: int = 256
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[DeviceEvent]]:
        return self.hub.watch(buffer)

    async def set_volume(self, device_id: str, volume: float) -> None:
        await trio.lowlevel.checkpoint()
        self.table.set_volume(device_id, volume)

    async def set_mute(self, device_id: str, mute: bool) -> None:
        await trio.lowlevel.checkpoint()
        self.table.set_mute(device_id, mute)

    async def create_virtual(
        self, kind: VirtualKind, name: str, spec: SampleSpec, *, description: str = ""
    ) -> DeviceInfo:
        await trio.lowlevel.checkpoint()
        raise Unsupported(f"the {self._name} driver makes no virtual {kind}")

    async def delete_virtual(self, device_id: str) -> None:
        await trio.lowlevel.checkpoint()
        self.table.get(device_id)
        raise Unsupported(f"{device_id} is not a virtual device of the {self._name} driver")

    async def set_description(self, device_id: str, description: str) -> None:
        await trio.lowlevel.checkpoint()
        info = self.table.get(device_id)
        if not info.virtual:
            raise Unsupported(f"{device_id} is not a virtual device of the {self._name} driver")
        self.table.replace(_evolve(info, description=description))

    def device(self, device_id: str, direction: Direction) -> DeviceInfo:
        """The device `device_id`, which must be a `direction` (DeviceNotFound if not)."""
        info = self.table.get(device_id)
        if info.direction != direction:
            raise DeviceNotFound(f"{device_id} is not a {direction}")
        return info

    def gain(self, device_id: str, frames: Frames) -> Frames:
        """`frames` with the device's current volume and mute applied.

        Raises StreamBroken once the device is gone.
        """
        if device_id not in self.table:
            raise StreamBroken(f"{device_id} was removed")
        info = self.table.get(device_id)
        return apply_gain(frames, info.volume, info.mute)


class SoftStream(StreamBase):
    """A stream of a TableDriver device: software gain, frames counted (unclocked)."""

    def __init__(self, driver: TableDriver, device_id: str, spec: SampleSpec) -> None:
        super().__init__(device_id, spec)
        self._driver = driver
        self._frames = 0

    def _gain(self, frames: Frames) -> Frames:
        return self._driver.gain(self._id, frames)

    def stats(self) -> StreamStats:
        return StreamStats(frames=self._frames)


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def check_name(name: str) -> str:
    """`name` if it is a valid device name (1-64 of letters, digits, `_`, `-`, `.`)."""
    if not 1 <= len(name) <= 64 or not set(name) <= _NAME_CHARS or name[0] == ".":
        raise ValueError(f"invalid device name {name!r}: use 1-64 letters, digits, _ - .")
    return name
