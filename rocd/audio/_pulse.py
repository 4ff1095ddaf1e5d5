"""PulseAudio (and PipeWire through pipewire-pulse) as an AudioDriver.

Listing, control and change events go through libpulse on one thread (see _pulse_link:
names come back as they are, non-ASCII included), audio through parec / pacat children
(see _pulse_io). Any sink or source event makes the driver list again and publish the
difference, so events are exact (a "change" that changes nothing rocd shows is not
reported) and a burst of server events costs one listing.

Virtual devices:
- speaker: a `module-null-sink` (float32, no rewinds so a recorder started later does not
  lose the start of playback). Apps play into the sink; rocd captures it by opening the
  sink itself for capture, which reads its monitor.
- microphone: a hidden null sink (the feed, tagged rocd.role=feed) plus a
  `module-remap-source` of its monitor with the microphone's name. rocd opens the
  microphone for playback, which writes into the feed; apps record the remap source.
  Both are bit-exact at the device's own rate (verified in tests/audio).
Both carry the property rocd.vad so a later run can find and delete them. They live in
the server: after a server restart they are gone and whoever owns them makes them again
(on DriverUp). Their description is any text (quoted for module arguments, see
_pulse_ctl), and `set_description` changes it in place through the server's command-line
protocol (module-cli-protocol-unix, loaded for the moment on a private socket), so apps
playing into a device are not cut off when it is renamed.

Server down: the driver reports status down with the reason, publishes DriverDown and a
DeviceRemoved for each device, and retries with exponential backoff (the sleep function
is injected so tests need not wait). When the server is back it publishes DriverUp and
the devices again. Nothing here raises into the caller's nursery; calls made while down
raise DriverUnavailable.
"""

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pulsectl
import trio

from ._driver import (
    DeviceEvent,
    DeviceInfo,
    DeviceRemoved,
    DriverDown,
    DriverFeatures,
    DriverStatus,
    DriverUp,
    VirtualKind,
)
from ._errors import AudioError, DeviceNotFound, DriverUnavailable, Unsupported
from ._format import SampleSpec, check_volume
from ._pulse_ctl import (
    DRIVER,
    ROLE_FEED,
    Pactl,
    PaDevice,
    PulseDevice,
    feed_of,
    module_arg_quoted,
    pa_device,
    proplist_value,
    snapshot,
    split_id,
)
from ._pulse_io import PulseCapture, PulsePlayback, open_capture_stream, open_playback_stream
from ._pulse_link import PulseLink, open_pulse_link
from ._tasks import open_service_nursery
from ._watch import EventHub, check_name, diff_devices

Sleep = Callable[[float], Awaitable[None]]
PulseStreamT = TypeVar("PulseStreamT", PulseCapture, PulsePlayback)


