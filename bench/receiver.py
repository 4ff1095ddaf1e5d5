"""Receiver CPU cost per stream: `python -m bench.receiver [seconds]`.

44.1 kHz stereo, 5 ms packets, RS8M 18+10, drift compensation on (the sender's clock runs
+300 ppm fast, so the resampler really works), 10 ms output frames; no loss and 5% random
loss. The datagrams are made beforehand; what is timed (CPU time of this process) is what
a receiver does for them: `on_source` / `on_repair` for every datagram on time and a
`read` every 10 ms. The same loop around a receiver that does nothing gives the harness's
own cost, which is subtracted; the best of 3 runs counts. Also one receiver mixing 8
senders, per stream.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import numpy.typing as npt

from rocd.net.roc import FecScheme, ImpairmentConfig, Receiver, ReceiverConfig
from tests.receiver.sim import PACKET, SimSender, noisy_sine, run, schedule

RATE = 44100
REPEAT = 3


class _NullReceiver(Receiver):
    def on_source(self, datagram: bytes, src_addr: object, now_ns: int) -> None:
        pass

    def on_repair(self, datagram: bytes, src_addr: object, now_ns: int) -> None:
        pass

    def read(self, n_frames: int, now_ns: int) -> npt.NDArray[np.float32]:
        return np.zeros((0, 2), dtype=np.float32)


def _senders(count: int, seconds: float) -> list[SimSender]:
    payload_loop = noisy_sine(1.0)
    return [
        SimSender.from_signal(
            payload_loop,
            fec=FecScheme.RS8M,
            address=("10.0.0.1", 5000 + k),
            ssrc=1000 + k,
            drift_ppm=300.0,
            start_ns=k * 1_300_000,
            n_packets=int(seconds * RATE / PACKET),
        )
        for k in range(count)
    ]


def _measure(count: int, seconds: float, loss: float) -> tuple[float, Receiver]:
    """CPU us per second of audio per stream (best of REPEAT runs: the least disturbed by
    whatever else the machine does), and the last receiver (for its metrics)."""
    arrivals = schedule(_senders(count, seconds), ImpairmentConfig(seed=7, loss=loss))
    reads = int(seconds * 100) - 50
    config = ReceiverConfig(fec=FecScheme.RS8M, drift_compensation=True)
    best = float("inf")
    for _ in range(REPEAT):
        null = _NullReceiver(config)
        t0 = time.process_time()
        run(null, arrivals, reads=reads, keep=False)
        harness = time.process_time() - t0
        receiver = Receiver(config)
        t0 = time.process_time()
        run(receiver, arrivals, reads=reads, keep=False)
        best = min(best, time.process_time() - t0 - harness)
    audio_s = reads / 100
    return best / audio_s / count * 1e6, receiver


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    print(f"receiver, 44.1 kHz stereo, RS8M 18+10, drift compensation on, {seconds:g} s of audio")
    for count, loss in ((1, 0.0), (1, 0.05), (8, 0.0), (8, 0.05)):
        us, receiver = _measure(count, seconds, loss)
        metrics = receiver.metrics()
        concealed = sum(m.concealed_samples for m in metrics)
        recovered = sum(m.recovered for m in metrics)
        print(
            f"  {count} stream(s), {loss:4.0%} loss: {us:7.0f} us CPU per s of audio per stream"
            f" = {us / 1e4:5.2f} % of a core -> {1e6 / us:5.0f} streams per core"
            f"  (recovered {recovered}, concealed {concealed} samples)"
        )


if __name__ == "__main__":
    main()
