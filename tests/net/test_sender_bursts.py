"""`Sender.write_bursts` is `write` burst after burst: same datagrams, same reports."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rocd.net.roc import L16_MONO, FecScheme, Sender, SenderConfig

WALL0 = 1_700_000_000_000_000_000
NOW0 = 5_000_000_000


def _pair(config: SenderConfig, rate: int, channels: int) -> tuple[Sender, Sender]:
    return tuple(  # type: ignore[return-value]
        Sender(config, input_rate=rate, input_channels=channels, rng=random.Random(7))
        for _ in range(2)
    )


@settings(max_examples=60, deadline=None)
@given(
    fec=st.sampled_from([None, FecScheme.RS8M, FecScheme.LDPC_STAIRCASE]),
    rate=st.sampled_from([44100, 48000, 22050]),
    channels=st.sampled_from([1, 2]),
    mono=st.booleans(),
    packet_ms=st.sampled_from([1, 2.5, 5, 7]),
    pad=st.booleans(),
    lead=st.integers(0, 500),
    burst=st.integers(1, 700),
    batches=st.lists(st.integers(0, 4000), min_size=1, max_size=4),
    capture_step=st.integers(0, 30_000_000),
    seed=st.integers(0, 2**32 - 1),
)
def test_bursts_are_successive_writes(
    fec: FecScheme | None,
    rate: int,
    channels: int,
    mono: bool,
    packet_ms: float,
    pad: bool,
    lead: int,
    burst: int,
    batches: list[int],
    capture_step: int,
    seed: int,
) -> None:
    config = SenderConfig(
        encoding=L16_MONO if mono else SenderConfig().encoding,
        packet_length_ns=int(packet_ms * 1_000_000),
        fec=fec,
        fec_source_packets=5,
        fec_repair_packets=8,  # LDPC needs >= 7
        pad_last_packet=pad,
    )
    bursts, writes = _pair(config, rate, channels)
    frames = np.random.default_rng(seed).uniform(-1.1, 1.1, (lead + sum(batches), channels))
    frames = frames.astype(np.float32)
    # A partial packet pending before the first batch, written the same way to both.
    assert bursts.write(frames[:lead], WALL0) == writes.write(frames[:lead], WALL0)
    pos = lead
    wall = WALL0 + 1_000_000
    for size in batches:
        batch = frames[pos : pos + size]
        count = -(-size // burst)
        captures = [wall + k * capture_step + k % 3 for k in range(count)]
        got = bursts.write_bursts(batch, captures, burst)
        want = [writes.write(batch[k * burst : (k + 1) * burst], captures[k]) for k in range(count)]
        assert got == want
        pos += size
        wall = captures[-1] + capture_step if count else wall
        # The reports stamp the last capture time written: equal too.
        now = NOW0 + pos * 1000
        assert bursts.poll_rtcp(now, wall) == writes.poll_rtcp(now, wall)
    assert bursts.metrics() == writes.metrics()
    assert bursts.stop(NOW0 + 10**10, wall) == writes.stop(NOW0 + 10**10, wall)
    assert bursts.metrics() == writes.metrics()


def test_captures_must_match_the_bursts() -> None:
    sender = Sender(SenderConfig(), input_rate=44100, input_channels=2, rng=random.Random(1))
    frames = np.zeros((882, 2), np.float32)
    with pytest.raises(ValueError, match="2 bursts"):
        sender.write_bursts(frames, [WALL0], 441)
    with pytest.raises(ValueError, match=">= 1 frame"):
        sender.write_bursts(frames, [WALL0], 0)
