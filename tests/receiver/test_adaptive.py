"""Adaptive target latency through the whole receiver, on virtual time."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rocd.net.roc import FecScheme, ImpairmentConfig, Receiver, ReceiverConfig, SessionState
from rocd.net.roc._adaptive_latency import AdaptiveLatencyConfig
from tests.receiver.sim import MS, PACKET, SimSender, run, schedule, sine

RATE = 44100


def looped_sender(seconds: float, **kw: object) -> SimSender:
    loop = 200 * PACKET
    signal = sine(loop / RATE, 1000 * RATE / loop)
    return SimSender.from_signal(signal, n_packets=int(seconds * RATE / PACKET), **kw)


def record(
    receiver: Receiver, seconds: float, impairment: ImpairmentConfig | None, sender: SimSender
) -> npt.NDArray[np.float64]:
    samples: list[tuple[float, float, int]] = []  # (target ms, latency ms, underruns) per second

    def probe(k: int, r: Receiver) -> None:
        if k % 100 == 99:
            (m,) = r.metrics()
            assert m.state is SessionState.PLAYING
            samples.append((m.target_ms, m.latency_ms, m.underruns))

    run(receiver, schedule([sender], impairment), reads=int(seconds * 100), keep=False, probe=probe)
    assert receiver.pop_ended() == []  # never restarted
    return np.array(samples)


def test_a_quiet_link_brings_the_target_down_to_what_it_needs() -> None:
    receiver = Receiver(ReceiverConfig(adaptive=AdaptiveLatencyConfig()))  # start at 200 ms
    trace = record(receiver, 240, None, looped_sender(241))
    target, latency, underruns = trace.T
    assert target[0] == 200
    assert target[-1] < 30  # a clean link needs little more than the packet rhythm
    assert target[-1] >= 15  # never below the minimum
    assert np.all(np.diff(target) <= 0)  # only decreases on a clean link
    assert abs(latency[-1] - target[-1]) < 2  # and the queue followed
    assert underruns[-1] == 0


def test_fec_keeps_the_target_above_one_block() -> None:
    receiver = Receiver(ReceiverConfig(fec=FecScheme.RS8M, adaptive=AdaptiveLatencyConfig()))
    trace = record(receiver, 120, None, looped_sender(121, fec=FecScheme.RS8M))
    target = trace[:, 0]
    assert 90 <= target[-1] < 200  # 18 packets of 5 ms must fit, and it came down


def test_a_jittery_link_raises_the_target_and_plays_clean() -> None:
    jitter = ImpairmentConfig(seed=3, jitter_ns=60 * MS)
    receiver = Receiver(ReceiverConfig(adaptive=AdaptiveLatencyConfig(start_ns=40 * MS)))
    trace = record(receiver, 90, jitter, looped_sender(91))
    target, latency, underruns = trace.T
    assert target[0] == 40
    # 60 ms of arrival jitter needs at least its peak x 1.15 queued: the target went there
    # and stays in the adaptive range, and the queue follows it.
    assert target[-30:].min() > 60 * 1.15
    assert target.max() <= 200  # 5 x the start
    assert np.abs(latency[-30:] - target[-30:]).max() < 10
    assert underruns[-1] == underruns[-30]  # clean once the queue was big enough
