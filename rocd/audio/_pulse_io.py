"""Audio in and out of a PulseAudio server through `parec` / `pacat` children.

Why child processes rather than libpulse-simple through ctypes in a thread: in a first
measurement here (a click written into a null sink at the pace of the clock, read back
from its monitor, 10 ms target latency) both came back in 10-13 ms; rocd's own CPU was
1.7 % with the children against 4.0 % with libpulse in-process (the children add about
what libpulse costs inside). What decided it:
- a child can always be stopped (killed), while `pa_simple_read` on a suspended source
  blocks its thread with no way to interrupt it, so closing a stream could hang;
- each stream picks its device by name (`--device=`) and its server through the child's
  environment, where PortAudio's ALSA route needs process-global variables;
- a crash or stall of libpulse stays outside the daemon, and the daemon's GIL-bound
  process does less of the work.

Each stream has a pump task between the pipe and a FrameRing, so overruns and underruns
are counted as for a sound card:
- capture: the pump reads raw float32 frames as parec delivers them and pushes them into
  the ring (a reader that falls behind by more than the ring loses the newest frames);
- playback: the pump waits until the first block is written, then takes one 5 ms block at
  a time from the ring into pacat's stdin. The pipe is shrunk to one page so that its
  free space follows what the server consumed, and the ring holds latency_ms (at least two
  blocks), so `write` is paced by the device. A ring short of a block when the pipe has
  room waits for its writer up to `WRITER_GRACE_S` before the block goes out padded with
  silence (an underrun): the writer runs in this process and is usually about to write
  (Trio ran the pump first), and the server plays from pacat's buffer meanwhile. A late
  writer then costs no gap and no latency: once it writes, the pipe and the server take
  what they missed at once. Padding instead puts silence into the stream and everything
  after it that much later. Without the grace a small ring (10 ms) underran now and then
  on a loaded machine and a ring of 30 ms was needed, whose length is all latency.

The price of counting underruns is that the server-side buffers are always full (of
silence when there is nothing else). End to end, a click written through a playback
stream and read back through a capture stream of the monitor took (bench.audio_devices,
median): 37 ms at latency_ms=10; 43 ms at 20 (55 ms when the writer keeps the ring full);
47 ms at 40 (90 ms with a full ring): the ring, the pipe page (10.7 ms of 48 kHz stereo
float32), pacat's and parec's server buffers (latency_ms each). CPU per open stream, of
one core: capture 0.6 % (rocd) + 0.1-0.3 % (parec); playback 1.6 % + 0.7-1.1 % (pacat).
libpulse's asynchronous API with a write callback would take the pipe and the ring off
that path, at the cost of a ctypes binding of its main loop.
"""

import fcntl
import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial

import trio

from ._driver import StreamBase, StreamStats
from ._errors import StreamBroken
from ._format import Frames, SampleSpec, as_frames, frames_from_bytes
from ._ring import FrameRing
from ._tasks import open_service_nursery

_PIPE_BYTES = 4096  # smallest pipe Linux gives (one page)
#: Seconds a playback pump waits for a ring short of a block before it pads the block with
#: silence: the slack a late writer had with the 30 ms ring of before (20 ms), and never
#: more than half the stream's buffer in the server (which plays meanwhile).
WRITER_GRACE_S = 0.02


def _tool_args(
    tool: str, pa_name: str, spec: SampleSpec, latency_ms: int, stream: str
) -> list[str]:
    return [
        tool,
        f"--device={pa_name}",
        "--raw",
        "--format=float32le",
        f"--rate={spec.rate}",
        f"--channels={spec.channels}",
        f"--latency-msec={latency_ms}",
        "--client-name=rocd",
        f"--stream-name={stream}",
    ]


async def _start_child(
    nursery: trio.Nursery, args: list[str], env: Mapping[str, str], *, writes: bool
) -> trio.Process:
    """Start parec (`writes` False: we read its stdout) or pacat (we write its stdin)."""
    pipe, null = subprocess.PIPE, subprocess.DEVNULL
    process: trio.Process = await nursery.start(
        partial(
            trio.run_process,
            args,
            stdin=pipe if writes else null,
            stdout=null if writes else pipe,
            stderr=pipe,
            check=False,
            env=dict(env),
            # Its own session: a terminal's Ctrl-C reaches the daemon, which stops it.
            start_new_session=True,
        )
    )
    return process


class _PulseStream(StreamBase):
    clocked = True

    def __init__(self, device_id: str, spec: SampleSpec, ring: FrameRing) -> None:
        super().__init__(device_id, spec)
        self._ring = ring
        self.broken: str | None = None  # why the child went away, once it has
        self._proc: trio.Process | None = None
        self.gone = trio.Event()  # set once the child has exited

    def _break(self, reason: str) -> None:
        if self.broken is None:
            self.broken = reason

    def end(self, reason: str) -> None:
        """Break the stream now (its device is going away): the child is killed, so the
        server cannot move it to another device, and the reader or writer gets
        StreamBroken with `reason`. Wait on `gone` for the child to be gone."""
        self._break(reason)
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()


class PulseCapture(_PulseStream):
    """Frames recorded from a server source (clocked by the server)."""

    async def read(self, frames: int) -> Frames:
        block = await self._ring.read(frames)
        if len(block) < frames:
            raise StreamBroken(f"{self._id}: {self.broken or 'stream ended'}")
        return block

    def stats(self) -> StreamStats:
        s = self._ring.stats()
        return StreamStats(s.pulled_frames, s.overrun_frames, s.overruns)


