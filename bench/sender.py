"""Sender pipeline cost per stream on one core: `python -m bench.sender`.

One stream = Roc's defaults on the wire: 44.1 kHz stereo L16 in 5 ms packets (200 RTP
packets/s) with RS8M 18+10 (+111 repair packets/s) and an RTCP report every 200 ms. The
input arrives in 10 ms blocks, as from a sound card, at 44.1 kHz (no resampling) or at
48 kHz (resampled: libsamplerate sinc_fastest by default, or soxr), stereo or mono.
Everything of the pipeline runs: channel mapping, resampling, L16 encoding, RTP, FEC,
RTCP; no sockets.

"% of a core" = CPU time / audio time x 100 (best of 5 runs of 20 s of audio); the
target is about 0.5 % per stream (>= 64 streams per core for sender and receiver).
"""

from __future__ import annotations

import random
import time

import numpy as np
import numpy.typing as npt

from rocd.net.roc import FecScheme, RateConverter, ResamplerQuality, Sender, SenderConfig

SECONDS = 20
RUNS = 5


def _input(rate: int, channels: int) -> npt.NDArray[np.float32]:
    t = np.arange(rate * SECONDS) / rate
    tone = 0.5 * np.sin(2 * np.pi * 997 * t) + 0.01 * np.random.default_rng(1).standard_normal(
        len(t)
    )
    return np.repeat(tone.astype(np.float32)[:, None], channels, axis=1)


def _run(config: SenderConfig, frames: npt.NDArray[np.float32], rate: int) -> tuple[float, int]:
    """(CPU seconds, datagrams) to send `frames` in 10 ms blocks, RTCP polled as a shell would."""
    sender = Sender(config, input_rate=rate, input_channels=frames.shape[1], rng=random.Random(1))
    block = rate // 100
    wall0 = 1_700_000_000_000_000_000
    datagrams = 0
    t0 = time.process_time()
    for i in range(0, len(frames), block):
        now = i * 1_000_000_000 // rate
        datagrams += len(sender.write(frames[i : i + block], wall0 + now))
        datagrams += len(sender.poll_rtcp(now, wall0 + now))
    datagrams += len(sender.flush())
    return time.process_time() - t0, datagrams


def bench(label: str, config: SenderConfig, rate: int, channels: int) -> None:
    frames = _input(rate, channels)
    _run(config, frames[: rate // 2], rate)  # warm up (zfec tables, LDPC matrices)
    results = [_run(config, frames, rate) for _ in range(RUNS)]
    cpu, datagrams = min(results)
    percent = cpu / SECONDS * 100
    print(
        f"{label:<44} {percent:6.3f} % of a core  {100 / percent:6.0f} streams/core  "
        f"{datagrams / cpu:9,.0f} datagrams/s  ({datagrams / SECONDS:.0f}/s per stream)"
    )


def bench_converters() -> None:
    """The converter alone, 48 -> 44.1 kHz stereo in 10 ms blocks, for comparison."""
    frames = _input(48000, 2)
    for quality in (
        ResamplerQuality.FASTEST,
        ResamplerQuality.MEDIUM,
        ResamplerQuality.SOXR_LQ,
        ResamplerQuality.SOXR_HQ,
        ResamplerQuality.SOXR_VHQ,
    ):
        conv = RateConverter(48000, 44100, 2, quality)
        t0 = time.process_time()
        for i in range(0, len(frames), 480):
            conv.process(frames[i : i + 480])
        percent = (time.process_time() - t0) / SECONDS * 100
        print(f"{'converter alone: ' + quality.value:<44} {percent:6.3f} % of a core")


def main() -> None:
    rs8m = SenderConfig()
    bench("RS8M, 44.1 kHz stereo in", rs8m, 44100, 2)
    bench("RS8M, 48 kHz stereo in (sinc_fastest)", rs8m, 48000, 2)
    bench("RS8M, 48 kHz mono in (sinc_fastest)", rs8m, 48000, 1)
    for quality in (ResamplerQuality.SOXR_LQ, ResamplerQuality.SOXR_HQ):
        config = SenderConfig(resampler=quality)
        bench(f"RS8M, 48 kHz stereo in ({quality.value})", config, 48000, 2)
    medium = SenderConfig(resampler=ResamplerQuality.MEDIUM)
    bench("RS8M, 48 kHz stereo in (sinc_medium)", medium, 48000, 2)
    bench("LDPC, 44.1 kHz stereo in", SenderConfig(fec=FecScheme.LDPC_STAIRCASE), 44100, 2)
    bench("no FEC, 44.1 kHz stereo in", SenderConfig(fec=None), 44100, 2)
    bench_converters()


if __name__ == "__main__":
    main()
