"""How fast a Trio task learns that an audio thread delivered frames.

An audio thread pushes a 5 ms block every 5 ms; the Trio side waits for each block by one
of three wake-ups and records how late it saw it, and the process CPU used:
- socket: FrameRing's own (the thread sends one byte only when a reader waits);
- run_sync_soon: the thread calls TrioToken.run_sync_soon to set a trio.Event;
- poll: the Trio side sleeps one period and then takes whatever is there.

    python -m bench.audio_ring
"""

import threading
import time

import numpy as np
import trio

from rocd.audio import FrameRing

PERIOD = 0.005  # seconds between pushes
FRAMES = 240  # 5 ms at 48 kHz
BLOCKS = 600  # 3 s


def producer(ring: FrameRing, stamps: list[float], notify: object) -> None:
    block = np.zeros((FRAMES, 2), np.float32)
    next_t = time.perf_counter()
    for _ in range(BLOCKS):
        next_t += PERIOD
        time.sleep(max(0.0, next_t - time.perf_counter()))
        stamps.append(time.perf_counter())
        ring.push(block)
        if callable(notify):
            notify()
    ring.close_write()
    if callable(notify):
        notify()


async def run(mode: str) -> tuple[np.ndarray, float]:
    stamps: list[float] = []
    seen: list[float] = []
    token = trio.lowlevel.current_trio_token()
    with FrameRing(FRAMES * 16, 2) as ring:
        event = trio.Event()

        def set_event() -> None:
            event.set()

        notify = (lambda: token.run_sync_soon(set_event)) if mode == "run_sync_soon" else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        thread = threading.Thread(target=producer, args=(ring, stamps, notify))
        thread.start()
        got = 0
        while got < BLOCKS * FRAMES:
            if mode == "socket":
                block = await ring.read(FRAMES)
            elif mode == "run_sync_soon":
                while ring.available < FRAMES and not ring.write_closed:
                    await event.wait()
                    event = trio.Event()
                block = ring.read_nowait(FRAMES)
            else:
                while ring.available < FRAMES and not ring.write_closed:  # noqa: ASYNC110
                    await trio.sleep(PERIOD)
                block = ring.read_nowait(FRAMES)
            if not len(block):
                break
            now = time.perf_counter()
            seen.append(now)
            got += len(block)
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        await trio.to_thread.run_sync(thread.join)
    n = min(len(stamps), len(seen))
    return (np.array(seen[:n]) - np.array(stamps[:n])) * 1000, cpu * 100


async def main() -> None:
    print(f"wake-up of a Trio reader, {BLOCKS} blocks of {PERIOD * 1000:.0f} ms")
    for mode in ("socket", "run_sync_soon", "poll"):
        lag, cpu = await run(mode)
        print(
            f"  {mode:14s} late by median {np.median(lag):6.3f} ms, p99 "
            f"{np.percentile(lag, 99):6.3f} ms, max {lag.max():6.3f} ms; process CPU {cpu:4.1f} %"
        )


if __name__ == "__main__":
    trio.run(main)
