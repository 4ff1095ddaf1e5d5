"""SendLink on real UDP: paced in real time, one socket for everything, exact payloads."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
import trio

from rocd.net.roc import (
    FecScheme,
    Interface,
    RtpPacket,
    Sender,
    SenderConfig,
    SendLink,
    Ticker,
    UdpEndpoint,
    _send_native,
    decode_l16_s16,
    parse_rtcp,
    parse_source_datagram,
    sender_endpoints,
)


@dataclass(frozen=True)
class Spec:
    rate: int
    channels: int


class ArraySource:
    """Frames from memory, unclocked like a file."""

    def __init__(self, frames: npt.NDArray[np.float32], rate: int) -> None:
        self.frames = frames
        self.spec = Spec(rate, frames.shape[1])
        self.clocked = False
        self.pos = 0

    async def read(self, n: int) -> npt.NDArray[np.float32]:
        out = self.frames[self.pos : self.pos + n]
        self.pos += len(out)
        return out


def tone(seconds: float, rate: int = 44100) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([left, -0.7 * left], axis=1).astype(np.float32)


async def collect(udp: UdpEndpoint, into: list[tuple[float, bytes, tuple[str, int]]]) -> None:
    while True:
        for data, src in await udp.receive():
            into.append((trio.current_time(), data, src))


@pytest.mark.parametrize(
    ("fec", "send_thread", "native"),
    [
        (FecScheme.RS8M, False, False),
        (FecScheme.LDPC_STAIRCASE, False, False),
        (FecScheme.RS8M, True, False),
        (FecScheme.RS8M, True, True),
        (FecScheme.LDPC_STAIRCASE, True, True),
    ],
)
async def test_a_second_of_audio_arrives_paced_exact_and_from_one_socket(
    fec: FecScheme, send_thread: bool, native: bool
) -> None:
    assert not native or _send_native.available(), "scripts/setup.sh builds the C send loop"
    proto = "rs8m" if fec is FecScheme.RS8M else "ldpc"
    with trio.fail_after(10):
        rx = {name: await UdpEndpoint.bind(("127.0.0.1", 0)) for name in ("src", "rpr", "ctl")}
        got: dict[str, list[tuple[float, bytes, tuple[str, int]]]] = {k: [] for k in rx}
        endpoints = sender_endpoints(
            f"rtp+{proto}://127.0.0.1:{rx['src'].local[1]}",
            f"{proto}://127.0.0.1:{rx['rpr'].local[1]}",
            f"rtcp://127.0.0.1:{rx['ctl'].local[1]}",
        )
        audio = tone(1.0)
        sender = Sender(
            SenderConfig(fec=fec), input_rate=44100, input_channels=2, rng=random.Random(1)
        )
        link = SendLink(sender, endpoints, send_thread=send_thread, native_send=native)
        async with trio.open_nursery() as nursery:
            for name, udp in rx.items():
                nursery.start_soon(collect, udp, got[name])
            t0 = trio.current_time()
            local = await nursery.start(link.run, ArraySource(audio, 44100))
            await link.done.wait()
            elapsed = trio.current_time() - t0
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        for udp in rx.values():
            udp.close()
    n_packets = len(audio) // 221
    assert len(got["src"]) == n_packets
    assert len(got["rpr"]) == (n_packets // 18) * 10
    senders = {src for k in got for _, _, src in got[k]}
    assert senders == {("127.0.0.1", local[1])}  # one socket for all three interfaces
    # Real-time pacing: a second of audio takes about a second, spread evenly.
    assert 0.95 < elapsed < 1.2
    times = [t for t, _, _ in got["src"]]
    assert times[-1] - times[0] == pytest.approx(1.0, abs=0.1)
    # In bursts of one 10 ms chunk (two or three packets), not of the 100 ms encoded ahead.
    per_10ms = np.bincount(((np.array(times) - times[0]) / 0.01).astype(int))
    assert per_10ms.max() <= 4, per_10ms
    # Payloads are the input, quantised to L16.
    payload = b"".join(
        RtpPacket.parse(parse_source_datagram(fec, d)[0]).payload for _, d, _ in got["src"]
    )
    decoded = decode_l16_s16(payload, 2)
    expected = np.clip(np.trunc(audio[: n_packets * 221] * 32768), -32768, 32767)
    assert np.array_equal(decoded, expected.astype(np.int16))
    # RTCP sender reports reached the control endpoint.
    assert got["ctl"]
    kinds = {type(p).__name__ for _, d, _ in got["ctl"] for p in parse_rtcp(d)}
    assert {"SenderReport", "Sdes"} <= kinds


@pytest.mark.parametrize("native", [False, True])
async def test_a_retarget_moves_what_the_send_thread_has_queued_too(native: bool) -> None:
    assert not native or _send_native.available(), "scripts/setup.sh builds the C send loop"
    with trio.fail_after(10):
        rx = {
            (side, name): await UdpEndpoint.bind(("127.0.0.1", 0))
            for side in "ab"
            for name in ("src", "rpr", "ctl")
        }
        got: dict[tuple[str, str], list[tuple[float, bytes, tuple[str, int]]]] = {k: [] for k in rx}

        def uri(side: str, name: str, scheme: str) -> str:
            return f"{scheme}://127.0.0.1:{rx[side, name].local[1]}"

        endpoints = sender_endpoints(
            uri("a", "src", "rtp+rs8m"), uri("a", "rpr", "rs8m"), uri("a", "ctl", "rtcp")
        )
        b_targets = {
            interface: ("127.0.0.1", rx["b", name].local[1])
            for interface, name in zip(Interface, ("src", "rpr", "ctl"), strict=True)
        }
        audio = tone(0.8)
        sender = Sender(SenderConfig(), input_rate=44100, input_channels=2, rng=random.Random(1))
        link = SendLink(sender, endpoints, send_thread=True, native_send=native)
        async with trio.open_nursery() as nursery:
            for key, udp in rx.items():
                nursery.start_soon(collect, udp, got[key])
            await nursery.start(link.run, ArraySource(audio, 44100))
            await trio.sleep(0.3)  # the send thread holds ~100 ms queued ahead
            link.retarget(b_targets)
            moved = trio.current_time()
            await link.done.wait()
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        for udp in rx.values():
            udp.close()
    n_packets = len(audio) // 221
    a, b = got["a", "src"], got["b", "src"]
    assert len(a) + len(b) == n_packets
    assert a
    assert b
    # Within a burst of the move (one in flight), every datagram goes to the new path.
    assert max(t for t, _, _ in a) < moved + 0.015
    assert min(t for t, _, _ in b) >= moved
    seqs = [RtpPacket.parse(parse_source_datagram(FecScheme.RS8M, d)[0]).seq for _, d, _ in a + b]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(n_packets)]
    assert len(got["a", "rpr"]) + len(got["b", "rpr"]) == (n_packets // 18) * 10
    assert got["b", "ctl"]  # the reports moved too


@pytest.mark.parametrize("native", [False, True])
async def test_with_a_slow_ticker_the_first_packets_leave_before_its_first_tick(
    native: bool,
) -> None:
    """`rocd send` wakes Trio every 200 ms: its stream must not wait for the first wake-up
    to start (here a 2 s period makes the difference plain), and stays on the beat after."""
    assert not native or _send_native.available(), "scripts/setup.sh builds the C send loop"
    with trio.fail_after(10):
        rx = await UdpEndpoint.bind(("127.0.0.1", 0))
        got: list[tuple[float, bytes, tuple[str, int]]] = []
        endpoints = sender_endpoints(f"rtp://127.0.0.1:{rx.local[1]}")
        sender = Sender(
            SenderConfig(fec=None), input_rate=44100, input_channels=2, rng=random.Random(1)
        )
        link = SendLink(sender, endpoints, send_thread=True, native_send=native)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect, rx, got)
            ticker = await nursery.start(Ticker(2_000_000_000, os_timer=True).run)
            link.ticker = ticker
            t0 = trio.current_time()
            await nursery.start(link.run, ArraySource(tone(3.0), 44100))
            await link.done.wait()
            nursery.cancel_scope.cancel()
        rx.close()
    first = got[0][0] - t0
    assert first < 0.5, f"first packet {first:.3f} s after the start"
    times = np.array([t for t, _, _ in got])
    assert len(times) == len(tone(3.0)) // 221
    assert times[-1] - times[0] == pytest.approx(3.0, abs=0.1)  # paced, not a burst