class PulseDriver:
    """A driver for one sound server; run it with `open_pulse_driver`."""

    features = DriverFeatures(virtual=frozenset({"speaker", "microphone"}), volume=True)

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        latency_ms: int = 20,
        sleep: Sleep = trio.sleep,
        backoff: tuple[float, float] = (0.1, 5.0),
    ) -> None:
        self.pactl = Pactl(env)
        self.latency_ms = latency_ms  # target latency of each stream's server buffer
        self._sleep = sleep
        self._backoff = backoff  # (first, longest) delay between reconnections, seconds
        self._hub = EventHub()
        self._devices: dict[str, PulseDevice] = {}
        self._sinks: list[PaDevice] = []  # every sink, feeds included
        self._link: PulseLink | None = None
        #: The server libpulse connects to: the driver's PULSE_SERVER, else libpulse's
        #: own lookup (the process environment, then the user's runtime directory).
        self.server = (env or {}).get("PULSE_SERVER")
        self._status = DriverStatus(DRIVER, up=False, reason="not started")
        self._refresh_lock = trio.Lock()
        self._dirty = trio.Event()
        #: The open parec / pacat streams by device id (ended when their device goes).
        self._streams: dict[str, set[PulseCapture | PulsePlayback]] = {}

    @property
    def name(self) -> str:
        return DRIVER

    @property
    def status(self) -> DriverStatus:
        return self._status

    @property
    def event_count(self) -> int:
        return self._hub.published

    def watch(
        self, buffer: int = 256
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[DeviceEvent]]:
        return self._hub.watch(buffer)

    async def list_devices(self) -> list[DeviceInfo]:
        if not self._status.up:
            await trio.lowlevel.checkpoint()
            return []
        try:
            await self.refresh()
        except DriverUnavailable:
            return []  # went down just now; the supervisor reports it
        return [d.info for d in self._devices.values()]

    # -- supervision --------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the server for ever: connect, watch, and reconnect after a failure.

        Reports started after the first attempt, up or down. Never raises AudioError.
        """
        first, longest = self._backoff
        delay = first
        pending: list[trio.TaskStatus[None]] = [task_status]

        def report_started() -> None:
            if pending:
                pending.pop().started()

        while True:
            reason = "sound server closed the connection"
            try:
                await self._follow(report_started)
            except* AudioError as group:
                reason = _first_reason(group)
            if self._status.up:
                delay = first
            self._set_down(reason)
            report_started()
            await self._sleep(delay)
            delay = min(longest, delay * 2)

    async def _follow(self, report_started: Callable[[], None]) -> None:
        """One connection: subscribe, list, publish; returns when the server goes away."""
        async with (
            open_pulse_link(self.server, self.pactl.timeout) as link,
            trio.open_nursery() as nursery,
        ):
            # Subscribed before the first listing: no change falls in between.
            self._link = link
            try:
                async with self._refresh_lock:
                    await self._relist()
                    self._status = DriverStatus(DRIVER, up=True)
                    self._hub.publish(DriverUp(DRIVER))
                    self._hub.publish_all(diff_devices({}, self._infos()))
                report_started()
                nursery.start_soon(self._refresher)
                async for _ in link.changes:
                    self._dirty.set()
                nursery.cancel_scope.cancel()
            finally:
                self._link = None

    async def _refresher(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty = trio.Event()
            await self.refresh()

    async def refresh(self) -> None:
        """List the server now and publish what changed (DriverUnavailable when down).
        The streams of a device that is gone are ended: the server has moved them to
        another device (its fallback), where they must not play or record."""
        async with self._refresh_lock:
            before = self._infos()
            await self._relist()
            events = diff_devices(before, self._infos())
            for event in events:
                if isinstance(event, DeviceRemoved):
                    self._end_streams(event.device.id, "the device is gone")
            self._hub.publish_all(events)

    @asynccontextmanager
    async def _tracked(
        self, device_id: str, stream: AbstractAsyncContextManager[PulseStreamT]
    ) -> AsyncIterator[PulseStreamT]:
        async with stream as opened:
            streams = self._streams.setdefault(device_id, set())
            streams.add(opened)
            try:
                yield opened
            finally:
                streams.discard(opened)
                if not streams:
                    self._streams.pop(device_id, None)

    def _end_streams(self, device_id: str, reason: str) -> list[PulseCapture | PulsePlayback]:
        ended = list(self._streams.get(device_id, ()))
        for stream in ended:
            stream.end(reason)
        return ended

    async def _relist(self) -> None:
        self._sinks, sources = await self._call(_list_all)
        self._devices = snapshot(self._sinks, sources)

    async def _call(self, fn: Callable[[pulsectl.Pulse], Any]) -> Any:
        """`fn(pulse)` on the connection's thread (DriverUnavailable while down)."""
        link = self._link
        if link is None:
            raise DriverUnavailable(self._status.reason or "not connected")
        return await link.call(fn)

    def _infos(self) -> dict[str, DeviceInfo]:
        return {key: d.info for key, d in self._devices.items()}

    def _set_down(self, reason: str) -> None:
        was_up = self._status.up
        self._status = DriverStatus(DRIVER, up=False, reason=reason)
        if was_up:
            self._hub.publish(DriverDown(DRIVER, reason))
            for d in self._devices.values():
                self._hub.publish(DeviceRemoved(d.info))
        self._devices = {}

    # -- devices ------------------------------------------------------------------------

    def _get(self, device_id: str) -> PulseDevice:
        split_id(device_id)  # DeviceNotFound for another driver's id
        if not self._status.up:
            raise DriverUnavailable(self._status.reason)
        try:
            return self._devices[device_id]
        except KeyError:
            raise DeviceNotFound(device_id) from None

    async def _lookup(self, device_id: str) -> PulseDevice:
        try:
            return self._get(device_id)
        except DeviceNotFound:
            await self.refresh()  # it may be newer than the last event
            return self._get(device_id)

    async def set_volume(self, device_id: str, volume: float) -> None:
        level = check_volume(volume)  # 1.0 = PA_VOLUME_NORM
        d = await self._lookup(device_id)
        await self._call(lambda pulse: pulse.volume_set_all_chans(_entry(pulse, d), level))
        await self.refresh()

    async def set_mute(self, device_id: str, mute: bool) -> None:
        d = await self._lookup(device_id)
        await self._call(lambda pulse: pulse.mute(_entry(pulse, d), bool(mute)))
        await self.refresh()

    def open_capture(
        self, device_id: str, spec: SampleSpec | None = None
    ) -> AbstractAsyncContextManager[PulseCapture]:
        return self._open_capture(device_id, spec)

    @asynccontextmanager
    async def _open_capture(
        self, device_id: str, spec: SampleSpec | None
    ) -> AsyncIterator[PulseCapture]:
        d = await self._lookup(device_id)
        pa_name = d.pa_name + ".monitor" if d.kind == "sink" else d.pa_name
        if d.kind == "sink":
            monitor = self._devices.get(f"pulse:source:{pa_name}")
            if monitor is None or monitor.info.monitor_of != device_id:
                raise DeviceNotFound(f"{device_id} has no monitor to capture")
        async with self._tracked(
            device_id,
            open_capture_stream(
                self.pactl.env, pa_name, device_id, spec or d.info.spec, self.latency_ms
            ),
        ) as stream:
            yield stream

    def open_playback(
        self,
        device_id: str,
        spec: SampleSpec | None = None,
        *,
        latency_ms: int | None = None,
        ring_ms: int | None = None,
    ) -> AbstractAsyncContextManager[PulsePlayback]:
        """See `AudioDriver.open_playback`; `latency_ms` replaces the driver's latency for
        this stream and `ring_ms` the length of its ring (see `open_playback_stream`): a
        stream fed by a network receiver wants more headroom than 20 ms against a daemon
        that gets no CPU for a while."""
        return self._open_playback(device_id, spec, latency_ms or self.latency_ms, ring_ms)

    @asynccontextmanager
    async def _open_playback(
        self, device_id: str, spec: SampleSpec | None, latency_ms: int, ring_ms: int | None
    ) -> AsyncIterator[PulsePlayback]:
        d = await self._lookup(device_id)
        pa_name = d.pa_name
        if d.kind == "source":
            if d.properties.get("rocd.vad") != "microphone":
                raise DeviceNotFound(f"{device_id} is a source, not a sink")
            await self.refresh()
            feed = feed_of(self._sinks, d.pa_name)
            if feed is None:
                raise DeviceNotFound(f"{device_id} lost its feed sink")
            pa_name = feed.name
        async with self._tracked(
            device_id,
            open_playback_stream(
                self.pactl.env, pa_name, device_id, spec or d.info.spec, latency_ms, ring_ms
            ),
        ) as stream:
            yield stream

    # -- virtual devices ----------------------------------------------------------------

    async def create_virtual(
        self, kind: VirtualKind, name: str, spec: SampleSpec, *, description: str = ""
    ) -> DeviceInfo:
        check_name(name)
        if not self._status.up:
            raise DriverUnavailable(self._status.reason)
        await self.refresh()
        taken = {d.pa_name for d in self._devices.values()}
        if name in taken or f"{name}.monitor" in taken or f"{name}_feed" in taken:
            raise ValueError(f"a device named {name!r} exists already")
        desc = description or name
        fmt = ["format=float32le", f"rate={spec.rate}", f"channels={spec.channels}"]
        if kind == "speaker":
            props = f"device.description={proplist_value(desc)} rocd.vad=speaker"
            await self._load(
                "module-null-sink",
                f"sink_name={name}",
                *fmt,
                "norewinds=1",
                f"sink_properties={module_arg_quoted(props)}",
            )
            device_id = f"pulse:sink:{name}"
        elif kind == "microphone":
            feed = f"{name}_feed"
            feed_props = (
                f"device.description={proplist_value(desc + ' (feed)')} "
                f"rocd.role={ROLE_FEED} rocd.feed_of={name}"
            )
            feed_module = await self._load(
                "module-null-sink",
                f"sink_name={feed}",
                *fmt,
                "norewinds=1",
                f"sink_properties={module_arg_quoted(feed_props)}",
            )
            try:
                props = f"device.description={proplist_value(desc)} rocd.vad=microphone"
                await self._load(
                    "module-remap-source",
                    f"source_name={name}",
                    f"master={feed}.monitor",
                    *fmt,
                    "remix=no",
                    f"source_properties={module_arg_quoted(props)}",
                )
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._unload(feed_module)
                raise
            device_id = f"pulse:source:{name}"
        else:
            raise Unsupported(f"unknown virtual device kind {kind!r}")
        await self.refresh()
        return self._get(device_id).info

    async def _load(self, module: str, *args: str) -> int:
        """Load a server module; its index. Shielded so a cancel cannot orphan it."""
        line = " ".join(args)
        with trio.CancelScope(shield=True):
            index: int = await self._call(lambda pulse: pulse.module_load(module, line))
        return index

    async def _unload(self, index: int) -> None:
        await self._call(lambda pulse: pulse.module_unload(index))

    async def delete_virtual(self, device_id: str) -> None:
        d = await self._lookup(device_id)
        vad = d.properties.get("rocd.vad")
        if vad is None or d.module is None:
            raise Unsupported(f"{device_id} was not made by rocd")
        modules = [d.module]
        if vad == "microphone":
            feed = feed_of(self._sinks, d.pa_name)
            if feed is not None and feed.owner_module is not None:
                modules.append(feed.owner_module)
        # Ours first: the server would move them to its fallback device, which may be
        # a real speaker, as soon as the module goes.
        ended = self._end_streams(device_id, "deleted")
        with trio.move_on_after(1.0):
            for stream in ended:
                await stream.gone.wait()
        with trio.CancelScope(shield=True):
            for module in modules:
                await self._unload(module)
        await self.refresh()

    async def set_description(self, device_id: str, description: str) -> None:
        """Rename a virtual device in place: apps playing into it or recording from it are
        not cut off. Unsupported where the server has no command-line protocol module
        (pipewire-pulse)."""
        d = await self._lookup(device_id)
        if d.properties.get("rocd.vad") is None:
            raise Unsupported(f"{device_id} was not made by rocd")
        commands = [
            f"update-{d.kind}-proplist {d.pa_name} device.description={proplist_value(description)}"
        ]
        if d.kind == "sink":
            monitor = f"device.description={proplist_value('Monitor of ' + description)}"
            commands.append(f"update-source-proplist {d.pa_name}.monitor {monitor}")
        else:
            feed = feed_of(self._sinks, d.pa_name)
            if feed is not None:
                feed_desc = proplist_value(description + " (feed)")
                commands.append(f"update-sink-proplist {feed.name} device.description={feed_desc}")
        await self._cli(commands)
        await self.refresh()

    async def _cli(self, commands: list[str]) -> None:
        """Run commands of the server's command-line protocol (pacmd's) through a socket of
        ours, loaded for the moment and unloaded after (shielded: never left loaded)."""
        where = Path(await trio.to_thread.run_sync(tempfile.mkdtemp, None, "rocd-cli-"))
        socket_path = where / "cli"
        try:
            with trio.CancelScope(shield=True):
                try:
                    index = await self._load("module-cli-protocol-unix", f"socket={socket_path}")
                except AudioError as exc:
                    raise Unsupported(f"the sound server cannot rename in place: {exc}") from exc
                try:
                    with trio.fail_after(self.pactl.timeout):
                        errors = await _cli_session(socket_path, commands)
                finally:
                    await self._unload(index)
        finally:
            await trio.to_thread.run_sync(shutil.rmtree, where, True)
        if errors:
            raise AudioError(f"sound server refused: {'; '.join(errors)}")


