"""The audio service: an instance's drivers, one device actor per device, the VAD actors.

Tree (all in the service's own nursery, so a restart of the service rebuilds it whole):

    audio <peer uid>
    ├── drivers     pulse, file, tone (PortAudio when enabled), each opened in a task
    ├── devices     supervisor of the device actors (kind "device", uid = device id)
    └── vads        supervisor of the VAD actors (kind "vad", uid = VAD uid)

Each driver's watch is read by a task that numbers its events and tells them to the
service, so driver events, listings and requests are handled one at a time, in order: a
device appears -> a device actor starts (and applies its settings); changes -> told to
the device actor; it disappears -> the actor stops (device.removed); the driver goes
down / comes up -> driver.down / driver.up, and the VADs of that driver are told, so
they make their devices again in a restarted sound server. A watch that falls behind is
ended by its driver; the task lists again and the listing is reconciled.

A driver that cannot be opened (a files directory that cannot be made) is reported down
with the reason; the others go on. The service never waits on its children in a way that
could wait back on it: device and VAD actors never ask the service.

Restarts: a crash of a device or VAD actor restarts that actor alone. If they crash too
often their supervisor gives up and the service restarts, after `restart_pause` seconds,
so that its restarts stay below the root supervisor's intensity and a misbehaving backend
never brings the daemon down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import msgspec
import trio

from rocd.audio import (
    AudioDriver,
    AudioError,
    DeviceAdded,
    DeviceChanged,
    DeviceInfo,
    DeviceRemoved,
    DriverDown,
    DriverStatus,
    DriverUp,
)
from rocd.errors import InvalidRequest, NotFound, RocdError, Unavailable

from ._actor import Actor, ActorRef
from ._audio_types import (
    CreateVad,
    DeleteVad,
    DestroyVad,
    DeviceList,
    DriverBack,
    DriverEvent,
    DriverGone,
    DriverSynced,
    EnsureVad,
    GetDevice,
    GetDrivers,
    GetVad,
    ListDevices,
    ListVads,
    Observed,
    Rescan,
    Vad,
    VadConfig,
    VadCreate,
    audio_errors,
    invalid,
    new_vad_uid,
)
from ._device import DeviceActor
from ._gather import ask_each
from ._node import check_name
from ._registry import Registry
from ._store import DeleteSetting, ListSettings, PutSetting
from ._supervisor import Publish, Supervisor
from ._vad import VadActor

log = logging.getLogger("rocd.audio")


@dataclass(frozen=True)
class DriverSpec:
    """How the service opens one driver. `poll`: seconds between listings for a driver
    that does not push its changes (a directory of files), None when it does."""

    name: str
    open: Callable[[], AbstractAsyncContextManager[AudioDriver]]
    poll: float | None = None


class AudioService(Actor):
    kind = "audio"
    mailbox_capacity = 1024
    #: Seconds a restarted service waits before it starts again (see the docstring).
    restart_pause = 3.0

    def __init__(
        self,
        peer: str,
        drivers: Sequence[DriverSpec],
        *,
        store: ActorRef,
        publish: Publish,
        registry: Registry,
    ) -> None:
        super().__init__(peer)
        self._specs = list(drivers)
        self._store = store
        self._publish = publish
        self._registry = registry
        self._incarnations = 0
        self.drivers: dict[str, AudioDriver] = {}
        self._polled = {spec.name for spec in drivers if spec.poll is not None}
        self._failed: dict[str, str] = {}  # drivers that could not be opened: why
        self.devices = Supervisor("devices", registry=registry, publish=publish)
        self.vads = Supervisor("vads", registry=registry, publish=publish)

    def supervisors(self) -> Sequence[Supervisor]:
        return (self.devices, self.vads)

    # -- life cycle ---------------------------------------------------------------------

    async def on_start(self) -> None:
        if self._incarnations:
            await trio.sleep(self.restart_pause)
        self._incarnations += 1
        self.drivers, self._failed = {}, {}
        self.devices = Supervisor("devices", registry=self._registry, publish=self._publish)
        self.vads = Supervisor("vads", registry=self._registry, publish=self._publish)
        await self.nursery.start(self.devices.run)
        await self.nursery.start(self.vads.run)
        for spec in self._specs:
            try:
                driver: AudioDriver = await self.nursery.start(self._hold, spec)
            except (AudioError, OSError) as exc:
                log.warning("audio driver %s unavailable: %s", spec.name, exc)
                self._failed[spec.name] = str(exc) or type(exc).__name__
                continue
            self.drivers[driver.name] = driver
            listing: DriverSynced = await self.nursery.start(self._follow, driver)
            await self._synced(listing.driver, listing.devices, listing.seq)
            if spec.poll is not None:
                self.nursery.start_soon(self._poll, driver, spec.poll)
        stored = await self._store.ask(ListSettings("vad"))
        for uid, raw in stored.items():
            try:
                config = msgspec.convert(raw, VadConfig)
            except msgspec.ValidationError as exc:
                log.warning("vad %s: stored definition ignored (%s)", uid, exc)
                continue
            await self.vads.start_child(self._vad_actor(uid, config))

    async def on_stop(self) -> None:
        self.devices.close("audio service stopped")
        self.vads.close("audio service stopped")

    async def _hold(self, spec: DriverSpec, *, task_status: trio.TaskStatus[AudioDriver]) -> None:
        async with spec.open() as driver:
            task_status.started(driver)
            await trio.sleep_forever()

    async def _follow(
        self, driver: AudioDriver, *, task_status: trio.TaskStatus[DriverSynced]
    ) -> None:
        """Number the driver's events and tell them to the service, for ever. The first
        listing is reported as started (the service starts its devices before it serves
        requests); the listings after a renewed watch are told like the events."""
        first = True
        while True:
            async with driver.watch() as events:
                seq = driver.event_count  # no checkpoint since the watch opened
                devices = await driver.list_devices()
                listing = DriverSynced(driver.name, devices, driver.event_count)
                if first:
                    first = False
                    task_status.started(listing)
                else:
                    await self.ref.tell(listing)
                async for event in events:
                    seq += 1
                    await self.ref.tell(DriverEvent(driver.name, event, seq))
            # The watch ended: we fell behind. List again and watch anew.
            log.info("audio driver %s: watch renewed", driver.name)

    async def _poll(self, driver: AudioDriver, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            try:
                await driver.list_devices()  # publishes what changed
            except AudioError as exc:
                log.debug("polling %s: %s", driver.name, exc)

    # -- messages -----------------------------------------------------------------------

    async def handle(self, msg: Any) -> Any:
        match msg:
            case DriverEvent(driver=name, event=event, seq=seq):
                await self._driver_event(name, event, seq)
                return None
            case DriverSynced(driver=name, devices=devices, seq=seq):
                await self._synced(name, devices, seq)
                return None
            case GetDrivers():
                return self.statuses()
            case Rescan():
                await self._rescan()
                return None
            case ListDevices():
                await self._rescan()
                views = await ask_each(self._registry.of_kind(DeviceActor.kind), GetDevice())
                return DeviceList(self.statuses(), sorted(views, key=lambda d: d.id))
            case ListVads():
                vads = await ask_each(self._registry.of_kind(VadActor.kind), GetVad())
                return sorted(vads, key=lambda v: (v.name, v.uid))
            case CreateVad(create=create):
                return await self._create_vad(create)
            case DeleteVad(uid=uid):
                await self._delete_vad(uid)
                return None
        return await super().handle(msg)

    async def _rescan(self) -> None:
        # Reconciled here rather than through the events the listing publishes, so the
        # devices are there when the reply is (those events come later and are older
        # than this listing: they change nothing).
        for name in sorted(self._polled & set(self.drivers)):
            driver = self.drivers[name]
            with audio_errors():
                devices = await driver.list_devices()
            await self._synced(name, devices, driver.event_count)

    def statuses(self) -> list[DriverStatus]:
        out = [d.status for d in self.drivers.values()]
        out += [DriverStatus(name, up=False, reason=why) for name, why in self._failed.items()]
        return out

    async def _driver_event(self, name: str, event: Any, seq: int) -> None:
        driver = self.drivers[name]
        match event:
            case DeviceAdded(device=info) | DeviceChanged(device=info):
                await self._seen(driver, info, seq)
            case DeviceRemoved(device=info):
                await self._gone(info.id)
            case DriverUp():
                self._publish("driver.up", name, {"driver": name})
                for vad in self._vads_of(name):
                    await vad.tell(DriverBack())
            case DriverDown(reason=reason):
                self._publish("driver.down", name, {"driver": name, "reason": reason})
                for vad in self._vads_of(name):
                    await vad.tell(DriverGone(reason))

    async def _synced(self, name: str, devices: list[DeviceInfo], seq: int) -> None:
        driver = self.drivers[name]
        present = {d.id for d in devices}
        for ref in self._registry.of_kind(DeviceActor.kind):
            if ref.uid.startswith(f"{name}:") and ref.uid not in present:
                await self._gone(ref.uid)
        for info in devices:
            await self._seen(driver, info, seq)

    async def _seen(self, driver: AudioDriver, info: DeviceInfo, seq: int) -> None:
        ref = self._registry.find(DeviceActor.kind, info.id)
        if ref is not None:
            await ref.tell(Observed(info, seq))
            return
        actor = DeviceActor(
            info,
            seq,
            driver=driver,
            store=self._store,
            publish=self._publish,
            peer=self.uid,
            registry=self._registry,
        )
        try:
            await self.devices.start_child(actor)
        except RocdError as exc:
            log.warning("device %s not started: %s", info.id, exc)

    async def _gone(self, device_id: str) -> None:
        try:
            await self.devices.stop_child(DeviceActor.kind, device_id, reason="device removed")
        except NotFound:
            return
        self._publish("device.removed", device_id, {"id": device_id})

    def _vads_of(self, driver: str) -> list[ActorRef]:
        out = []
        for child in self.vads.children():
            if isinstance(child, VadActor) and child.config.driver == driver:
                out.append(child.ref)
        return out

    # -- VADs ---------------------------------------------------------------------------

    def _vad_actor(self, uid: str, config: VadConfig) -> VadActor:
        return VadActor(
            uid,
            config,
            driver=self.drivers.get(config.driver),
            store=self._store,
            publish=self._publish,
            peer=self.uid,
        )

    async def _create_vad(self, create: VadCreate) -> Vad:
        driver = self.drivers.get(create.driver)
        if driver is None:
            known = ", ".join(sorted(self.drivers)) or "none"
            raise invalid("driver", f"no driver {create.driver!r} here (drivers: {known})")
        if create.kind not in driver.features.virtual:
            raise invalid("kind", f"the {driver.name} driver makes no virtual {create.kind}")
        uid = new_vad_uid()
        config = VadConfig(
            name=_display_name(create.name),
            kind=create.kind,
            driver=create.driver,
            rate=create.rate,
            channels=create.channels,
        )
        await self._store.ask(PutSetting("vad", uid, msgspec.to_builtins(config)))
        actor = self._vad_actor(uid, config)
        await self.vads.start_child(actor)
        try:
            vad = await actor.ref.ask(EnsureVad())
        except Unavailable:
            vad = actor.view()  # kept: made when the driver is up
        except RocdError:
            # Refused (or the driver call failed): nothing was made, nothing is kept.
            with trio.CancelScope(shield=True):
                await self.vads.stop_child(VadActor.kind, uid, reason="creation refused")
                await self._store.ask(DeleteSetting("vad", uid))
            raise
        self._publish("vad.created", uid, {"vad": msgspec.to_builtins(vad)})
        return vad

    async def _delete_vad(self, uid: str) -> None:
        ref = self._registry.lookup(VadActor.kind, uid)
        await ref.ask(DestroyVad())
        await self.vads.stop_child(VadActor.kind, uid, reason="deleted")
        self._publish("vad.deleted", uid, {"uid": uid})


def _display_name(name: str) -> str:
    try:
        return check_name(name)
    except InvalidRequest as exc:
        raise invalid("name", exc.message) from None
