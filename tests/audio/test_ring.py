"""FrameRing: order, overrun/underrun accounting, and waking Trio from a real thread."""

import time

import numpy as np
import pytest
import trio
import trio.lowlevel
from hypothesis import given, settings
from hypothesis import strategies as st

from rocd.audio import FrameRing


def ramp(start: int, n: int, channels: int = 2) -> np.ndarray:
    """Frames whose samples count up, so order and loss are visible."""
    values = np.arange(start, start + n, dtype=np.float32)
    return np.repeat(values[:, None], channels, axis=1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=60))
def test_matches_a_simple_queue(ops: list[tuple[bool, int]]) -> None:
    with FrameRing(32, 2) as ring:
        model: list[float] = []
        counter = 0
        for is_push, n in ops:
            if is_push:
                kept = ring.push(ramp(counter, n))
                assert kept == min(n, 32 - len(model))
                model.extend(range(counter, counter + kept))
                counter += n
            else:
                out = ring.read_nowait(n)
                take = min(n, len(model))
                assert out[:, 0].tolist() == model[:take]
                assert np.array_equal(out[:, 0], out[:, 1])
                del model[:take]
            assert ring.available == len(model)


def test_overrun_drops_the_newest_and_counts() -> None:
    with FrameRing(10, 2) as ring:
        assert ring.push(ramp(0, 15)) == 10
        assert ring.push(ramp(15, 3)) == 0
        s = ring.stats()
        assert (s.overrun_frames, s.overruns, s.peak) == (8, 2, 10)
        assert ring.read_nowait(10)[:, 0].tolist() == list(range(10))


def test_underrun_is_silence_and_counted_only_mid_stream() -> None:
    with FrameRing(10, 1) as ring:
        out = ring.pull(4)  # nothing written yet: the stream has not started
        assert not out.any()
        assert ring.stats().underruns == 0
        ring.push(ramp(1, 3, 1))
        out = ring.pull(5)
        assert out[:, 0].tolist() == [1, 2, 3, 0, 0]
        s = ring.stats()
        assert (s.underrun_frames, s.underruns) == (2, 1)
        ring.close_write()  # the end of a stream is not an underrun either
        ring.pull(5)
        assert ring.stats().underruns == 1


async def test_trio_reader_is_woken_by_an_audio_thread() -> None:
    period = 48  # frames per callback
    blocks = 200

    def audio_thread(ring: FrameRing) -> None:
        for i in range(blocks):
            ring.push(ramp(i * period, period))
            time.sleep(0.0005)
        ring.close_write()

    with FrameRing(4 * period, 2) as ring, trio.fail_after(10):
        got = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, audio_thread, ring)
            while len(block := await ring.read(100)):
                got.append(block)
        samples = np.concatenate(got)[:, 0]
        s = ring.stats()
        # Whatever was kept arrived in order; whatever was dropped was counted.
        assert np.all(np.diff(samples) > 0)
        assert len(samples) + s.overrun_frames == blocks * period


async def test_trio_writer_is_paced_by_an_audio_thread() -> None:
    total, period = 4800, 48

    def audio_thread(ring: FrameRing, out: list[np.ndarray]) -> None:
        # Until every written frame came out (frame 0 of the ramp is 0, like silence);
        # blocks the writer was late for are silence and do not count.
        heard = 0
        deadline = time.monotonic() + 8
        while ring.read_closed is False and heard < total - 1 and time.monotonic() < deadline:
            block = np.empty((period, 2), np.float32)
            ring.pull_into(block)
            out.append(block)
            heard += int(np.count_nonzero(block[:, 0]))
            time.sleep(0.0002)

    with FrameRing(2 * period, 2) as ring, trio.fail_after(10):
        played: list[np.ndarray] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, audio_thread, ring, played)
            for start in range(0, total, 100):
                await ring.write(ramp(start, min(100, total - start)))
            ring.close_write()
        audio = np.concatenate(played)[:, 0]
        audio = audio[audio != 0]  # silence where the writer was late (counted)
        assert audio.tolist() == list(range(1, total))
        assert ring.stats().peak <= 2 * period


async def test_cancelled_wait_leaves_the_ring_usable() -> None:
    with FrameRing(8, 1) as ring, trio.fail_after(5):
        with trio.move_on_after(0.01) as scope:
            await ring.read(4)
        assert scope.cancelled_caught
        ring.push(ramp(0, 4, 1))
        assert (await ring.read(4))[:, 0].tolist() == [0, 1, 2, 3]


async def test_one_reader_at_a_time() -> None:
    with FrameRing(8, 1) as ring, trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ring.read, 4)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await ring.read(4)
            ring.push(ramp(0, 4, 1))


async def test_closing_either_side() -> None:
    with FrameRing(8, 1) as ring, trio.fail_after(5):
        ring.push(ramp(0, 3, 1))
        ring.close_write()
        assert len(await ring.read(5)) == 3  # what is left, short
        assert len(await ring.read(5)) == 0
    with FrameRing(4, 1) as ring, trio.fail_after(5):
        ring.push(ramp(0, 4, 1))
        async with trio.open_nursery() as nursery:

            async def blocked_writer() -> None:
                with pytest.raises(trio.BrokenResourceError):
                    await ring.write(ramp(4, 4, 1))

            nursery.start_soon(blocked_writer)
            await trio.testing.wait_all_tasks_blocked()
            ring.close_read()
        assert ring.push(ramp(0, 1, 1)) == 0


def test_bad_sizes() -> None:
    with pytest.raises(ValueError, match="positive"):
        FrameRing(0, 2)