class PulsePlayback(_PulseStream):
    """Frames played into a server sink (clocked by the server)."""

    async def write(self, frames: Frames) -> None:
        block = as_frames(frames, self._spec)
        try:
            await self._ring.write(block)
        except trio.BrokenResourceError:
            raise StreamBroken(f"{self._id}: {self.broken or 'stream ended'}") from None

    def stats(self) -> StreamStats:
        s = self._ring.stats()
        return StreamStats(
            s.pushed_frames, underrun_frames=s.underrun_frames, underruns=s.underruns
        )


async def _collect(stream: trio.abc.ReceiveStream, into: bytearray, limit: int = 4096) -> None:
    while chunk := await stream.receive_some():
        into += chunk[: max(0, limit - len(into))]


def _exit_reason(proc: trio.Process, stderr: bytearray) -> str:
    text = stderr.decode(errors="replace").strip().splitlines()
    return text[-1] if text else f"exited with status {proc.returncode}"


@asynccontextmanager
async def open_capture_stream(
    env: Mapping[str, str], pa_name: str, device_id: str, spec: SampleSpec, latency_ms: int
) -> AsyncIterator[PulseCapture]:
    """A capture stream on server source `pa_name`; leaving the context kills parec."""
    args = _tool_args("parec", pa_name, spec, latency_ms, f"capture {device_id}")
    with FrameRing(spec.frames_for(max(0.5, 4 * latency_ms / 1000)), spec.channels) as ring:
        stream = PulseCapture(device_id, spec, ring)
        async with open_service_nursery() as nursery:
            proc = stream._proc = await _start_child(nursery, args, env, writes=False)
            nursery.start_soon(_pump_capture, proc, stream, ring)
            try:
                yield stream
            finally:
                ring.close_read()
                nursery.cancel_scope.cancel()


async def _pump_capture(proc: trio.Process, stream: PulseCapture, ring: FrameRing) -> None:
    assert proc.stdout is not None
    assert proc.stderr is not None
    stderr = bytearray()
    bpf = stream.spec.bytes_per_frame
    pending: bytes | bytearray = b""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_collect, proc.stderr, stderr)
        try:
            while chunk := await proc.stdout.receive_some(65536):
                data = pending + chunk if pending else chunk
                whole = len(data) - len(data) % bpf
                pending = data[whole:]
                if whole:
                    ring.push(frames_from_bytes(data[:whole], stream.spec.channels))
        except trio.BrokenResourceError:
            pass
    await proc.wait()
    stream._break(f"parec {_exit_reason(proc, stderr)}")
    stream.gone.set()
    ring.close_write()


@asynccontextmanager
async def open_playback_stream(
    env: Mapping[str, str],
    pa_name: str,
    device_id: str,
    spec: SampleSpec,
    latency_ms: int,
    ring_ms: int | None = None,
) -> AsyncIterator[PulsePlayback]:
    """A playback stream into server sink `pa_name`.

    `ring_ms` (default `latency_ms`): the ring in front of pacat. Only pacat's buffer in
    the server keeps playing while this process gets no CPU; the ring only holds what the
    writer wrote ahead of the pump, and adds its length to the latency (a writer late
    against the pump is waited for, see the module docstring).
    A normal exit plays out what was written (bounded wait); cancellation kills pacat.
    """
    args = _tool_args("pacat", pa_name, spec, latency_ms, f"playback {device_id}")
    args.insert(1, "--playback")
    period = max(1, spec.frames_for(min(latency_ms, 10) / 2000))
    ring_s = (ring_ms if ring_ms is not None else latency_ms) / 1000
    capacity = max(2 * period, spec.frames_for(ring_s))
    with FrameRing(capacity, spec.channels) as ring:
        stream = PulsePlayback(device_id, spec, ring)
        async with open_service_nursery() as nursery:
            proc = stream._proc = await _start_child(nursery, args, env, writes=True)
            assert proc.stdin is not None
            if hasattr(fcntl, "F_SETPIPE_SZ") and isinstance(proc.stdin, trio.lowlevel.FdStream):
                fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
            done = trio.Event()
            grace = min(WRITER_GRACE_S, latency_ms / 2000)
            nursery.start_soon(_pump_playback, proc, stream, ring, period, grace, done)
            try:
                yield stream
            except BaseException:
                nursery.cancel_scope.cancel()
                raise
            ring.close_write()
            with trio.move_on_after(capacity / spec.rate + latency_ms / 1000 + 1.0):
                await done.wait()
            nursery.cancel_scope.cancel()


async def _pump_playback(
    proc: trio.Process,
    stream: PulsePlayback,
    ring: FrameRing,
    period: int,
    grace_s: float,
    done: trio.Event,
) -> None:
    assert proc.stdin is not None
    assert proc.stderr is not None
    stderr = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_collect, proc.stderr, stderr)
        try:
            await ring.wait_readable(period)  # the start of a stream is not an underrun
            while not (ring.write_closed and ring.available == 0):
                if ring.available < period and not ring.write_closed:
                    with trio.move_on_after(grace_s):  # see the module docstring
                        await ring.wait_readable(period)
                await proc.stdin.send_all(ring.pull(period).tobytes())
            await proc.stdin.aclose()  # pacat drains the stream, then exits
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        await proc.wait()
        stream._break(f"pacat {_exit_reason(proc, stderr)}")
        stream.gone.set()
        ring.close_read()
        done.set()
