"""Sender and receiver shells over real UDP on 127.0.0.1, on the real clock."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
import trio

from rocd.net.roc import (
    FecScheme,
    ImpairmentConfig,
    Interface,
    LatencyConfig,
    Receiver,
    ReceiverConfig,
    ReceiverReporter,
    RecvLink,
    RelayRoute,
    Sender,
    SenderConfig,
    SendLink,
    UdpRelay,
    receiver_endpoints,
    sender_endpoints,
)

from .signals import (
    align,
    assert_exact_stream,
    chirp,
    quantise_l16,
    sine,
    sine_snr_db,
    whole_fec_blocks,
)


@dataclass(frozen=True)
class Spec:
    rate: int
    channels: int


class MemorySource:
    def __init__(self, frames: npt.NDArray[np.float32], rate: int = 44100) -> None:
        self.frames, self.spec, self.clocked, self.pos = (
            frames,
            Spec(rate, frames.shape[1]),
            False,
            0,
        )

    async def read(self, n: int) -> npt.NDArray[np.float32]:
        out = self.frames[self.pos : self.pos + n]
        self.pos += len(out)
        return out


class MemorySink:
    def __init__(self, rate: int = 44100, channels: int = 2) -> None:
        self.spec, self.clocked = Spec(rate, channels), False
        self.chunks: list[npt.NDArray[np.float32]] = []

    async def write(self, frames: npt.NDArray[np.float32]) -> None:
        self.chunks.append(frames.copy())

    @property
    def frames(self) -> npt.NDArray[np.float32]:
        return np.concatenate(self.chunks) if self.chunks else np.zeros((0, 2), np.float32)


async def stream(
    audio: npt.NDArray[np.float32],
    *,
    fec: FecScheme = FecScheme.RS8M,
    drift_compensation: bool = False,
    impairment: ImpairmentConfig | None = None,
    target_ms: int = 100,
) -> tuple[MemorySink, RecvLink, SendLink]:
    proto = {FecScheme.RS8M: "rs8m", FecScheme.LDPC_STAIRCASE: "ldpc"}[fec]
    rx_endpoints = receiver_endpoints(
        f"rtp+{proto}://127.0.0.1:0", f"{proto}://127.0.0.1:0", "rtcp://127.0.0.1:0"
    )
    receiver = Receiver(
        ReceiverConfig(
            fec=fec,
            latency=LatencyConfig(target_ns=target_ms * 1_000_000),
            drift_compensation=drift_compensation,
        )
    )
    recv = RecvLink(receiver, rx_endpoints, reporter=ReceiverReporter(rng=random.Random(2)))
    sink = MemorySink()
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(recv.run, sink)
        ports = [bound[i][1] for i in (Interface.SOURCE, Interface.REPAIR, Interface.CONTROL)]
        if impairment is not None:
            relay = UdpRelay(
                [RelayRoute(listen=("127.0.0.1", 0), target=("127.0.0.1", p)) for p in ports],
                forward=impairment,
            )
            relayed = await nursery.start(relay.run)
            ports = [a[1] for a in relayed]
        tx_endpoints = sender_endpoints(
            f"rtp+{proto}://127.0.0.1:{ports[0]}",
            f"{proto}://127.0.0.1:{ports[1]}",
            f"rtcp://127.0.0.1:{ports[2]}",
        )
        sender = Sender(
            SenderConfig(fec=fec), input_rate=44100, input_channels=2, rng=random.Random(1)
        )
        send = SendLink(sender, tx_endpoints)
        await nursery.start(send.run, MemorySource(audio))
        await send.done.wait()
        await recv.all_ended.wait()  # the watchdog ends the session once the sender is gone
        nursery.cancel_scope.cancel()
    return sink, recv, send


@pytest.mark.parametrize("fec", [FecScheme.RS8M, FecScheme.LDPC_STAIRCASE])
async def test_audio_arrives_bit_exact_after_the_latency(fec: FecScheme) -> None:
    audio = chirp(2.0)
    with trio.fail_after(15):
        sink, recv, send = await stream(audio, fec=fec)
    sent = audio[: (len(audio) // 221) * 221]
    # About the target latency (100 ms) of silence first, then the audio, exactly.
    assert_exact_stream(sent, sink.frames, expected_delay_s=(0.09, 0.15))
    # RTCP went both ways: the receiver reported, the sender heard it and has an RTT.
    assert recv.reporter is not None
    assert recv.reporter.reports_sent > 0
    feedback = send.sender.metrics().receivers
    assert len(feedback) == 1
    assert feedback[0].rtt_ms is not None
    assert 0 <= feedback[0].rtt_ms < 50


async def test_drift_compensation_on_keeps_the_audio_clean() -> None:
    # The resampler follows the latency tuner (its ratio moves by a few hundred ppm while
    # the queue settles), so the output is the input slightly re-timed: judge it by what
    # the resampler adds to a pure tone, not sample by sample.
    audio = sine(3.0, 1000.0)
    with trio.fail_after(15):
        sink, _, _ = await stream(audio, drift_compensation=True)
    out = sink.frames
    start = align(audio, out)
    steady = out[start + 44100 : start + 2 * 44100, 0]  # a second inside the tone
    assert sine_snr_db(quantise_l16(audio)[44100 : 2 * 44100, 0], 1000.0) > 90  # reference
    assert sine_snr_db(steady, 1000.0) >= 60


async def test_five_percent_loss_is_repaired_by_rs8m() -> None:
    audio = chirp(3.0)
    with trio.fail_after(20):
        sink, _, _ = await stream(audio, impairment=ImpairmentConfig(seed=5, loss=0.05))
    sent = whole_fec_blocks(audio)
    assert_exact_stream(sent, sink.frames, expected_delay_s=(0.09, 0.15))
