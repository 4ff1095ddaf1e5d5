"""The receiver's stages one by one: jitter buffer, depacketizer, watchdog, RTP filter,
link meter, resampler."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest

from rocd.net.roc import (
    Depacketizer,
    JitterBuffer,
    LinkMeter,
    RtpFilter,
    Watchdog,
    WatchdogVerdict,
    WriteResult,
    encode_l16,
)
from rocd.net.roc._depacketizer import fade_gains

MS = 1_000_000


def payload(start: int, n: int, channels: int = 1) -> bytes:
    """L16 samples whose value encodes their position: sample p is (p % 1000 + 1) / 32768."""
    values = (np.arange(start, start + n) % 1000 + 1).astype(np.float32) / 32768
    return encode_l16(np.repeat(values[:, None], channels, axis=1))


def positions(data: npt.NDArray[np.float32]) -> list[int]:
    """Inverse of `payload` (mod 1000); 0 = silence."""
    return [round(float(v) * 32768) for v in data[:, 0]]


# Jitter buffer.


def test_packets_land_by_timestamp_in_any_order() -> None:
    jb = JitterBuffer(1, 1024)
    for start in (20, 0, 30, 10):
        assert jb.write(start, payload(start, 10), 0) is WriteResult.PLACED
    assert jb.span == 40
    assert jb.try_start(40)
    data, missing = jb.read(40)
    assert missing is None
    assert positions(data) == list(range(1, 41))


def test_duplicates_late_trimmed_and_overrun() -> None:
    jb = JitterBuffer(1, 64)  # rounds up to 64
    assert jb.capacity == 64
    jb.write(100, payload(100, 10), 0)
    assert jb.write(100, payload(100, 10), 0) is WriteResult.DUPLICATE
    assert jb.try_start(10)
    jb.read(5)  # pos = 105
    assert jb.write(90, payload(90, 10), 0) is WriteResult.LATE
    assert jb.write(95, payload(95, 10), 0) is WriteResult.LATE  # ends at the read position
    assert jb.write(103, payload(103, 10), 0) is WriteResult.TRIMMED  # 110..112 new
    assert jb.write(110, payload(110, 10), 0) is WriteResult.PLACED
    assert jb.write(111, payload(111, 5), 0) is WriteResult.DUPLICATE
    assert jb.write(160, payload(160, 10), 0) is WriteResult.OVERRUN  # ends > 100 + 64
    data, missing = jb.read(15)
    assert missing is None
    assert positions(data) == [p % 1000 + 1 for p in range(105, 120)]


def test_reading_a_hole_reports_the_missing_samples() -> None:
    jb = JitterBuffer(2, 256)
    jb.write(0, payload(0, 10, 2), 0)
    jb.write(20, payload(20, 10, 2), 0)
    assert jb.try_start(30)
    data, missing = jb.read(30)
    assert missing is not None
    assert np.flatnonzero(missing).tolist() == list(range(10, 20))
    assert positions(data)[:10] == list(range(1, 11))
    jb.read(1)
    # Read positions are free again: a packet one ring further on is a new packet.
    assert jb.write(256, payload(256, 10, 2), 0) is WriteResult.PLACED


def test_the_ring_wraps() -> None:
    jb = JitterBuffer(2, 128)
    start = 128 * 1000 - 37  # crosses a ring boundary
    jb.write(start, payload(start, 50, 2), 0)
    assert jb.try_start(50)
    data, missing = jb.read(50)
    assert missing is None
    assert positions(data) == [p % 1000 + 1 for p in range(start, start + 50)]
    jb.write(start + 50, payload(start + 50, 20, 2), 0)
    data, missing = jb.read(30)  # 20 present, 10 missing, across the boundary again
    assert missing is not None
    assert missing.tolist() == [False] * 20 + [True] * 10


def test_start_keeps_the_target_plus_slack_and_drops_older_packets() -> None:
    jb = JitterBuffer(1, 4096)
    for k in range(10):
        jb.write(100 + 10 * k, payload(100 + 10 * k, 10), 0)
    assert not jb.try_start(101)
    # Span 100 >= 60: keep the newest 60 + 15 -> the first start that leaves >= 75.
    assert jb.try_start(60, slack=15)
    assert jb.pos == 120
    assert jb.span == 80
    # Dropped packets are gone for good: their slots read as missing if ever reached.
    assert jb.write(110, payload(110, 10), 0) is WriteResult.LATE


def test_buffering_forgets_what_falls_out_of_the_ring() -> None:
    jb = JitterBuffer(1, 64, history=0)
    jb.write(0, payload(0, 10), 0)
    jb.write(100, payload(100, 10), 0)  # 110 - 64 = 46: the first packet is out
    assert jb.span == 10
    assert jb.write(40, payload(40, 10), 0) is WriteResult.TRIMMED  # 46..50 kept
    assert jb.span == 64
    assert jb.try_start(64)
    assert jb.pos == 46
    _data, missing = jb.read(64)
    assert missing is not None
    assert np.flatnonzero(~missing).tolist() == [*range(4), *range(54, 64)]


def test_history_is_kept_and_replaceable() -> None:
    jb = JitterBuffer(1, 64, history=8)
    assert jb.capacity == 128  # capacity + history, rounded up
    jb.write(0, payload(0, 40), 0)
    assert jb.try_start(40)
    assert not jb.played(-8, 8).any()  # before the start: silence
    jb.read(20)
    assert positions(jb.played(12, 8)) == list(range(13, 21))
    jb.replace(16, np.zeros((4, 1), np.float32))
    assert positions(jb.played(12, 8)) == [13, 14, 15, 16, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="history"):
        jb.played(-9, 4)
    # A packet that would reach the slots of the last read or the history before it is an
    # overrun: slots of [-8, 20) are kept, which positions [120, 148) share.
    assert jb.write(100, payload(100, 20), 0) is WriteResult.PLACED
    assert jb.write(101, payload(101, 20), 0) is WriteResult.OVERRUN


# Depacketizer: concealment.


def test_fade_gains_are_a_raised_cosine() -> None:
    g = fade_gains(100)
    assert (g[0], g[50], g[100]) == (0.0, pytest.approx(0.5), 1.0)
    assert np.all(np.diff(g) > 0)


def _depacketize(
    signal: npt.NDArray[np.float32], holes: list[tuple[int, int]], fade: int, chunk: int
) -> tuple[npt.NDArray[np.float32], Depacketizer]:
    """Play `signal` (mono) through a jitter buffer with [a, b) ranges missing."""
    jb = JitterBuffer(1, 1 << 16, history=fade)
    present = np.ones(len(signal), bool)
    for a, b in holes:
        present[a:b] = False
    edges = np.flatnonzero(np.diff(present.astype(np.int8))) + 1
    bounds = [0, *edges.tolist(), len(signal)]
    for a, b in itertools.pairwise(bounds):
        if present[a]:
            jb.write(a, encode_l16(signal[a:b, None]), 0)
    assert jb.try_start(len(signal))
    dp = Depacketizer(jb, 1, 1, fade)
    out = np.concatenate([dp.read(chunk) for _ in range(len(signal) // chunk)])
    return out[:, 0], dp


@pytest.mark.parametrize("chunk", [441, 100, 37])
def test_concealment_fades_out_and_in_without_a_click(chunk: int) -> None:
    rate, freq, amplitude = 44100, 997.0, 0.5
    t = np.arange(2 * rate) / rate
    signal = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    quantized = np.trunc(signal * 32768).astype(np.float32) / 32768
    fade = 132  # 3 ms
    holes = [(10_000 + k * 3000 + 17 * k, 10_221 + k * 3000 + 17 * k) for k in range(8)]
    holes.append((50_000, 52_210))  # ten packets: fades, then silence
    out, dp = _depacketize(signal, holes, fade, chunk)
    n = len(out)
    assert dp.concealed == sum(b - a for a, b in holes)
    natural = float(np.abs(np.diff(quantized)).max())  # ~ amplitude * 2 pi f / rate = 0.071
    for a, b in holes:
        around = out[a - 300 : b + 300]
        # Samples outside the hole and its fade-in are untouched.
        np.testing.assert_array_equal(out[a - 300 : a], quantized[a - 300 : a])
        np.testing.assert_array_equal(out[b + fade : b + 300], quantized[b + fade : b + 300])
        # No click: no step larger than the sine's own steepest step (+5%), where playing
        # zeros would jump by up to the amplitude.
        assert np.abs(np.diff(around)).max() <= 1.05 * natural
        # The hole fades to silence within the fade and stays silent.
        assert not out[a + fade : b].any()
        assert np.abs(out[a : a + fade]).max() > 0
    zero_filled = quantized[:n].copy()
    for a, b in holes:
        zero_filled[a:b] = 0
    assert np.abs(np.diff(zero_filled)).max() > 4 * natural  # what Roc's zeros would do


def test_a_hole_shorter_than_the_fade_turns_the_envelope_around() -> None:
    signal = np.full(4000, 0.25, dtype=np.float32)  # DC: the mirror image equals the signal
    out, dp = _depacketize(signal, [(1000, 1040)], fade=132, chunk=441)
    assert dp.concealed == 40
    # Down over 40 samples, back up over 40: continuous, never below gain(92 / 132).
    env = out[990:1100] / 0.25
    assert np.abs(np.diff(env)).max() < 0.05
    assert env.min() == pytest.approx(float(fade_gains(132)[92]), abs=1e-3)
    np.testing.assert_array_equal(out[1080:], signal[1080 : len(out)])


def test_long_reads_are_split() -> None:
    jb = JitterBuffer(2, 2048, history=4)
    signal = np.linspace(-0.5, 0.5, 2000, dtype=np.float32)[:, None].repeat(2, axis=1)
    jb.write(0, encode_l16(signal), 0)
    assert jb.try_start(2000)
    dp = Depacketizer(jb, 2, 2, 4)
    np.testing.assert_array_equal(dp.read(2000), quantize_l16(signal))
    assert dp.concealed == 0


def quantize_l16(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (np.trunc(x * 32768) / 32768).astype(np.float32)


def test_channel_mapping() -> None:
    jb = JitterBuffer(2, 256)
    stereo = np.array([[0.5, -0.25]] * 10, dtype=np.float32)
    jb.write(0, encode_l16(stereo), 0)
    assert jb.try_start(10)
    mono = Depacketizer(jb, 2, 1, 4).read(10)
    np.testing.assert_array_equal(mono, np.full((10, 1), 0.125, np.float32))
    jb2 = JitterBuffer(1, 256)
    jb2.write(0, encode_l16(stereo[:, :1]), 0)
    assert jb2.try_start(10)
    np.testing.assert_array_equal(Depacketizer(jb2, 1, 3, 4).read(10), np.full((10, 3), 0.5))
    with pytest.raises(ValueError, match="no channel mapping"):
        Depacketizer(JitterBuffer(2, 256), 2, 4, 4)


# Watchdog.


def test_no_playback_counts_after_the_warmup() -> None:
    wd = Watchdog(1000, no_playback_timeout_ns=50 * MS, choppy_timeout_ns=0, warmup_ns=100 * MS)
    verdicts = [wd.update(10, blank=True, incomplete=False, drops=False) for _ in range(20)]
    # 100 ms of warm-up, then 50 ms of blank frames.
    assert verdicts.index(WatchdogVerdict.NO_PLAYBACK) == 14
    wd = Watchdog(1000, no_playback_timeout_ns=50 * MS, choppy_timeout_ns=0, warmup_ns=0)
    for _ in range(100):
        assert wd.update(10, blank=False, incomplete=False, drops=False) is None
    verdicts = [wd.update(10, blank=True, incomplete=True, drops=False) for _ in range(6)]
    assert verdicts[:4] == [None] * 4
    assert verdicts[4] is WatchdogVerdict.NO_PLAYBACK


def test_choppy_playback_needs_every_window_bad() -> None:
    def run(pattern: list[tuple[bool, bool]]) -> int | None:
        wd = Watchdog(1000, no_playback_timeout_ns=0, choppy_timeout_ns=2000 * MS, warmup_ns=0)
        for k in range(1000):
            incomplete, drops = pattern[k % len(pattern)]
            if wd.update(10, blank=False, incomplete=incomplete, drops=drops):
                return k
        return None

    # Windows are 300 ms (30 frames). Every window bad -> dead after 2 s.
    assert run([(True, True)]) in range(199, 231)
    assert run([(True, False), (False, True)]) in range(199, 231)  # both within a window
    assert run([(True, False)]) is None  # concealment only: loss, not lateness
    assert run([(False, True)]) is None
    assert run([(True, True)] * 60 + [(False, False)] * 30) is None  # a good window


# RTP filter and link meter.


def test_filter_follows_roc_rules_and_extends_counters() -> None:
    t = 0xFFFF_FF00

    def ts(offset: int) -> int:
        return (t + offset) % 2**32

    f = RtpFilter(ssrc=7, payload_type=10, rate=44100)
    assert f.check(7, 10, 65535, t) == (65535, t)
    assert f.check(7, 10, 0, ts(221)) == (65536, t + 221)  # both counters wrap
    assert f.check(8, 10, 1, ts(442)) is None  # SSRC
    assert f.check(7, 11, 1, ts(442)) is None  # payload type
    assert f.check(7, 10, 101, ts(442)) is None  # 65536 + 101: a jump of 101
    assert f.check(7, 10, 100, ts(442)) == (65636, t + 442)  # a jump of 100 is accepted
    assert f.check(7, 10, 101, ts(442 + 44101)) is None  # more than 1 s
    assert f.check(7, 10, 101, ts(442 + 44100)) == (65637, t + 442 + 44100)
    assert f.check(7, 10, 64, ts(542)) == (65600, t + 542)  # reordered, within the limits
    stats = f.stats
    assert (stats.ssrc, stats.payload_type, stats.seq_jump, stats.ts_jump) == (1, 1, 1, 1)
    assert stats.total == 4
    assert f.highest_seq == 65637


def test_link_meter_counts_as_rfc3550() -> None:
    m = LinkMeter(1000)  # 1 sample per ms
    for seq in (10, 11, 13, 12, 12, 16):
        m.on_packet(seq, seq * 10, seq * 10 * MS)
    assert (m.first_seq, m.highest_seq, m.expected, m.received, m.duplicated) == (
        10,
        16,
        7,
        5,
        1,
    )
    assert m.lost == 2
    assert m.jitter == 0.0  # constant transit
    j = LinkMeter(1000)
    for seq in range(2000):
        j.on_packet(seq, seq * 10, (seq * 10 + (4 if seq % 2 else 0)) * MS)
    assert j.jitter == pytest.approx(4.0)  # |D| = 4 ms every time


def test_exact_start_tops_up_with_silence_or_cuts_mid_packet() -> None:
    jb = JitterBuffer(1, 1024)
    for start in (0, 10, 20):
        jb.write(start, payload(start, 10), 0)
    assert not jb.try_start_exact(31, 40)
    assert jb.try_start_exact(30, 40)  # 30 queued, 40 asked: 10 samples of silence first
    assert jb.pos == -10
    data, missing = jb.read(40)
    assert missing is None  # the silence before a stream is not a hole
    assert positions(data) == [0] * 10 + list(range(1, 31))
    jb = JitterBuffer(1, 1024)
    for start in (0, 10, 20):
        jb.write(start, payload(start, 10), 0)
    assert jb.try_start_exact(10, 13)  # cut mid-packet: 13 left
    assert (jb.pos, jb.span) == (17, 13)
    data, missing = jb.read(13)
    assert missing is None
    assert positions(data) == list(range(18, 31))
