"""Test signals and a null sink as devices, for machines with no sound card.

`ToneGenerator` is pure (block in, position advanced); `ToneDriver` exposes one source per
configured tone (`tone:<name>`) and a null sink (`tone:null`) behind the AudioDriver
interface. All are unclocked: they answer at once and the reader paces them (`Paced`).
A virtual speaker on this driver is another null sink.
"""

import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Literal

import msgspec
import numpy as np
import trio

from ._driver import DeviceInfo, DriverFeatures, VirtualKind
from ._errors import Unsupported
from ._format import Frames, SampleSpec, as_frames
from ._watch import SoftStream, TableDriver, check_name

ToneKind = Literal["sine", "sweep", "noise", "silence"]


class Tone(msgspec.Struct, frozen=True, kw_only=True):
    """A test signal, the same on every channel.

    sine: `frequency` Hz. sweep: logarithmic from `frequency` to `end_frequency` Hz in
    `period` seconds, then again. noise: uniform white noise from `seed`. Peak `amplitude`.
    """

    kind: ToneKind
    frequency: float = 440.0
    end_frequency: float = 20000.0
    period: float = 10.0
    amplitude: float = 0.5
    seed: int = 0


DEFAULT_TONES: Mapping[str, Tone] = {
    "sine": Tone(kind="sine"),
    "sweep": Tone(kind="sweep", frequency=20.0),
    "noise": Tone(kind="noise", amplitude=0.25),
    "silence": Tone(kind="silence"),
}


class ToneGenerator:
    """Blocks of a Tone at a SampleSpec, continuous across blocks."""

    def __init__(self, tone: Tone, spec: SampleSpec) -> None:
        if tone.kind in ("sine", "sweep") and not 0 < tone.frequency < spec.rate / 2:
            raise ValueError(f"{tone.frequency} Hz cannot be played at {spec.rate} Hz")
        self.tone = tone
        self.spec = spec
        self.position = 0  # frames generated so far
        self._rng = np.random.default_rng(tone.seed)

    def generate(self, frames: int) -> Frames:
        tone, rate = self.tone, self.spec.rate
        if tone.kind == "silence":
            mono = np.zeros(frames, np.float64)
        elif tone.kind == "noise":
            mono = self._rng.uniform(-1.0, 1.0, frames)
        else:
            n = self.position + np.arange(frames, dtype=np.float64)
            if tone.kind == "sine":
                # Phase from the integer position modulo one cycle's worth of samples keeps
                # float64 exact over days of audio.
                if tone.frequency.is_integer():
                    n %= rate // math.gcd(rate, int(tone.frequency))
                t = n / rate
                mono = np.sin(2 * np.pi * tone.frequency * t)
            else:
                span = max(1, round(tone.period * rate))
                t = (n % span) / rate
                end = min(tone.end_frequency, rate / 2 * 0.999)
                k = math.log(end / tone.frequency) / tone.period
                mono = np.sin(2 * np.pi * tone.frequency * np.expm1(k * t) / k)
        self.position += frames
        block = (mono * tone.amplitude).astype(np.float32)
        return np.repeat(block[:, None], self.spec.channels, axis=1)


class ToneCapture(SoftStream):
    """A tone device opened for reading (unclocked)."""

    def __init__(self, driver: TableDriver, device_id: str, generator: ToneGenerator) -> None:
        super().__init__(driver, device_id, generator.spec)
        self._gen = generator

    async def read(self, frames: int) -> Frames:
        await trio.lowlevel.checkpoint()
        block = self._gain(self._gen.generate(frames))
        self._frames += frames
        return block


class NullPlayback(SoftStream):
    """A sink that takes everything at once and keeps nothing (unclocked)."""

    async def write(self, frames: Frames) -> None:
        await trio.lowlevel.checkpoint()
        block = as_frames(frames, self._spec)
        self._gain(block)  # raises once the sink is gone
        self._frames += len(block)


class ToneDriver(TableDriver):
    """Tone sources and null sinks (driver name "tone")."""

    features = DriverFeatures(virtual=frozenset({"speaker"}), volume=True)

    def __init__(
        self, spec: SampleSpec | None = None, tones: Mapping[str, Tone] = DEFAULT_TONES
    ) -> None:
        super().__init__("tone")
        self.spec = spec or SampleSpec()
        self._tones: dict[str, Tone] = {}
        for name, tone in tones.items():
            ToneGenerator(tone, self.spec)  # checks the tone fits the spec
            self._tones[f"tone:{check_name(name)}"] = tone
            self.table.add(self._info(f"tone:{name}", name, tone.kind, "source", False))
        self.table.add(self._info("tone:null", "null", "discards what it is given", "sink", False))

    def _info(
        self, device_id: str, name: str, description: str, direction: str, virtual: bool
    ) -> DeviceInfo:
        return self.soft_device(
            device_id, name, description, direction, virtual=virtual, spec=self.spec
        )

    @asynccontextmanager
    async def open_capture(
        self, device_id: str, spec: SampleSpec | None = None
    ) -> AsyncIterator[ToneCapture]:
        info = self.device(device_id, "source")
        generator = ToneGenerator(self._tones[device_id], spec or info.spec)
        await trio.lowlevel.checkpoint()
        self.table.set_state(device_id, "running")
        try:
            yield ToneCapture(self, device_id, generator)
        finally:
            self.table.set_state(device_id, "idle")

    @asynccontextmanager
    async def open_playback(
        self, device_id: str, spec: SampleSpec | None = None
    ) -> AsyncIterator[NullPlayback]:
        info = self.device(device_id, "sink")
        await trio.lowlevel.checkpoint()
        self.table.set_state(device_id, "running")
        try:
            yield NullPlayback(self, device_id, spec or info.spec)
        finally:
            self.table.set_state(device_id, "idle")

    async def create_virtual(
        self, kind: VirtualKind, name: str, spec: SampleSpec, *, description: str = ""
    ) -> DeviceInfo:
        await trio.lowlevel.checkpoint()
        if kind != "speaker":
            raise Unsupported("the tone driver makes virtual speakers (null sinks) only")
        device_id = f"tone:{check_name(name)}"
        if device_id in self.table:
            raise ValueError(f"{device_id} exists already")
        info = msgspec.structs.replace(
            self._info(device_id, name, description or "null sink", "sink", True),
            rate=spec.rate,
            channels=spec.channels,
        )
        self.table.add(info)
        return info

    async def delete_virtual(self, device_id: str) -> None:
        await trio.lowlevel.checkpoint()
        if not self.table.get(device_id).virtual:
            raise Unsupported(f"{device_id} is not a virtual device")
        self.table.remove(device_id)
