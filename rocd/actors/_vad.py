"""The VAD actor: one virtual speaker or microphone, kept in existence in its driver.

A VAD is a definition in the store (namespace "vad", key = uid) and a device in a driver
(a null sink, a virtual source, a file sink...). The actor makes the device exist as
defined: when it starts (daemon start, after a crash), when its driver comes back (a
sound server restarts with none of rocd's devices), and when its definition changes. A
device left in the server by an earlier run is adopted when it still fits the definition,
so apps attached to it across a daemon restart stay attached. The device's name in the
driver is made of the uid (`vad_system_name`); the user's name is its description.

States: "ready" (the device exists), "pending" (its driver is down; made when it is
back), "failed" (the driver refused; `reason` says why; tried again at the next start or
driver return). Only a delete removes the device from the driver: stopping the daemon
leaves it in place.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import msgspec
import trio
from msgspec import UNSET

from rocd.audio import AudioDriver, AudioError, DeviceInfo, SampleSpec
from rocd.errors import RocdError, StorageFailed, Unavailable

from ._actor import Actor, ActorRef
from ._audio_types import (
    AnnounceVad,
    DestroyVad,
    DriverBack,
    DriverGone,
    EnsureVad,
    GetVad,
    UpdateVad,
    Vad,
    VadConfig,
    VadState,
    VadUpdate,
    audio_errors,
    vad_system_name,
)
from ._node import check_name
from ._store import DeleteSetting, PutSetting
from ._supervisor import Publish

log = logging.getLogger("rocd.vads")


class VadActor(Actor):
    kind = "vad"

    def __init__(
        self,
        uid: str,
        config: VadConfig,
        *,
        driver: AudioDriver | None,
        store: ActorRef,
        publish: Publish,
        peer: str,
        announced: bool = True,
    ) -> None:
        super().__init__(uid)
        #: False for a VAD being created: no vad.updated before its vad.created.
        self.announced = announced
        self.config = config
        self.state: VadState = "pending"
        self.reason = "not made yet"
        self._driver = driver  # None: the driver is not enabled on this instance
        self._store = store
        self._publish = publish
        self._peer = peer

    @property
    def system_name(self) -> str:
        return vad_system_name(self.uid)

    async def on_start(self) -> None:
        await self._ensure_quietly()

    async def handle(self, msg: Any) -> Any:
        match msg:
            case GetVad():
                return self.view()
            case EnsureVad():
                await self._ensure()
                return self.view()
            case UpdateVad(update=update):
                return await self._update(update)
            case DestroyVad():
                await self._destroy()
                return None
            case DriverBack():
                await self._ensure_quietly()
                return None
            case DriverGone(reason=reason):
                self._set_state("pending", f"driver {self.config.driver} is down: {reason}")
                return None
            case AnnounceVad():
                view = self.view()
                self._publish("vad.created", self.uid, {"vad": msgspec.to_builtins(view)})
                self.announced = True
                return view
        return await super().handle(msg)

    def view(self) -> Vad:
        c = self.config
        return Vad(
            uid=self.uid,
            peer=self._peer,
            name=c.name,
            kind=c.kind,
            driver=c.driver,
            rate=c.rate,
            channels=c.channels,
            device=c.device,
            state=self.state,
            reason=self.reason,
        )

    def _set_state(self, state: VadState, reason: str = "") -> None:
        if (state, reason) != (self.state, self.reason):
            self.state, self.reason = state, reason
            if not self.announced:
                return  # its vad.created carries the state
            self._publish(
                "vad.updated",
                self.uid,
                {"vad": msgspec.to_builtins(self.view()), "changed": ["state"]},
            )

    # -- making the device --------------------------------------------------------------

    def _up_driver(self) -> AudioDriver:
        if self._driver is None:
            raise Unavailable(f"driver {self.config.driver!r} is not enabled on this instance")
        if not self._driver.status.up:
            raise Unavailable(f"driver {self.config.driver} is down: {self._driver.status.reason}")
        return self._driver

    async def _ensure_quietly(self) -> None:
        """`_ensure`, with failures kept as the state instead of raised."""
        try:
            await self._ensure()
        except Unavailable as exc:
            self._set_state("pending", exc.message)
        except RocdError as exc:
            self._set_state("failed", exc.message)
        except AudioError as exc:
            self._set_state("failed", str(exc))

    async def _ensure(self) -> None:
        """Make the device exist as defined (adopting a fitting one left in place)."""
        driver = self._up_driver()
        with audio_errors():
            found = self._find(await driver.list_devices())
            if found is not None and self._fits(found):
                await self._set_device(found.id)
                self._set_state("ready")
                return
            if found is not None:
                await driver.delete_virtual(found.id)
            info = await driver.create_virtual(
                self.config.kind,
                self.system_name,
                SampleSpec(self.config.rate, self.config.channels),
                description=self.config.name,
            )
        await self._set_device(info.id)
        self._set_state("ready")

    def _find(self, devices: list[DeviceInfo]) -> DeviceInfo | None:
        """This VAD's device among `devices` (by the id made last time, else by name)."""
        by_id = {d.id: d for d in devices}
        if self.config.device is not None and self.config.device in by_id:
            return by_id[self.config.device]
        direction = "sink" if self.config.kind == "speaker" else "source"
        for d in devices:
            if d.virtual and d.direction == direction and d.name.split(".")[0] == self.system_name:
                return d
        return None

    def _fits(self, info: DeviceInfo) -> bool:
        c = self.config
        return info.virtual and info.rate == c.rate and info.channels == c.channels

    async def _set_device(self, device_id: str) -> None:
        if device_id != self.config.device:
            self.config = msgspec.structs.replace(self.config, device=device_id)
            try:
                await self._save()
            except StorageFailed as exc:  # known in memory; saved with the next change
                log.warning("vad %s: device id not saved: %s", self.uid, exc)

    async def _remove_device(self) -> None:
        """Delete the device from its driver, if it is there (a driver down has lost it)."""
        if self._driver is None or not self._driver.status.up:
            return
        with audio_errors():
            found = self._find(await self._driver.list_devices())
            if found is not None:
                await self._driver.delete_virtual(found.id)

    # -- requests -----------------------------------------------------------------------

    async def _update(self, update: VadUpdate) -> Vad:
        changes = {
            f: getattr(update, f)
            for f in update.__struct_fields__
            if getattr(update, f) is not UNSET
        }
        if "name" in changes:
            changes["name"] = check_name(changes["name"])
        config = msgspec.structs.replace(self.config, **changes)
        if config == self.config:
            return self.view()
        old = self.config
        changed = sorted(k for k in changes if getattr(config, k) != getattr(old, k))
        # Saved first: when the state cannot be saved (503), nothing has changed.
        await self._save(config)
        if changed == ["name"] and self.state == "ready" and old.device is not None:
            # A new name only: renamed in place, apps playing into it are not cut off.
            self.config = config
            await self._rename_device(old.device, config.name)
            self._publish(
                "vad.updated",
                self.uid,
                {"vad": msgspec.to_builtins(self.view()), "changed": changed},
            )
            return self.view()
        # The device carries the format: a change makes it anew.
        try:
            await self._remove_device()
        except BaseException:
            with trio.CancelScope(shield=True), contextlib.suppress(RocdError):
                await self._save(old)
            raise
        self.config = config
        self._publish(
            "vad.updated",
            self.uid,
            {"vad": msgspec.to_builtins(self.view()), "changed": changed},
        )
        try:
            await self._ensure()
        except Unavailable as exc:
            self._set_state("pending", exc.message)
        except RocdError:
            # Refused by the driver: back to what worked.
            self.config = old
            await self._save()
            await self._ensure_quietly()
            raise
        return self.view()

    async def _rename_device(self, device_id: str, name: str) -> None:
        """The device's description in its driver follows the VAD's name; a driver that
        cannot rename in place keeps the old description (said in the log), rather than
        cutting off the apps using the device."""
        if self._driver is None:
            return
        try:
            with audio_errors():
                await self._driver.set_description(device_id, name)
        except (RocdError, AudioError) as exc:
            log.warning(
                "vad %s renamed in rocd only (%s keeps its old name): %s", self.uid, device_id, exc
            )

    async def _destroy(self) -> None:
        # Forgotten first: when the state cannot be saved (503), nothing has changed.
        await self._store.ask(DeleteSetting("vad", self.uid))
        await self._remove_device()
        if self.config.device is not None:
            with contextlib.suppress(StorageFailed):  # a device setting left is harmless
                await self._store.ask(DeleteSetting("device", self.config.device))

    async def _save(self, config: VadConfig | None = None) -> None:
        config = self.config if config is None else config
        await self._store.ask(PutSetting("vad", self.uid, msgspec.to_builtins(config)))
