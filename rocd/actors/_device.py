"""The device actor: one per device a driver reports; its runtime state and its settings.

Lifetime: the audio service starts it when a driver reports the device (at start, or when
the device appears) and stops it when the device goes away. Its settings stay in the store
(namespace "device", key = device id) and are applied again whenever it starts: daemon
restart, device back, restart after a crash.

Whose change is it? A change rocd makes (volume, mute) comes back from the driver as
events too, possibly through intermediate states (volume set, mute not yet). Driver events
are numbered (`AudioDriver.event_count`); after changing the device the actor notes the
count, so events numbered up to it report rocd's own change (runtime state only), and
later ones are changes made behind rocd's back (another mixer, pactl): they update the
runtime state *and* the persisted setting, published as device.updated. Events older than
what the actor already knows are ignored. (An outside change published in the instant
between rocd's own call and the count is taken as rocd's.)

Failures: a driver refusal (device gone, driver down, bad value) is answered as a
RocdError; any other driver failure crashes the actor, its supervisor restarts it and the
crash is published (actor.crashed). Applying settings at start never fails the start: the
error is published as device.error instead, so a device whose backend misbehaves does not
restart in a loop.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import msgspec
import trio
from msgspec import UNSET

from rocd.audio import AudioDriver, AudioError, DeviceInfo, SampleSpec
from rocd.errors import Conflict, RocdError

from ._actor import Actor, ActorRef
from ._audio_types import (
    VOLUME_EPSILON,
    Device,
    DeviceConfig,
    DeviceEndpoint,
    DeviceUpdate,
    GetDevice,
    GetEndpoint,
    Observed,
    UpdateDevice,
    audio_errors,
    vad_of_device,
)
from ._node import check_name
from ._registry import Registry
from ._store import GetSetting, PutSetting
from ._supervisor import Publish

log = logging.getLogger("rocd.devices")

#: DeviceInfo fields whose change is worth an event (state: running / idle / suspended).
_WATCHED = ("volume", "mute", "state", "description", "rate", "channels", "clocked")


def changed_fields(before: DeviceInfo, after: DeviceInfo) -> list[str]:
    """The watched fields that differ (volumes within VOLUME_EPSILON are the same)."""
    out = []
    for name in _WATCHED:
        a, b = getattr(before, name), getattr(after, name)
        if name == "volume":
            if abs(a - b) > VOLUME_EPSILON:
                out.append(name)
        elif a != b:
            out.append(name)
    return out


class DeviceActor(Actor):
    kind = "device"
    mailbox_capacity = 256

    def __init__(
        self,
        info: DeviceInfo,
        seq: int,
        *,
        driver: AudioDriver,
        store: ActorRef,
        publish: Publish,
        peer: str,
        registry: Registry,
    ) -> None:
        super().__init__(info.id)
        self.info = info
        self.info_seq = seq  # number of the driver event `info` comes from (or is newer than)
        self.applied_seq = seq  # events up to this number report rocd's own changes
        self.config = DeviceConfig()
        self._driver = driver
        self._store = store
        self._publish = publish
        self._peer = peer
        self._registry = registry
        self._announced = False

    async def on_start(self) -> None:
        self.config = await self._load()
        try:
            with audio_errors():
                await self._apply(self.config.volume, self.config.mute)
        except (RocdError, AudioError) as exc:
            log.warning("%s: settings not applied: %s", self.uid, exc)
            self._publish("device.error", self.uid, {"device": self.uid, "error": str(exc)})
        if not self._announced:
            self._announced = True
            self._publish("device.added", self.uid, {"device": self._json()})

    async def handle(self, msg: Any) -> Any:
        match msg:
            case GetDevice():
                return self.view()
            case Observed(info=info, seq=seq):
                await self._observed(info, seq)
                return None
            case UpdateDevice(update=update):
                return await self._update(update)
            case GetEndpoint():
                if not self.config.enabled:
                    raise Conflict(f"device {self.uid!r} is disabled")
                return DeviceEndpoint(
                    self._driver,
                    self.uid,
                    self.spec,
                    self.config.latency_ms,
                    self.info.direction,
                )
        return await super().handle(msg)

    @property
    def spec(self) -> SampleSpec:
        """The format rocd streams this device at."""
        return SampleSpec(
            self.config.rate or self.info.rate, self.config.channels or self.info.channels
        )

    def view(self) -> Device:
        info, cfg = self.info, self.config
        vad = vad_of_device(info)
        return Device(
            id=info.id,
            peer=self._peer,
            driver=info.driver,
            direction=info.direction,
            name=cfg.name or info.description or info.name,
            description=info.description,
            system_name=info.name,
            virtual=info.virtual,
            vad=vad if vad is not None and self._registry.find("vad", vad) else None,
            state=info.state,
            clocked=info.clocked,
            enabled=cfg.enabled,
            volume=round(info.volume, 4),
            mute=info.mute,
            rate=cfg.rate or info.rate,
            channels=cfg.channels or info.channels,
            latency_ms=cfg.latency_ms,
            native_rate=info.rate,
            native_channels=info.channels,
            monitor_of=info.monitor_of,
            config=cfg,
        )

    def _json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self.view())  # type: ignore[no-any-return]

    # -- changes ------------------------------------------------------------------------

    async def _apply(self, volume: float | None, mute: bool | None) -> None:
        """Set what differs from the device's runtime state; note whose events follow."""
        changed = False
        try:
            if volume is not None and abs(self.info.volume - volume) > VOLUME_EPSILON:
                changed = True
                await self._driver.set_volume(self.uid, volume)
                self.info = msgspec.structs.replace(self.info, volume=volume)
            if mute is not None and self.info.mute != mute:
                changed = True
                await self._driver.set_mute(self.uid, mute)
                self.info = msgspec.structs.replace(self.info, mute=mute)
        finally:
            if changed:
                self.applied_seq = max(self.applied_seq, self._driver.event_count)

    async def _update(self, update: DeviceUpdate) -> Device:
        changes = {
            f: getattr(update, f)
            for f in update.__struct_fields__
            if getattr(update, f) is not UNSET
        }
        if isinstance(changes.get("name"), str):
            changes["name"] = check_name(changes["name"])
        if "enabled" in changes and changes["enabled"] is None:
            changes["enabled"] = DeviceConfig().enabled  # null: back to the default
        config = msgspec.structs.replace(self.config, **changes)
        old = self.config
        if config != old:
            # Saved first: when the state cannot be saved (503), nothing has changed.
            await self._save(config)
        try:
            with audio_errors():
                await self._apply(changes.get("volume"), changes.get("mute"))
        except BaseException:
            if config != old:
                with trio.CancelScope(shield=True), contextlib.suppress(RocdError):
                    await self._save(old)
            raise
        self.config = config
        if changes:
            self._publish(
                "device.updated",
                self.uid,
                {"device": self._json(), "changed": sorted(changes), "origin": "api"},
            )
        return self.view()

    async def _observed(self, info: DeviceInfo, seq: int) -> None:
        if seq <= self.info_seq:
            return  # older than what we know
        before, self.info, self.info_seq = self.info, info, seq
        changed = changed_fields(before, info)
        if seq <= self.applied_seq:
            # Our own change coming back: already announced.
            changed = [f for f in changed if f not in ("volume", "mute")]
        else:
            adopted: dict[str, Any] = {}
            if "volume" in changed:
                adopted["volume"] = round(info.volume, 4)
            if "mute" in changed:
                adopted["mute"] = info.mute
            if adopted:
                self.config = msgspec.structs.replace(self.config, **adopted)
                await self._save()
        if changed:
            self._publish(
                "device.updated",
                self.uid,
                {"device": self._json(), "changed": changed, "origin": "driver"},
            )

    # -- persistence --------------------------------------------------------------------

    async def _load(self) -> DeviceConfig:
        stored = await self._store.ask(GetSetting("device", self.uid))
        if stored is None:
            return DeviceConfig()
        try:
            return msgspec.convert(stored, DeviceConfig)
        except msgspec.ValidationError as exc:
            log.warning("%s: stored settings ignored (%s)", self.uid, exc)
            return DeviceConfig()

    async def _save(self, config: DeviceConfig | None = None) -> None:
        config = self.config if config is None else config
        await self._store.ask(PutSetting("device", self.uid, msgspec.to_builtins(config)))
