"""The pacer on virtual time: exact deadlines, catch-up after late wake-ups, no drift."""

import random

import pytest

from rocd.net.roc import Pacer

START = 5_000_000_000  # an arbitrary monotonic origin, ns
CHUNK = 221  # one 5 ms packet at 44.1 kHz


def test_first_chunk_due_at_start_then_on_the_sample_clock() -> None:
    pacer = Pacer(44100, START, chunk_samples=CHUNK)
    assert pacer.deadline_ns == START
    assert pacer.due(START - 1) == 0
    assert pacer.due(START) == 1
    pacer.sent(CHUNK)
    # 221 / 44100 s = 5011337.86 ns, rounded up.
    assert pacer.deadline_ns == START + 5_011_338
    assert pacer.due(START + 5_011_337) == 0
    assert pacer.due(START + 5_011_338) == 1


def test_late_wake_up_gives_a_catch_up_burst() -> None:
    pacer = Pacer(44100, START, chunk_samples=CHUNK)
    pacer.sent(CHUNK)
    # Woken 12 ms late for the second chunk: chunks 1, 2 and 3 are all due
    # (chunk 3 is due at 15.03 ms, chunk 4 at 20.05 ms).
    now = pacer.deadline_ns + 12_000_000
    assert pacer.due(now) == 3
    pacer.sent(3 * CHUNK)
    assert pacer.due(now) == 0
    assert pacer.deadline_ns == START + -(-4 * CHUNK * 10**9 // 44100)


def test_partial_chunks_count() -> None:
    pacer = Pacer(48000, START, chunk_samples=480)
    pacer.sent(100)  # the sample clock, not the chunk count, decides
    assert pacer.deadline_ns == START + 2_083_334
    assert pacer.due(START + 2_083_334) == 1
    assert pacer.due(START + 10_000_000) == 1  # samples 100..480 due: one chunk of 480
    assert pacer.due(START + 10_000_001 + 2_083_334) == 2


def test_no_drift_over_an_hour_of_late_wake_ups() -> None:
    """A sender loop: sleep until the deadline, wake 0.6-2.3 ms late, send what is due."""
    rng = random.Random(42)
    pacer = Pacer(44100, START, chunk_samples=CHUNK)
    now = START
    hour = 3600 * 10**9
    max_burst = 0
    max_late = 0
    while now < START + hour:
        now = pacer.deadline_ns + rng.randint(600_000, 2_300_000)
        burst = pacer.due(now)
        assert burst >= 1
        max_burst = max(max_burst, burst)
        # Every chunk sent now was due; the next one is not.
        for _ in range(burst):
            max_late = max(max_late, now - pacer.deadline_ns)
            pacer.sent(CHUNK)
        assert pacer.due(now) == 0
        assert pacer.deadline_ns > now
    # Samples sent track real time exactly: whatever was due by `now`, nothing more.
    elapsed_samples = (now - START) * 44100 // 10**9
    assert pacer.sent_samples - CHUNK < elapsed_samples + 1 <= pacer.sent_samples
    assert max_burst == 1  # lateness (< 2.3 ms) stays below one packet (5 ms)
    assert max_late <= 2_300_000


def test_catch_up_stays_exact_with_bursts() -> None:
    rng = random.Random(7)
    pacer = Pacer(44100, START, chunk_samples=CHUNK)
    now = START
    for _ in range(100_000):
        now = pacer.deadline_ns + rng.choice([0, 1_000_000, 9_000_000, 30_000_000])
        pacer.sent(CHUNK * pacer.due(now))
        # After the burst exactly the chunks whose first sample is due by now are sent.
        assert pacer.sample_time_ns(pacer.sent_samples - CHUNK) <= now < pacer.deadline_ns
    assert pacer.resyncs == 0


def test_max_lag_restarts_the_schedule_after_a_stall() -> None:
    pacer = Pacer(44100, START, chunk_samples=CHUNK, wall_start_ns=10**18, max_lag_ns=100_000_000)
    pacer.sent(CHUNK)
    assert pacer.due(pacer.deadline_ns + 50_000_000) == 10  # within the lag: catch up
    pacer.sent(10 * CHUNK)
    stalled = pacer.deadline_ns + 3_000_000_000  # 3 s asleep
    assert pacer.due(stalled) == 1  # no 3-second burst
    assert pacer.resyncs == 1
    assert pacer.deadline_ns == stalled
    # Capture stamps follow the moved schedule.
    assert pacer.capture_ns(pacer.sent_samples) == 10**18 + (stalled - START)


def test_capture_times_are_nominal_sample_times() -> None:
    pacer = Pacer(48000, START, chunk_samples=480, wall_start_ns=1_700_000_000 * 10**9)
    assert pacer.capture_ns(0) == 1_700_000_000 * 10**9
    assert pacer.capture_ns(48000 * 3600) == (1_700_000_000 + 3600) * 10**9


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="rate"):
        Pacer(0, START, chunk_samples=1)
    with pytest.raises(ValueError, match="chunk"):
        Pacer(44100, START, chunk_samples=0)
    with pytest.raises(ValueError, match="lag"):
        Pacer(44100, START, chunk_samples=1, max_lag_ns=-1)
    with pytest.raises(ValueError, match="unsend"):
        Pacer(44100, START, chunk_samples=1).sent(-1)


def test_a_shift_moves_the_rest_of_the_schedule_and_its_capture_times() -> None:
    pacer = Pacer(44100, START, chunk_samples=441, wall_start_ns=7_000)
    pacer.sent(441)
    due, capture = pacer.deadline_ns, pacer.capture_ns(441)
    pacer.shift(-3_000_000)  # a reader moving its reads 3 ms earlier
    assert pacer.deadline_ns == due - 3_000_000
    assert pacer.capture_ns(441) == capture - 3_000_000
    assert pacer.due(due - 3_000_000) == 1
