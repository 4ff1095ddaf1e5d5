"""Latency and CPU of device streams through a real (private, headless) PulseAudio.

Latency through a VAD: a click written through rocd's playback stream and read back
through rocd's capture stream; the time between the `write` of the block holding the
click and the `read` that returns it (both rings, pacat's and parec's server buffers and
the server's mixing). Two paths, the two kinds of VAD:
- virtual speaker: written into the null sink, read from its monitor (what an app plays
  into the speaker reaches rocd the same way);
- virtual microphone: written into its feed sink, read from the microphone source (what
  rocd plays into the microphone reaches an app recording it the same way).

CPU: process CPU of rocd (this process) and of the parec/pacat children while N capture
or N playback streams run, per stream, plus the sound server's.

    python -m bench.audio_devices
"""

import os
import time

import numpy as np
import trio

from rocd.audio import PulseDriver, SampleSpec, VirtualKind, open_pulse_driver
from tests.pulse_server import PulseServer

SPEC = SampleSpec(48000, 2)
BLOCK = 240  # 5 ms
CLICKS = 20
TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(names: tuple[str, ...]) -> list[int]:
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == me and comm in names:
                found.append(int(entry))
    return found


async def click_latency(
    pulse: PulseDriver, kind: VirtualKind, name: str, paced: bool
) -> np.ndarray:
    """Click latencies (ms) through a VAD of `kind`. `paced`: the writer follows the
    system clock (as a receiver with its own schedule would) instead of being held back
    by the stream."""
    vad = await pulse.create_virtual(kind, name, SPEC)
    sent: list[float] = []
    seen: list[float] = []
    try:
        async with (
            pulse.open_playback(vad.id, SPEC) as play,
            pulse.open_capture(vad.id, SPEC) as cap,
            trio.open_nursery() as nursery,
        ):

            async def reader() -> None:
                while len(seen) < CLICKS:
                    block = await cap.read(BLOCK)
                    if np.abs(block).max() > 0.5:
                        seen.append(time.perf_counter())

            nursery.start_soon(reader)
            silence = np.zeros((BLOCK, 2), np.float32)
            click = silence.copy()
            click[0] = 0.9
            n = 0
            start = trio.current_time()
            while len(seen) < CLICKS:
                n += 1
                if paced:
                    await trio.sleep_until(start + n * BLOCK / SPEC.rate)
                if n % 50 == 0 and len(sent) == len(seen):  # one click in flight at a time
                    sent.append(time.perf_counter())
                    await play.write(click)
                else:
                    await play.write(silence)
    finally:
        await pulse.delete_virtual(vad.id)
    lag: np.ndarray = (np.array(seen) - np.array(sent[: len(seen)])) * 1000
    return lag


async def cpu_per_stream(
    pulse: PulseDriver, server_pid: int, kind: str, streams: int, seconds: float = 3.0
) -> tuple[float, float, float]:
    spk = await pulse.create_virtual("speaker", f"cpu_{kind}", SPEC)
    try:
        async with trio.open_nursery() as nursery:
            ready = trio.Semaphore(0)

            async def run_one(stream_no: int) -> None:
                if kind == "capture":
                    async with pulse.open_capture(spk.id, SPEC) as cap:
                        ready.release()
                        while True:
                            await cap.read(480)
                else:
                    async with pulse.open_playback(spk.id, SPEC) as play:
                        ready.release()
                        block = np.zeros((480, 2), np.float32)
                        while True:
                            await play.write(block)

            for i in range(streams):
                nursery.start_soon(run_one, i)
            for _ in range(streams):
                await ready.acquire()
            await trio.sleep(0.5)  # settle
            kids = children(("parec", "pacat"))
            kids0 = sum(proc_cpu(k) for k in kids)
            srv0 = proc_cpu(server_pid)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await trio.sleep(seconds)
            wall = time.perf_counter() - wall0
            own = (time.process_time() - cpu0) / wall * 100 / streams
            kid = (sum(proc_cpu(k) for k in kids) - kids0) / wall * 100 / streams
            srv = (proc_cpu(server_pid) - srv0) / wall * 100 / streams
            nursery.cancel_scope.cancel()
    finally:
        await pulse.delete_virtual(spk.id)
    return own, kid, srv


async def main() -> None:
    server = PulseServer()
    await trio.to_thread.run_sync(server.start)
    try:
        assert server._proc is not None
        server_pid = server._proc.pid
        print(f"PulseAudio null sink, {SPEC.rate} Hz x {SPEC.channels}, float32")
        for kind in ("speaker", "microphone"):
            for latency_ms in (10, 20, 40):
                async with open_pulse_driver(server.env, latency_ms=latency_ms) as pulse:
                    for paced in (False, True):
                        name = f"lat_{kind}_{latency_ms}"
                        lag = await click_latency(pulse, kind, name, paced)
                        writer = "paced by the clock" if paced else "held by the stream"
                        print(
                            f"  virtual {kind:10s} click write->read, latency_ms="
                            f"{latency_ms:3d}, writer {writer}: median {np.median(lag):5.1f}"
                            f" ms, min {lag.min():5.1f}, max {lag.max():5.1f}"
                            f" ({len(lag)} clicks)"
                        )
        async with open_pulse_driver(server.env, latency_ms=20) as pulse:
            for kind in ("capture", "playback"):
                own, kid, srv = await cpu_per_stream(pulse, server_pid, kind, streams=4)
                print(
                    f"  CPU per {kind} stream (4 open, 10 ms blocks, latency_ms=20): "
                    f"rocd {own:4.2f} %, {'parec' if kind == 'capture' else 'pacat'} "
                    f"{kid:4.2f} %, server {srv:4.2f} % of one core"
                )
    finally:
        server.cleanup()


if __name__ == "__main__":
    trio.run(main)
