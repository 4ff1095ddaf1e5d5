"""NiqSmoother: the packet sawtooth of NIQ latency taken out, a real change let through."""

import pytest

from rocd.net.roc._niq_smoother import NiqSmoother

FRAME = 441  # output frame: 10 ms at 44.1 kHz
SPP = 221  # samples per packet


def _run(frames: int, *, queue: float, drift: float = 0.0) -> list[tuple[float, float, float]]:
    """A sender chunking 441-sample frames into 221-sample packets (its clock `drift`
    fast), a reader taking 441 samples per frame `queue` samples behind what was
    produced: (NIQ latency, smoothed latency, true mean NIQ latency) per frame."""
    smoother = NiqSmoother()
    rows = []
    for k in range(1, frames + 1):
        produced = k * FRAME * (1 + drift)
        end = SPP * (produced // SPP)  # the partial packet is held back
        play = k * FRAME - queue
        niq = end - play
        smoothed = smoother.update(niq, k * FRAME - end, 0.01)
        rows.append((niq, smoothed, produced - (SPP - 1) / 2 - play))
    return rows


def test_the_sawtooth_is_taken_out_and_the_mean_kept() -> None:
    rows = _run(60 * 100, queue=882.0)[-3000:]
    niq = [r[0] for r in rows]
    smoothed = [r[1] for r in rows]
    assert max(niq) - min(niq) == SPP - 1  # NIQ: a tooth of one packet
    assert max(smoothed) - min(smoothed) < 30  # < 0.7 ms
    assert max(abs(s - true) for _n, s, true in rows) < 22  # 0.5 ms


def test_a_drifting_head_is_tracked_without_lag() -> None:
    rows = _run(120 * 100, queue=882.0, drift=1e-3)[-3000:]
    assert max(abs(s - true) for _n, s, true in rows) < 15


def test_a_real_step_comes_through_within_seconds() -> None:
    smoother = NiqSmoother()
    for _ in range(1000):
        smoother.update(882.0, 0.0, 0.01)
    first = smoother.update(441.0, 441.0, 0.01)  # the queue dropped by 10 ms
    assert first > 870  # not at once (arrival jitter is filtered out) ...
    last = first
    for _ in range(6000):
        last = smoother.update(441.0, 441.0, 0.01)
    assert last == pytest.approx(441.0, abs=10)  # ... but within a minute
