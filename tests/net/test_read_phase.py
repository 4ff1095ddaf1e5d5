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


def test_late_bursts_do_not_move_the_phase_an_on_time_one_does() -> None:
    phase = ReadPhase(P)
    phase.arrival(T0 + 1_000_000)  # the first burst was 1 ms late
    for k in range(1, 20):  # later ones later still (up to 4 ms): the phase stays
        phase.arrival(T0 + k * P + random.Random(k).randrange(1_000_000, 4_000_000))
    assert (T0 + phase.shift_ns(T0) - T0 - 1_000_000) % P == 7_500_000
    phase.arrival(T0 + 20 * P + 10_000)  # on time (almost): the earliest phase yet
    assert (T0 + phase.shift_ns(T0) - T0 - 10_000) % P == 7_500_000


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="period"):
        ReadPhase(0)
    with pytest.raises(ValueError, match="fraction"):
        ReadPhase(P, fraction=1.0)
