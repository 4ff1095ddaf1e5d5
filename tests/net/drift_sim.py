"""A closed-loop simulation of a receiver queue under clock drift, on virtual time.

A producer whose sample clock runs `drift_ppm` off ours emits fixed-size packets; they
arrive after a random jitter; the consumer plays fixed frames on our clock, consuming
`frame * coefficient` input samples per frame (an ideal resampler), and reports the NIQ
latency (end of the newest arrived packet minus its read position) to a `LatencyTuner`.
Pure numpy/python: ten minutes of stream take about a second.
"""

import msgspec
import numpy as np
import numpy.typing as npt

from rocd.net.roc import (
    FreqEstimatorConfig,
    LatencyConfig,
    LatencyProfile,
    LatencyStatus,
    LatencyTuner,
)

SAMPLE_RATE = 44100
PACKET = 221  # samples: Roc's 5 ms packets
FRAME = 441  # samples: a 10 ms output frame


class SimResult(msgspec.Struct, kw_only=True):
    time_s: npt.NDArray[np.float64]  # per frame, since playback started
    latency_ms: npt.NDArray[np.float64]  # NIQ latency before the frame
    coefficient: npt.NDArray[np.float64]
    drift_ppm: npt.NDArray[np.float64]
    underruns: int  # frames that needed samples not yet arrived
    statuses: set[LatencyStatus]


def simulate(
    *,
    drift_ppm: float,
    target_ms: float,
    profile: LatencyProfile = LatencyProfile.DEFAULT,
    minutes: float = 10.0,
    jitter_ms: float = 0.0,
    seed: int = 0,
    estimator: FreqEstimatorConfig | None = None,
) -> SimResult:
    fs = SAMPLE_RATE
    producer_rate = fs * (1 + drift_ppm * 1e-6)  # producer samples per second of our time
    duration = minutes * 60 + 2 * target_ms / 1000 + 1
    n_packets = int(duration * producer_rate / PACKET) + 1
    done = (np.arange(n_packets) + 1) * PACKET / producer_rate  # packet complete at sender
    rng = np.random.default_rng(seed)
    arrival = done + jitter_ms / 1000 + rng.uniform(-1, 1, n_packets) * jitter_ms / 1000
    # Newest packet arrived by time t, and the end of the contiguous data arrived by t.
    order = np.argsort(arrival, kind="stable")
    sorted_arrival = arrival[order]
    newest_index = np.maximum.accumulate(order)
    contiguous_by = np.maximum.accumulate(arrival)

    tuner = LatencyTuner(
        LatencyConfig(target_ns=round(target_ms * 1e6), profile=profile),
        SAMPLE_RATE,
        estimator=estimator,
    )
    target = tuner.target
    # Start of playback (Roc's delayed reader): once the target span is queued.
    start_packet = int(np.ceil(target / PACKET))
    t0 = float(np.max(arrival[:start_packet]))
    n_frames = int(minutes * 60 * fs / FRAME)
    frame_times = t0 + np.arange(n_frames) * FRAME / fs
    k = np.searchsorted(sorted_arrival, frame_times, side="right")
    newest_end = (newest_index[k - 1] + 1) * PACKET
    contiguous_end = np.searchsorted(contiguous_by, frame_times, side="right") * PACKET
    read = float(newest_end[0]) - target

    latency = np.empty(n_frames)
    coefficient = np.empty(n_frames)
    drift = np.empty(n_frames)
    underruns = 0
    statuses = set()
    newest_list = newest_end.tolist()
    contiguous_list = contiguous_end.tolist()
    for j in range(n_frames):
        niq = newest_list[j] - read
        statuses.add(tuner.update(niq))
        c = tuner.coefficient
        read += FRAME * c
        if read > contiguous_list[j]:
            underruns += 1
        tuner.advance(FRAME)
        latency[j] = niq
        coefficient[j] = c
        drift[j] = tuner.drift_ppm
    return SimResult(
        time_s=frame_times - t0,
        latency_ms=latency * 1000 / fs,
        coefficient=coefficient,
        drift_ppm=drift,
        underruns=underruns,
        statuses=statuses,
    )