async def _cli_session(path: Path, commands: list[str]) -> list[str]:
    """Send `commands` to a PulseAudio CLI socket; the error lines it answered."""
    stream = await trio.open_unix_socket(os.fspath(path))
    async with stream:
        await stream.send_all("".join(f"{c}\n" for c in commands).encode())
        await stream.send_eof()  # the server answers, then closes on end of input
        answer = b""
        while chunk := await stream.receive_some(4096):
            answer += chunk
    return [line for line in answer.decode(errors="replace").splitlines() if line.strip()]


def _entry(pulse: pulsectl.Pulse, device: PulseDevice) -> Any:
    """The pulsectl entry of `device` now (on the link's thread)."""
    try:
        if device.kind == "sink":
            return pulse.get_sink_by_name(device.pa_name)
        return pulse.get_source_by_name(device.pa_name)
    except pulsectl.PulseIndexError:
        raise DeviceNotFound(device.info.id) from None


def _first_reason(group: BaseExceptionGroup[AudioError]) -> str:
    """The message of the first error in a (possibly nested) group."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return str(error) or type(error).__name__


def _list_all(pulse: pulsectl.Pulse) -> tuple[list[PaDevice], list[PaDevice]]:
    """Every sink and source, read on the link's thread."""
    sinks = [pa_device(e, "sink") for e in pulse.sink_list()]
    return sinks, [pa_device(e, "source") for e in pulse.source_list()]


@asynccontextmanager
async def open_pulse_driver(
    env: Mapping[str, str] | None = None,
    *,
    latency_ms: int = 20,
    sleep: Sleep = trio.sleep,
    backoff: tuple[float, float] = (0.1, 5.0),
) -> AsyncIterator[PulseDriver]:
    """A PulseDriver following its server while the context is open.

    `env` adds to the children's environment (PULSE_SERVER, PULSE_COOKIE, ...). On entry
    the first connection attempt has been made: `status` says whether it worked. Leaving
    the context stops following and ends the watchers.
    """
    driver = PulseDriver(env, latency_ms=latency_ms, sleep=sleep, backoff=backoff)
    async with open_service_nursery() as nursery:
        await nursery.start(driver.run)
        try:
            yield driver
        finally:
            nursery.cancel_scope.cancel()
            driver._hub.close()
