"""The playback pump in front of pacat, on virtual time: a writer late against the pump
costs no gap within the grace, and is padded (an underrun) beyond it.

pacat is stood in for by a pipe that takes a block once the previous one has played
(its time at the stream's rate): what a full pipe in front of a playing server does. The
real pacat and server are in test_pulse.py and the stream tests."""

from typing import cast

import numpy as np
import trio
import trio.testing

from rocd.audio import SampleSpec
from rocd.audio._pulse_io import WRITER_GRACE_S, PulsePlayback, _pump_playback
from rocd.audio._ring import FrameRing

SPEC = SampleSpec(44100, 2)
BLOCK = 220  # the pump's period: 5 ms
CHUNK = 441  # the writer's: 10 ms, as a stream's mix loop writes


class _PlayingPipe(trio.abc.SendStream):
    """pacat's stdin: each write returns once the audio before it has played."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.closed = trio.Event()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.sleep(len(data) / SPEC.bytes_per_frame / SPEC.rate)
        self.received += data

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        self.closed.set()
        await trio.lowlevel.checkpoint()


class _Stderr(trio.abc.ReceiveStream):
    def __init__(self, pipe: _PlayingPipe) -> None:
        self._pipe = pipe

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await self._pipe.closed.wait()
        return b""

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


class _FakePacat:
    def __init__(self) -> None:
        self.stdin = _PlayingPipe()
        self.stderr = _Stderr(self.stdin)
        self.returncode = 0

    async def wait(self) -> int:
        await self.stdin.closed.wait()
        return 0


def _signal(chunks: int) -> np.ndarray:
    """Distinct non-zero frames (a gap of silence in the output is then visible)."""
    ramp = np.arange(1, chunks * CHUNK + 1, dtype=np.float32) / (chunks * CHUNK)
    return np.repeat(ramp[:, None], SPEC.channels, axis=1)


async def _play_with_a_pause(pause_s: float) -> tuple[np.ndarray, int]:
    """Write 20 chunks as fast as the ring takes them, pausing `pause_s` after the 10th;
    what reached pacat (frames) and the ring's underruns."""
    signal = _signal(20)
    pacat = _FakePacat()
    with FrameRing(CHUNK, SPEC.channels) as ring:  # a ring of one chunk, as streams have
        stream = PulsePlayback("pulse:sink:x", SPEC, ring)
        done = trio.Event()
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                proc = cast(trio.Process, pacat)  # what the pump uses of one
                nursery.start_soon(_pump_playback, proc, stream, ring, BLOCK, WRITER_GRACE_S, done)
                for i in range(20):
                    await stream.write(signal[i * CHUNK : (i + 1) * CHUNK])
                    if i == 9:
                        await trio.sleep(pause_s)
                ring.close_write()
                await done.wait()
        underruns = ring.stats().underruns
    out = np.frombuffer(bytes(pacat.stdin.received), np.float32).reshape(-1, SPEC.channels)
    return out, underruns


async def test_a_writer_late_within_the_grace_costs_no_gap(
    mock_clock: trio.testing.MockClock,
) -> None:
    mock_clock.autojump_threshold = 0
    out, underruns = await _play_with_a_pause(0.015)
    assert underruns == 0
    audio = out[: 20 * CHUNK]
    np.testing.assert_array_equal(audio, _signal(20))  # contiguous: no silence put in
    assert not out[20 * CHUNK :].any()  # the end's padding only


async def test_a_writer_late_beyond_the_grace_is_an_underrun(
    mock_clock: trio.testing.MockClock,
) -> None:
    mock_clock.autojump_threshold = 0
    out, underruns = await _play_with_a_pause(0.05)
    assert underruns >= 1
    silent = ~out.any(axis=1)
    first = int(np.argmax(silent))
    assert 0 < first < 20 * CHUNK  # silence padded in mid-stream
    np.testing.assert_array_equal(out[~silent], _signal(20))  # nothing lost or reordered
