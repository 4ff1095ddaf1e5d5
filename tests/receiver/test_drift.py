"""Clock drift: a sender whose clock runs +-1000 ppm off ours for ten minutes, through the
whole receiver (resampler in the loop), on virtual time."""

from __future__ import annotations

import numpy as np
import pytest

from rocd.net.roc import Receiver, ReceiverConfig, SessionState
from tests.receiver.sim import PACKET, SimSender, run, schedule, sine

RATE = 44100
SETTLED_S = 300  # the gradual loop settles within ~2-3 min (rocd/net/roc/_freq_estimator.py)


@pytest.mark.parametrize("drift_ppm", [1000, -1000])
def test_drift_is_compensated_at_the_default_target(drift_ppm: int) -> None:
    minutes = 10
    # A sine whose period divides 200 packets: the sender cycles 200 payloads.
    loop = 200 * PACKET
    sender = SimSender.from_signal(
        sine(loop / RATE, 1000 * RATE / loop),
        drift_ppm=drift_ppm,
        n_packets=int(minutes * 60 * RATE * (1 + drift_ppm * 1e-6) / PACKET) + 50,
    )
    receiver = Receiver(ReceiverConfig())  # 200 ms target, gradual profile
    seconds: list[tuple[float, float]] = []  # (latency ms, drift ppm) once per second

    def probe(k: int, r: Receiver) -> None:
        if k % 100 == 99:
            (m,) = r.metrics()
            assert m.state is SessionState.PLAYING
            seconds.append((m.latency_ms, m.drift_ppm))

    run(receiver, schedule([sender]), reads=minutes * 6000, keep=False, probe=probe)
    assert receiver.pop_ended() == []
    (metrics,) = receiver.metrics()
    assert metrics.underruns == 0
    assert metrics.concealed_samples == 0
    latency, drift = np.array(seconds).T
    assert len(latency) == minutes * 60
    assert np.abs(latency[SETTLED_S:] - 200).max() < 5
    assert np.abs(drift[SETTLED_S:] - drift_ppm).max() < 20
    # Within the bounds all along, and the resampler does the correcting.
    assert np.abs(latency - 200).max() < 40
    assert metrics.resampler_ratio == pytest.approx(1 / (1 + drift_ppm * 1e-6), abs=30e-6)
