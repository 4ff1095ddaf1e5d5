"""Acceptance tests of the receiving transport: a simulated sender, an impaired link, a
consumer reading every 10 ms, all on virtual time (tests/receiver/sim.py)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from rocd.net.roc import (
    EndReason,
    FecScheme,
    GilbertElliott,
    ImpairmentConfig,
    LatencyConfig,
    Receiver,
    ReceiverConfig,
    SessionState,
)
from tests.receiver.sim import (
    FRAME,
    MS,
    PACKET,
    SimSender,
    find_offset,
    noisy_sine,
    quantize,
    run,
    schedule,
    sine,
)

RATE = 44100


def played_range(output: npt.NDArray[np.float32], offset: int) -> tuple[int, int]:
    """[first, last) indexes of the expected signal that made it to the output (non-silent
    start to the end of the output)."""
    first = int(np.flatnonzero(np.any(output != 0, axis=1))[0]) - offset
    return first, len(output) - offset


def block_snr_db(signal: npt.NDArray[np.float32], freq: float, block: int = 441) -> float:
    """SNR of a sine near `freq`: per block, least squares on sin, cos, t sin, t cos and 1
    (the t terms absorb a small frequency offset, such as drift compensation makes);
    noise is what the fits leave."""
    x = signal[: len(signal) // block * block].astype(np.float64).reshape(-1, block)
    t = np.arange(block) - (block - 1) / 2
    w = 2 * np.pi * freq / RATE
    s, c = np.sin(w * t), np.cos(w * t)
    basis = np.stack([s, c, t * s, t * c, np.ones(block)], axis=1)
    coeffs, *_ = np.linalg.lstsq(basis, x.T, rcond=None)
    fitted = (basis @ coeffs).T
    return float(10 * np.log10(np.sum(fitted**2) / np.sum((x - fitted) ** 2)))


# No loss.


def test_no_loss_without_drift_compensation_is_sample_exact() -> None:
    signal = noisy_sine(6.0)
    expected = quantize(signal)
    receiver = Receiver(ReceiverConfig(drift_compensation=False))
    output = run(receiver, schedule([SimSender.from_signal(signal)]), reads=500)
    offset = find_offset(output, expected)
    first, last = played_range(output, offset)
    # Playback starts with the first packet (see the start rule of the jitter buffer) or
    # the one after it, and then plays every sample unchanged.
    assert first in (0, PACKET)
    np.testing.assert_array_equal(output[offset + first : offset + last], expected[first:last])
    assert last - first > 4.5 * RATE
    (metrics,) = receiver.metrics()
    assert metrics.state is SessionState.PLAYING
    assert (metrics.lost, metrics.concealed_samples, metrics.underruns, metrics.late) == (
        0,
        0,
        0,
        0,
    )
    assert metrics.resampler_ratio == 1.0
    # The latency left after each frame starts (and, without drift, stays) between the
    # target and the target plus one read period (10 ms) plus one packet.
    assert 200 <= metrics.latency_ms < 200 + 10 + 5.02


def test_no_loss_with_drift_compensation_keeps_the_signal_clean() -> None:
    freq = 997.0
    signal = sine(12.0, freq)
    receiver = Receiver(ReceiverConfig(drift_compensation=True))
    output = run(receiver, schedule([SimSender.from_signal(signal)]), reads=1100)
    start = int(np.flatnonzero(np.any(output != 0, axis=1))[0])
    # Skip the resampler's first frame (its history starts at zero).
    played = output[start + FRAME :, 0]
    assert len(played) > 10 * RATE
    assert block_snr_db(played, freq) >= 60
    (metrics,) = receiver.metrics()
    assert metrics.concealed_samples == 0
    assert metrics.underruns == 0
    assert metrics.resampler_ratio != 1.0  # the tuner does drive the resampler


# Loss and FEC.


def test_5_percent_random_loss_is_repaired_by_rs8m() -> None:
    signal = noisy_sine(20.0, seed=5)
    expected = quantize(signal)
    sender = SimSender.from_signal(signal, fec=FecScheme.RS8M)
    arrivals = schedule([sender], ImpairmentConfig(seed=11, loss=0.05))
    receiver = Receiver(ReceiverConfig(fec=FecScheme.RS8M, drift_compensation=False))
    output = run(receiver, arrivals, reads=1900)
    (metrics,) = receiver.metrics()
    assert metrics.lost > 100  # ~5% of 3990 packets
    assert metrics.recovered >= metrics.lost - 45  # the last blocks are still in flight
    assert metrics.concealed_samples == 0
    offset = find_offset(output, expected)
    first, last = played_range(output, offset)
    np.testing.assert_array_equal(output[offset + first : offset + last], expected[first:last])


def test_20_percent_bursty_loss_is_concealed_and_counted() -> None:
    signal = noisy_sine(20.0, seed=6)
    expected = quantize(signal)
    sender = SimSender.from_signal(signal, fec=FecScheme.RS8M)
    burst = GilbertElliott.from_loss(0.2, mean_burst=6)
    arrivals = schedule([sender], ImpairmentConfig(seed=3, burst=burst))
    config = ReceiverConfig(fec=FecScheme.RS8M, drift_compensation=False)
    receiver = Receiver(config)
    latencies: list[float] = []

    def probe(_k: int, r: Receiver) -> None:
        latencies.extend(m.latency_ms for m in r.metrics() if m.state is SessionState.PLAYING)

    output = run(receiver, arrivals, reads=1900, probe=probe)
    assert receiver.counters.sessions_created == 1
    assert receiver.pop_ended() == []
    (metrics,) = receiver.metrics()
    assert metrics.recovered > 0
    assert metrics.concealed_samples > 0
    # In bounds all along: [target - tolerance, target + tolerance] = [0, 400] ms.
    assert min(latencies) >= 0
    assert max(latencies) <= 400
    # Every 221-sample packet of the output is either intact, or wholly concealed, or
    # intact but for a fade-in at its start right after a concealed one; the concealed
    # ones are exactly what the session counted.
    offset = find_offset(output, expected)
    first, last = played_range(output, offset)
    first = -(-first // PACKET) * PACKET
    n = (last - first) // PACKET
    got = output[offset + first : offset + first + n * PACKET].reshape(n, PACKET, 2)
    want = expected[first : first + n * PACKET].reshape(n, PACKET, 2)
    differs = np.any(got != want, axis=2)  # (packet, sample)
    whole = differs.all(axis=1)
    fade = round(3 * MS * RATE / 1e9)
    for i in np.flatnonzero(differs.any(axis=1) & ~whole):
        assert i > 0
        assert whole[i - 1], f"packet {i} damaged but not after a hole"
        assert not differs[i, fade:].any(), f"packet {i} damaged beyond the fade-in"
    assert metrics.concealed_samples == int(whole.sum()) * PACKET
    assert whole.sum() > 10


def test_lost_packets_are_concealed_without_clicks() -> None:
    freq, amplitude = 997.0, 0.5
    signal = sine(6.0, freq, amplitude=amplitude)
    expected = quantize(signal)
    lost = {100, 250, 251, *range(400, 410), 555}
    sender = SimSender.from_signal(signal, drop_packets=frozenset(lost))
    receiver = Receiver(ReceiverConfig(drift_compensation=False))
    output = run(receiver, schedule([sender]), reads=550)
    (metrics,) = receiver.metrics()
    assert metrics.concealed_samples == len(lost) * PACKET
    # The sine repeats every 44100 / gcd(44100, 997) samples only: offsets are unambiguous
    # over the first 64 played samples.
    offset = find_offset(output, expected)
    natural = float(np.abs(np.diff(expected[:, 0])).max())  # ~ 2 pi f A / rate = 0.071
    worst = 0.0
    for i in sorted(lost):
        a = offset + i * PACKET
        around = output[a - 200 : a + PACKET + 400, 0]
        worst = max(worst, float(np.abs(np.diff(around)).max()))
    # Zeros in place of the packets would step by up to the amplitude (0.5): 7x more.
    assert worst <= 1.05 * natural


# Jitter, reordering, duplicates.


def test_20_ms_jitter_at_a_60_ms_target_never_underruns() -> None:
    signal = noisy_sine(30.0, seed=8)
    config = ReceiverConfig(latency=LatencyConfig(target_ns=60 * MS))
    arrivals = schedule(
        [SimSender.from_signal(signal)], ImpairmentConfig(seed=4, delay_ns=0, jitter_ns=40 * MS)
    )
    receiver = Receiver(config)
    run(receiver, arrivals, reads=2900, keep=False)
    (metrics,) = receiver.metrics()
    assert metrics.underruns == 0
    assert metrics.late == 0
    assert metrics.concealed_samples == 0
    # Uniform 0..40 ms delays: |D| averages 13 ms between neighbours, more when reordered.
    assert 8 < metrics.jitter_ms < 25
    assert receiver.pop_ended() == []


def test_reordering_and_duplicates_do_not_change_the_output() -> None:
    signal = noisy_sine(10.0, seed=9)
    expected = quantize(signal)
    impairment = ImpairmentConfig(
        seed=2, jitter_ns=15 * MS, reorder=0.1, reorder_delay_ns=30 * MS, duplicate=0.1
    )
    arrivals = schedule([SimSender.from_signal(signal)], impairment)
    receiver = Receiver(ReceiverConfig(drift_compensation=False))
    output = run(receiver, arrivals, reads=950)
    (metrics,) = receiver.metrics()
    assert metrics.duplicated > 100
    assert (metrics.lost, metrics.late, metrics.concealed_samples) == (0, 0, 0)
    offset = find_offset(output, expected)
    first, last = played_range(output, offset)
    np.testing.assert_array_equal(output[offset + first : offset + last], expected[first:last])


# Several senders.


def test_two_senders_are_mixed_and_one_leaving_disturbs_nothing() -> None:
    a = SimSender.from_signal(noisy_sine(4.0, seed=1), address=("10.0.0.1", 5000), ssrc=111)
    b_signal = noisy_sine(8.0, seed=2)
    b = SimSender.from_signal(
        b_signal, address=("10.0.0.2", 6000), ssrc=222, seq0=7, ts0=99, start_ns=1_234_567
    )
    config = ReceiverConfig(drift_compensation=False)
    alone_a = run(Receiver(config), schedule([a]), reads=750)
    alone_b = run(Receiver(config), schedule([b]), reads=750)
    both = Receiver(config)
    ends: list[tuple[int, EndReason]] = []

    def probe(k: int, r: Receiver) -> None:
        ends.extend((k, e.reason) for e in r.pop_ended())

    mixed = run(both, schedule([a, b]), reads=750, probe=probe)
    assert both.counters.sessions_created == 2
    # The mix is the sum of what each sender alone gives, sample for sample: while both
    # play, while A's session conceals its end, and once it is gone.
    np.testing.assert_array_equal(mixed, alone_a + alone_b)
    # A stopped at 4 s; its queue (200 ms) drains, then the watchdog waits 4/3 x 200 ms.
    ((k, reason),) = ends
    assert reason is EndReason.NO_PLAYBACK
    assert 4.0 + 0.2 + 0.266 <= k / 100 <= 4.0 + 0.2 + 0.266 + 0.05
    (b_metrics,) = both.metrics()
    assert b_metrics.ssrc == 222
    assert (b_metrics.concealed_samples, b_metrics.underruns) == (0, 0)
    expected_b = quantize(b_signal)
    offset = find_offset(alone_b, expected_b)
    _, last = played_range(alone_b, offset)
    after_a = (k + 1) * FRAME  # output index after A's removal
    np.testing.assert_array_equal(mixed[after_a:], expected_b[after_a - offset : last])


# Bad input.


def test_strangers_and_garbage_are_counted_and_dropped() -> None:
    signal = noisy_sine(4.0, seed=3)
    expected = quantize(signal)
    sender = SimSender.from_signal(signal, fec=FecScheme.RS8M)
    address = sender.address
    arrivals = schedule([sender])
    receiver = Receiver(ReceiverConfig(fec=FecScheme.RS8M, drift_compensation=False))
    source = next(a.datagram for a in arrivals if not a.is_repair)
    repair = next(a.datagram for a in arrivals if a.is_repair)
    other = ("10.9.9.9", 1)

    def with_ssrc(datagram: bytes, ssrc: int) -> bytes:
        return datagram[:8] + ssrc.to_bytes(4, "big") + datagram[12:]

    def with_pt(datagram: bytes, pt: int) -> bytes:
        return datagram[:1] + bytes([pt]) + datagram[2:]

    rng = np.random.default_rng(0)
    garbage = [b"", b"\x80", bytes(17), b"\x40" + bytes(900)]  # short, short, v0, v1
    garbage += [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (3, 11, 18)]
    seq = int.from_bytes(source[2:4], "big")

    def with_seq(datagram: bytes, delta: int) -> bytes:
        return datagram[:2] + ((seq + delta) % 65536).to_bytes(2, "big") + datagram[4:]

    def inject(k: int, r: Receiver) -> None:
        if k != 30:  # once the session exists
            return
        now = k * 10 * MS
        for datagram in garbage:
            r.on_source(datagram, other, now)
        r.on_repair(repair, other, now)  # repair from an address without a session
        r.on_source(with_pt(with_ssrc(source, 777), 99), other, now)  # unknown payload type
        r.on_source(with_ssrc(source, 999), address, now)  # another SSRC at its address
        r.on_source(source, other, now)  # its SSRC from another address
        # Inside the session: a payload that is not whole stereo frames, a footer with
        # ESI >= K (on a packet still to come: the good copy must still play), a sequence
        # number jump, a payload type change, an empty repair packet.
        r.on_source(with_seq(source[:-8] + source[-6:], 60), address, now)
        r.on_source(with_seq(source[:-6] + bytes([0, 0, 0, 30, 0, 18]), 61), address, now)
        r.on_source(with_seq(source, 5000), address, now)
        r.on_source(with_seq(with_pt(source, 11), 62), address, now)
        r.on_repair(b"", address, now)

    output = run(receiver, arrivals, reads=380, probe=inject)
    c = receiver.counters
    assert c.malformed == len(garbage)
    assert (c.unknown_sender, c.unknown_payload_type, c.ssrc_mismatch) == (1, 1, 2)
    assert (c.sessions_created, c.sessions_ended, c.session_limit) == (1, 0, 0)
    (metrics,) = receiver.metrics()
    assert metrics.filtered == 2  # seq jump, payload type change
    assert metrics.malformed == 3  # bad length, bad footer, empty repair
    # The stream itself plays on untouched.
    offset = find_offset(output, expected)
    first, last = played_range(output, offset)
    np.testing.assert_array_equal(output[offset + first : offset + last], expected[first:last])


def test_repair_packets_at_an_endpoint_without_fec_are_counted() -> None:
    receiver = Receiver(ReceiverConfig())
    receiver.on_repair(bytes(100), ("10.0.0.1", 1), 0)
    assert receiver.counters.unexpected_repair == 1


@pytest.mark.parametrize("seed", range(3))
def test_random_datagrams_never_raise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sender = SimSender.from_signal(noisy_sine(1.0, seed=seed), fec=FecScheme.LDPC_STAIRCASE)
    receiver = Receiver(ReceiverConfig(fec=FecScheme.LDPC_STAIRCASE, max_sessions=4))
    for k, (at, is_repair, datagram) in enumerate(sender.datagrams()):
        # Mutate some bytes of real datagrams, so most get past the first checks.
        mutated = bytearray(datagram)
        for i in rng.integers(0, len(mutated), 3):
            mutated[i] = int(rng.integers(0, 256))
        feed = receiver.on_repair if is_repair else receiver.on_source
        feed(bytes(mutated[: int(rng.integers(0, len(mutated) + 1))]), ("10.0.0.1", k % 3), at)
        feed(datagram, ("10.0.0.1", 5000), at)
        if k % 4 == 0:
            receiver.read(FRAME, at)
    assert receiver.counters.sessions_created >= 1
