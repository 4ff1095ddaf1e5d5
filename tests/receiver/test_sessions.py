"""Session life cycle and the receiver's other promises: why sessions end, restarts,
limits, other rates and channel counts, what RTCP gets."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from rocd.net.roc import (
    L16_MONO,
    Encoding,
    EncodingMap,
    EndReason,
    ImpairmentConfig,
    LatencyConfig,
    Receiver,
    ReceiverConfig,
    SenderClock,
    SessionMetrics,
    SessionState,
)
from tests.receiver.sim import (
    FRAME,
    MS,
    NS,
    PACKET,
    SimSender,
    find_offset,
    noisy_sine,
    quantize,
    run,
    schedule,
    sine,
)
from tests.receiver.test_transport import block_snr_db, played_range

RATE = 44100
EXACT = ReceiverConfig(drift_compensation=False)


def ends_of(receiver: Receiver, sender: SimSender, reads: int) -> list[tuple[float, EndReason]]:
    """(time s, reason) of every session end while playing `sender` for `reads` frames."""
    ends: list[tuple[float, EndReason]] = []

    def probe(k: int, r: Receiver) -> None:
        ends.extend((k / 100, e.reason) for e in r.pop_ended())

    run(receiver, schedule([sender]), reads=reads, keep=False, probe=probe)
    return ends


def test_a_sender_that_never_fills_the_buffer_is_dropped_after_warmup_and_timeout() -> None:
    sender = SimSender.from_signal(noisy_sine(0.1))  # 19 packets: 95 ms < 200 ms target
    receiver = Receiver(EXACT)
    # Created at 5 ms, read from 10 ms on: 200 ms of warm-up + 266.7 ms blank = 47 frames.
    assert ends_of(receiver, sender, 100) == [(0.47, EndReason.NO_PLAYBACK)]
    assert receiver.session_count == 0
    assert receiver.counters.sessions_ended == 1


def test_a_timestamp_leap_ends_the_session_out_of_bounds() -> None:
    # 0.6 s ahead (under the filter's 1 s): the queue looks 800 ms long, above 200 + 200.
    sender = SimSender.from_signal(noisy_sine(3.0), ts_jumps={300: int(0.6 * RATE)})
    receiver = Receiver(EXACT)
    ((at, reason),) = ends_of(receiver, sender, 250)
    assert reason is EndReason.LATENCY_OUT_OF_BOUNDS
    assert at == pytest.approx(300 * PACKET / RATE, abs=0.011)
    # The sender goes on: its next packets start a new session.
    assert receiver.counters.sessions_created == 2


def test_packets_that_keep_coming_too_late_end_the_session_as_choppy() -> None:
    # Every other packet 400 ms late (after the 200 ms queue has played it).
    impairment = ImpairmentConfig(seed=1, reorder=0.5, reorder_delay_ns=400 * MS)
    sender = SimSender.from_signal(noisy_sine(5.0))
    receiver = Receiver(EXACT)
    ends: list[tuple[float, EndReason]] = []

    def probe(k: int, r: Receiver) -> None:
        ends.extend((k / 100, e.reason) for e in r.pop_ended())

    run(receiver, schedule([sender], impairment), reads=400, keep=False, probe=probe)
    at, reason = ends[0]
    assert reason is EndReason.CHOPPY_PLAYBACK
    assert 2.2 <= at <= 2.2 + 0.31 + 0.1  # playing from ~0.2 s, 2 s of bad 300 ms windows


def test_ended_sessions_report_their_metrics_and_bye_is_honoured() -> None:
    sender = SimSender.from_signal(noisy_sine(2.0))
    receiver = Receiver(EXACT)
    arrivals = schedule([sender])
    run(receiver, arrivals[:100], reads=60, keep=False)
    assert receiver.end_session(sender.ssrc, EndReason.BYE)
    assert not receiver.end_session(sender.ssrc, EndReason.BYE)
    (ended,) = receiver.pop_ended()
    assert (ended.ssrc, ended.address, ended.reason) == (sender.ssrc, sender.address, "bye")
    assert ended.metrics.received == 100
    assert receiver.pop_ended() == []
    # Metrics are plain data for the API.
    decoded = msgspec.json.decode(msgspec.json.encode(ended.metrics), type=SessionMetrics)
    assert decoded.ssrc == sender.ssrc
    assert decoded.address == sender.address
    receiver.on_source(arrivals[100].datagram, sender.address, arrivals[100].at)
    assert receiver.session_count == 1  # the sender is back: a new session
    receiver.close()
    assert [e.reason for e in receiver.pop_ended()] == [EndReason.CLOSED]


def test_a_restarted_sender_is_heard_again_once_its_old_session_ended() -> None:
    first = SimSender.from_signal(noisy_sine(1.0, seed=1), ssrc=1)
    second = SimSender.from_signal(
        noisy_sine(2.0, seed=2), ssrc=2, seq0=100, ts0=5, start_ns=int(1.0 * NS)
    )
    receiver = Receiver(EXACT)
    ends: list[tuple[float, EndReason]] = []

    def probe(k: int, r: Receiver) -> None:
        ends.extend((k / 100, e.reason) for e in r.pop_ended())

    output = run(receiver, schedule([first, second]), reads=300, probe=probe)
    # Same address, new SSRC: dropped while the first session lives (it drains its 200 ms
    # queue, then the watchdog waits 267 ms), then a new session starts.
    assert [reason for _, reason in ends] == [EndReason.NO_PLAYBACK]
    assert receiver.counters.ssrc_mismatch == pytest.approx(0.47 * RATE / PACKET, abs=3)
    (metrics,) = receiver.metrics()
    assert metrics.ssrc == 2
    assert metrics.state is SessionState.PLAYING
    expected = quantize(noisy_sine(2.0, seed=2))
    tail = output[int(2.0 * RATE) :]
    offset = find_offset(tail, expected)
    first_played, last = played_range(tail, offset)
    np.testing.assert_array_equal(
        tail[offset + first_played : offset + last], expected[first_played:last]
    )


def test_new_senders_beyond_the_limit_are_refused() -> None:
    senders = [
        SimSender.from_signal(noisy_sine(1.0, seed=k), address=("10.0.0.1", 5000 + k), ssrc=k + 1)
        for k in range(3)
    ]
    receiver = Receiver(ReceiverConfig(drift_compensation=False, max_sessions=2))
    run(receiver, schedule(senders), reads=50, keep=False)
    assert receiver.session_count == 2
    assert receiver.counters.session_limit > 0
    assert {m.ssrc for m in receiver.metrics()} == {1, 2}


def test_mono_stream_plays_on_both_output_channels_exactly() -> None:
    signal = noisy_sine(3.0, channels=1)
    sender = SimSender.from_signal(signal, encoding=L16_MONO)
    receiver = Receiver(EXACT)
    output = run(receiver, schedule([sender]), reads=250)
    expected = np.repeat(quantize(signal), 2, axis=1)
    offset = find_offset(output, expected)
    first, last = played_range(output, offset)
    np.testing.assert_array_equal(output[offset + first : offset + last], expected[first:last])


@pytest.mark.parametrize("drift_compensation", [False, True])
def test_a_48_khz_stream_is_converted_to_the_output_rate(drift_compensation: bool) -> None:
    encodings = EncodingMap()
    encodings.register(Encoding(payload_type=100, rate=48000, channels=2))
    freq = 1500.0
    signal = sine(6.0, freq, rate=48000)
    sender = SimSender.from_signal(signal, encoding=encodings[100])
    config = ReceiverConfig(rate=RATE, drift_compensation=drift_compensation)
    receiver = Receiver(config, encodings=encodings)
    output = run(receiver, schedule([sender]), reads=500)
    start = int(np.flatnonzero(np.any(output != 0, axis=1))[0]) + FRAME
    played = output[start : start + 4 * RATE, 0]  # 4 s while the stream lasts
    assert block_snr_db(played, freq) > 60  # the tone is still 1500 Hz at 44.1 kHz
    (metrics,) = receiver.metrics()
    assert metrics.underruns == 0
    assert metrics.latency_ms == pytest.approx(200, abs=12)
    if not drift_compensation:
        assert metrics.resampler_ratio == RATE / 48000


def test_reception_stats_for_rtcp() -> None:
    sender = SimSender.from_signal(noisy_sine(3.0), seq0=65400)
    impairment = ImpairmentConfig(seed=5, loss=0.1, jitter_ns=4 * MS)
    receiver = Receiver(ReceiverConfig(latency=LatencyConfig(target_ns=100 * MS)))
    arrivals = schedule([sender], impairment)
    assert receiver.reception(0) == {}
    early = Receiver(ReceiverConfig())
    run(early, arrivals, reads=3, keep=False)
    (buffering,) = early.reception(20 * MS).values()
    assert (buffering.niq_latency_ns, buffering.niq_stalling_ns) == (None, None)
    now = 250 * 10 * MS
    run(receiver, arrivals, reads=251, keep=False)
    # The sender's SR says: RTP timestamp ts0 was captured at wall time 1e18 ns.
    clock = SenderClock(wall_ns=10**18, rtp_timestamp=sender.ts0)
    wall = 10**18 + now  # our wall clock runs with the sender's, from the first packet
    stats = receiver.reception(now, wall_ns=wall, clocks={sender.ssrc: clock})[sender.ssrc]
    (metrics,) = receiver.metrics()
    assert stats.ssrc == sender.ssrc
    assert stats.first_seq == 65400
    assert stats.ext_highest_seq > 65536  # wrapped: cycles counted in the upper bits
    assert stats.expected_packets == stats.ext_highest_seq - 65400 + 1
    assert stats.lost_packets == metrics.lost
    assert 0.07 < stats.lost_packets / stats.expected_packets < 0.13
    assert stats.jitter == pytest.approx(metrics.jitter_ms * RATE / 1000, abs=1)
    session = receiver.session(sender.ssrc)
    assert session is not None
    assert stats.niq_latency_ns is not None
    assert stats.niq_latency_ns == pytest.approx(session.niq_latency * 1e9 / RATE, abs=1)
    # The session's latency is the NIQ latency without its packet sawtooth (and smoothed
    # arrival jitter): a few ms from the instant NIQ value, here with 4 ms of jitter.
    assert abs(metrics.latency_ms * 1e6 - stats.niq_latency_ns) < 10 * MS
    assert stats.niq_stalling_ns is not None
    assert 0 <= stats.niq_stalling_ns < 20 * MS
    # Captured at ts0 + k, played k samples after the first: e2e is the first packet's
    # 5 ms of packetization plus the queue (~100 ms target, plus jitter).
    assert stats.e2e_latency_ns is not None
    assert 100 * MS < stats.e2e_latency_ns < 125 * MS
    assert receiver.reception(now)[sender.ssrc].e2e_latency_ns is None


@pytest.mark.parametrize("drift_compensation", [False, True])
def test_any_read_size_is_served(drift_compensation: bool) -> None:
    sender = SimSender.from_signal(noisy_sine(2.0))
    arrivals = schedule([sender])
    receiver = Receiver(
        ReceiverConfig(
            drift_compensation=drift_compensation, latency=LatencyConfig(target_ns=10 * MS)
        )
    )
    sizes = [1, 7, 441, 3000, 0, 5000]
    now = i = 0
    total = 0
    for k in range(60):
        n = sizes[k % len(sizes)]
        while i < len(arrivals) and arrivals[i].at <= now:
            receiver.on_source(arrivals[i].datagram, sender.address, arrivals[i].at)
            i += 1
        out = receiver.read(n, now)
        assert out.shape == (n, 2)
        assert out.dtype == np.float32
        total += n
        now = total * NS // RATE
    assert receiver.counters.sessions_created >= 1
