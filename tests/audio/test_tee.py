"""Tee: every reader gets every frame; the source is read once; laggards skip ahead."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import trio

from rocd.audio import SampleSpec, Tee


class Counting:
    """Frames numbered 0, 1, 2... (unclocked), `total` of them; counts source reads."""

    def __init__(self, total: int) -> None:
        self.spec, self.clocked = SampleSpec(1000, 1), False
        self.total, self.pos, self.reads = total, 0, 0

    async def read(self, n: int) -> npt.NDArray[np.float32]:
        await trio.lowlevel.checkpoint()
        self.reads += 1
        stop = min(self.total, self.pos + n)
        out = np.arange(self.pos, stop, dtype=np.float32)[:, None]
        self.pos = stop
        return out


async def test_each_reader_sees_the_whole_stream_read_once() -> None:
    source = Counting(1000)
    tee = Tee(source, 3)
    got: list[list[float]] = [[], [], []]

    async def drain(i: int, step: int) -> None:
        while True:
            block = await tee.readers[i].read(step)
            got[i].extend(block[:, 0].tolist())
            if len(block) < step:
                return

    async with trio.open_nursery() as nursery:
        for i, step in enumerate((10, 37, 100)):
            nursery.start_soon(drain, i, step)
    for g in got:
        assert g == list(range(1000))
    assert source.pos == 1000
    assert source.reads <= 1000 // 10 + 2  # never more than the smallest reader's reads


async def test_a_reader_far_behind_skips_ahead() -> None:
    tee = Tee(Counting(100_000), 2, max_lag=500)
    fast, slow = tee.readers
    for _ in range(10):
        await fast.read(100)  # 1000 frames ahead of `slow`
    block = await slow.read(10)
    assert block[0, 0] == 500  # it lost the frames beyond the lag limit
    assert tee.skipped == 500


async def test_the_end_reaches_every_reader() -> None:
    tee = Tee(Counting(25), 2)
    a, b = tee.readers
    assert len(await a.read(20)) == 20
    assert len(await a.read(20)) == 5
    assert len(await a.read(20)) == 0
    assert len(await b.read(30)) == 25
    assert len(await b.read(30)) == 0
