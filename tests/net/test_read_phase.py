"""ReadPhase: the earliest arrival phase of a sender's bursts, and where reads go."""

from __future__ import annotations

import random

import pytest

from rocd.net.roc._read_phase import ReadPhase

P = 10_000_000  # a 10 ms period, ns
T0 = 123_456_789_000


def test_unknown_until_a_packet_arrives() -> None:
    phase = ReadPhase(P)
    assert not phase.known
    assert phase.shift_ns(T0) == 0
    phase.arrival(T0)
    assert phase.known
    phase.reset()
    assert phase.shift_ns(T0) == 0


def test_reads_go_three_quarters_of_a_period_after_the_bursts() -> None:
    phase = ReadPhase(P)
    phase.arrival(T0)  # a burst: two packets
    phase.arrival(T0 + 20_000)
    for read in (T0 + 1_000_000, T0 + 7_000_000, T0 + 11_000_000, T0 - 4_000_000):
        shift = phase.shift_ns(read)
        assert abs(shift) <= P // 2  # the nearest place, earlier or later
        assert (read + shift - T0) % P == 7_500_000


def test_the_on_time_phase_is_where_most_bursts_fall_not_a_late_first_one() -> None:
    phase = ReadPhase(P)
    phase.arrival(T0 + 6_500_000)  # the first burst 6.5 ms late (a sender warming up)
    for k in range(1, 12):  # then on time, within a few hundred microseconds
        phase.arrival(T0 + k * P + random.Random(k).randrange(0, 300_000))
    phase.arrival(T0 + 12 * P + 4_000_000)  # and one late again
    on_time = phase.on_time_ns()
    assert on_time is not None
    assert (on_time - T0) % P < 300_000
    assert (T0 + phase.shift_ns(T0) - T0) % P == pytest.approx(7_500_000, abs=300_000)


def test_while_playing_reads_only_move_later_and_by_half_a_period_at_most() -> None:
    phase = ReadPhase(P)
    phase.arrival(T0)
    early = T0 + 4_000_000  # reads 3.5 ms too early: move them later
    assert phase.shift_ns(early, later_only=True) == 3_500_000
    late = T0 + 8_000_000  # 0.5 ms late: leave them (earlier could skip a burst)
    assert phase.shift_ns(late, later_only=True) == 0
    assert phase.shift_ns(late) == -500_000


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="period"):
        ReadPhase(0)
    with pytest.raises(ValueError, match="fraction"):
        ReadPhase(P, fraction=1.0)
