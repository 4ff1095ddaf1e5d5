"""What `rocd send -i` reads and `rocd recv -o` writes, named by a short URI.

    file:PATH | file://PATH     an audio file (any format libsndfile reads; written as
                                WAV float32, FLAC or OGG by extension: .wav, .flac, .ogg)
    tone:sine[:FREQ] | tone:FREQ | tone:sweep | tone:noise | tone:silence
                                a generated test signal (input only)
    pulse:NAME | pulse://NAME   a PulseAudio (or pipewire-pulse) device by name; `default`
                                is the server's default source / sink; capturing from a
                                sink records what is played into it (its monitor)
    null                        discard (output only)

Files and tones are unclocked (the link paces them in real time); devices are clocked.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio

from rocd.audio import (
    AudioError,
    SampleSpec,
    Tone,
    ToneDriver,
    ToneGenerator,
    Unsupported,
    open_file_reader,
    open_file_writer,
    open_pulse_driver,
    recording_format,
)
from rocd.audio import Frames as AudioFrames

from ._run import UsageError

__all__ = ["Limited", "ToneSource", "UsageError", "open_input", "open_output", "parse_tone"]


class ToneSource:
    """A test signal as an unclocked source."""

    clocked = False

    def __init__(self, tone: Tone, spec: SampleSpec) -> None:
        self.spec = spec
        try:
            self._generator = ToneGenerator(tone, spec)
        except ValueError as exc:  # a frequency the rate cannot carry
            raise UsageError(f"tone: {exc}") from None

    async def read(self, frames: int) -> AudioFrames:
        return self._generator.generate(frames)


class Limited:
    """At most `frames` frames of `source`, then its end."""

    def __init__(self, source: Any, frames: int) -> None:
        self._source = source
        self._left = frames

    @property
    def spec(self) -> SampleSpec:
        spec: SampleSpec = self._source.spec
        return spec

    @property
    def clocked(self) -> bool:
        return bool(self._source.clocked)

    async def read(self, frames: int) -> AudioFrames:
        if self._left <= 0:
            empty: AudioFrames = await self._source.read(0)
            return empty[:0]
        block: AudioFrames = await self._source.read(min(frames, self._left))
        self._left -= len(block)
        return block


def split(uri: str) -> tuple[str, str]:
    """'scheme:rest' or 'scheme://rest' -> (scheme, rest)."""
    scheme, sep, rest = uri.partition(":")
    if not sep and uri != "null":
        raise UsageError(f"{uri!r}: expected file:PATH, tone:..., pulse:NAME or null")
    return scheme, rest.removeprefix("//")


TONE_USAGE = "expected tone:sine[:FREQ], tone:FREQ, tone:sweep, tone:noise or tone:silence"


def parse_tone(rest: str) -> Tone:
    """'sine', 'sine:440', '440', 'sweep', 'noise', 'silence' -> a Tone. A frequency is a
    positive finite number of Hz (below half the sample rate: checked by `ToneSource`)."""
    kind, _, freq = rest.partition(":")
    if kind in ("sweep", "noise", "silence") and not freq:
        return {
            "sweep": Tone(kind="sweep", frequency=20.0),
            "noise": Tone(kind="noise", amplitude=0.25),
            "silence": Tone(kind="silence"),
        }[kind]
    if kind == "sine":
        text = freq or "440"
    elif not freq:
        text = kind
    else:
        raise UsageError(f"tone:{rest}: {TONE_USAGE}")
    try:
        frequency = float(text)
    except ValueError:
        raise UsageError(f"tone:{rest}: {TONE_USAGE}") from None
    if not math.isfinite(frequency) or frequency <= 0:
        raise UsageError(f"tone:{rest}: the frequency must be a positive number of Hz")
    return Tone(kind="sine", frequency=frequency)


async def _pulse_default(kind: str) -> str:
    try:
        done = await trio.run_process(
            ["pactl", f"get-default-{kind}"], capture_stdout=True, capture_stderr=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise AudioError(f"cannot ask PulseAudio for its default {kind}: {exc}") from None
    return bytes(done.stdout).decode().strip()


async def _pulse_driver(stack: AsyncExitStack) -> Any:
    driver = await stack.enter_async_context(open_pulse_driver(backoff=(0.5, 5.0)))
    if not driver.status.up:
        reason = driver.status.reason.strip().splitlines()[0]
        raise AudioError(f"no PulseAudio server: {reason}")
    return driver


@asynccontextmanager
async def open_input(
    uri: str, *, spec: SampleSpec, duration_ns: int | None = None
) -> AsyncIterator[Any]:
    """The source `uri` names, ending after `duration_ns` of audio if given. `spec` is the
    tone's; files and devices have their own."""
    scheme, rest = split(uri)
    async with AsyncExitStack() as stack:
        source: Any
        if scheme == "file":
            if not rest:
                raise UsageError(f"{uri!r}: expected file:PATH")
            source = await stack.enter_async_context(open_file_reader(rest))
        elif scheme == "tone":
            source = ToneSource(parse_tone(rest), spec)
        elif scheme == "pulse":
            driver = await _pulse_driver(stack)
            name = await _pulse_default("source") if rest in ("", "default") else rest
            ids = {d.id for d in await driver.list_devices()}
            device = next(
                (i for i in (f"pulse:source:{name}", f"pulse:sink:{name}") if i in ids), None
            )
            if device is None:
                raise AudioError(f"no PulseAudio source or sink named {name!r}")
            source = await stack.enter_async_context(driver.open_capture(device))
        else:
            raise UsageError(f"{uri!r}: unknown input (use file:PATH, tone:..., pulse:NAME)")
        if duration_ns is not None:
            source = Limited(source, duration_ns * source.spec.rate // 1_000_000_000)
        yield source


@asynccontextmanager
async def open_output(uri: str, spec: SampleSpec) -> AsyncIterator[Any]:
    """The sink `uri` names, taking frames of `spec`."""
    scheme, rest = split(uri)
    async with AsyncExitStack() as stack:
        sink: Any
        if scheme == "file":
            if not rest:
                raise UsageError(f"{uri!r}: expected file:PATH")
            try:
                recording_format(rest)
            except Unsupported as exc:
                raise UsageError(str(exc)) from None
            sink = await stack.enter_async_context(open_file_writer(rest, spec))
        elif scheme == "null":
            sink = await stack.enter_async_context(
                ToneDriver(spec).open_playback("tone:null", spec)
            )
        elif scheme == "pulse":
            driver = await _pulse_driver(stack)
            name = await _pulse_default("sink") if rest in ("", "default") else rest
            device = f"pulse:sink:{name}"
            if device not in {d.id for d in await driver.list_devices()}:
                raise AudioError(f"no PulseAudio sink named {name!r}")
            sink = await stack.enter_async_context(driver.open_playback(device, spec))
        else:
            raise UsageError(f"{uri!r}: unknown output (use file:PATH, pulse:NAME or null)")
        yield sink
