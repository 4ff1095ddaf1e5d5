"""The streams' audio on one instance: one ticker, one mix per destination device, one
fan-out per source device.

The control plane (the stream actors) never touches a sample: it opens a device here,
attaches a link to it and detaches it, and reads counters. The audio path (a `MixLink`
or `FanoutLink` loop, in a task of the stream host's nursery) never waits on an actor.

- An output bus is a destination device opened once, whatever the number of streams
  playing into it (their receivers are summed by its `MixLink`).
- An input bus is a source device opened once, whatever the number of streams it feeds
  (its `FanoutLink` hands each chunk to every attached sender).
- Unclocked devices (files, tones, null sinks) are paced by the one `Ticker` of the
  daemon; clocked ones (a sound server) pace their own loop.

A bus whose device breaks (the sound server restarted, the device was unplugged) says so
(`broken`) and opens the device again every `RETRY_S` seconds while it has users; links
stay attached and resume. A bus closes when its last user releases it. A source that ends
(a file) ends its bus: `ended`, and its senders are flushed.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import trio

from rocd.audio import AudioError, DeviceNotFound, PlaybackStream, PulseDriver
from rocd.net.roc import FanoutLink, MixLink, Ticker

from ._audio_types import DeviceEndpoint, audio_errors

log = logging.getLogger("rocd.streams")

#: Seconds between attempts to open a device again after it broke.
RETRY_S = 1.0
#: Milliseconds of pacat's buffer in the sound server for streams: it keeps playing while
#: the daemon gets no CPU. A longer stall plays silence and shifts everything after it:
#: with the driver's 20 ms, and with 60 ms at a load average of 4-6 on 2 cores, the tests
#: saw such gaps; with 80 ms, none in 10 runs.
PLAYBACK_MS = 80
#: Milliseconds of the ring in front of pacat: one chunk of the mix loop. It adds its
#: length to the latency and plays nothing through a stalled daemon; a mix loop late
#: against the pump in the same process is waited for by the pump (see rocd.audio's
#: `_pulse_io`). With 30 ms here, the first audio of a stream waited 20 ms in it.
RING_MS = 10


@dataclass(eq=False)
class OutputBus:
    device: str
    users: int = 0
    mix: MixLink | None = None
    broken: str | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


@dataclass(eq=False)
class InputBus:
    device: str
    users: int = 0
    fan: FanoutLink | None = None
    broken: str | None = None
    ended: bool = False
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


class AudioPlane:
    """Devices opened for streams on this instance; see the module docstring."""

    def __init__(self, nursery: trio.Nursery, ticker: Ticker) -> None:
        self._nursery = nursery
        self.ticker = ticker
        self.outputs: dict[str, OutputBus] = {}
        self.inputs: dict[str, InputBus] = {}

    # -- destinations -------------------------------------------------------------------

    async def acquire_output(self, endpoint: DeviceEndpoint) -> OutputBus:
        """The device's output bus, opened now if it is not yet (the driver's refusal is
        raised as a RocdError)."""
        bus = self.outputs.get(endpoint.device_id)
        if bus is None:
            bus = OutputBus(endpoint.device_id)
            with audio_errors():
                await self._nursery.start(self._run_output, bus, endpoint)
            self.outputs[endpoint.device_id] = bus
        bus.users += 1
        return bus

    def release_output(self, bus: OutputBus) -> None:
        bus.users -= 1
        if bus.users <= 0:
            bus.scope.cancel(reason="no stream left on the device")
            if self.outputs.get(bus.device) is bus:
                del self.outputs[bus.device]

    async def _run_output(
        self, bus: OutputBus, endpoint: DeviceEndpoint, *, task_status: trio.TaskStatus[None]
    ) -> None:
        first = True
        with bus.scope:
            while True:
                try:
                    async with self._open_playback(endpoint) as sink:
                        if bus.mix is None:
                            bus.mix = MixLink(sink, ticker=self.ticker)
                        else:
                            bus.mix.sink = sink
                        bus.broken = None
                        if first:
                            first = False
                            task_status.started()
                        await bus.mix.run()
                except (AudioError, OSError) as exc:
                    if first:
                        raise
                    bus.broken = _broken(bus.device, bus.broken, exc, "output")
                await trio.sleep(RETRY_S)

    def _open_playback(
        self, endpoint: DeviceEndpoint
    ) -> AbstractAsyncContextManager[PlaybackStream]:
        """A sound server's playback with `PLAYBACK_MS` of buffer in the server (the
        device's configured latency if it has one) behind a `RING_MS` ring."""
        driver = endpoint.driver
        if isinstance(driver, PulseDriver):
            latency = endpoint.latency_ms or PLAYBACK_MS
            return driver.open_playback(
                endpoint.device_id, endpoint.spec, latency_ms=latency, ring_ms=RING_MS
            )
        return driver.open_playback(endpoint.device_id, endpoint.spec)

    # -- sources ------------------------------------------------------------------------

    async def acquire_input(self, endpoint: DeviceEndpoint) -> InputBus:
        """The device's input bus, opened now if it is not yet (or if its source ended)."""
        bus = self.inputs.get(endpoint.device_id)
        if bus is None or bus.ended:
            bus = InputBus(endpoint.device_id)
            with audio_errors():
                await self._nursery.start(self._run_input, bus, endpoint)
            self.inputs[endpoint.device_id] = bus
        bus.users += 1
        return bus

    def release_input(self, bus: InputBus) -> None:
        bus.users -= 1
        if bus.users <= 0:
            bus.scope.cancel(reason="no stream left on the device")
            if self.inputs.get(bus.device) is bus:
                del self.inputs[bus.device]

    async def _run_input(
        self, bus: InputBus, endpoint: DeviceEndpoint, *, task_status: trio.TaskStatus[None]
    ) -> None:
        first = True
        with bus.scope:
            while not bus.ended:
                try:
                    async with endpoint.driver.open_capture(
                        endpoint.device_id, endpoint.spec
                    ) as source:
                        if bus.fan is None:
                            bus.fan = FanoutLink(source, ticker=self.ticker)
                        else:
                            bus.fan.source = source
                        bus.broken = None
                        if first:
                            first = False
                            task_status.started()
                        await bus.fan.run()
                        bus.ended = True
                        log.info("source %s ended", bus.device)
                except (AudioError, OSError) as exc:
                    if first:
                        raise
                    bus.broken = _broken(bus.device, bus.broken, exc, "input")
                    await trio.sleep(RETRY_S)
            await trio.sleep_forever()  # ended: held until the last user releases it


def _broken(device: str, before: str | None, exc: Exception, side: str) -> str:
    """Why a device's stream is down, in words (a device that is gone says so, not just
    its id); logged as a warning when that changes, not at each retry (every `RETRY_S`)."""
    if isinstance(exc, DeviceNotFound) and str(exc) == device:
        why = f"{device} is gone (deleted, unplugged or its driver down); retrying"
    else:
        why = str(exc) or type(exc).__name__
    if why != before:
        log.warning("%s %s broke: %s", side, device, why)
    else:
        log.debug("%s %s still broken: %s", side, device, why)
    return why
