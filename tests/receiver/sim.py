"""A simulated sender, link and consumer around a `Receiver`, on virtual time.

The sender cuts a signal into 221-sample RTP packets (Roc's 5 ms at 44.1 kHz) and, with
FEC, passes them through a `FecWriter`; its clock may run `drift_ppm` fast or slow, which
scales the times its packets leave. Every datagram crosses an `ImpairmentModel`. The
consumer calls `Receiver.read` every 10 ms of its own clock, after delivering every
datagram due by then.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from rocd.net.roc import (
    L16_STEREO,
    Encoding,
    FecScheme,
    FecWriter,
    ImpairmentConfig,
    ImpairmentModel,
    Receiver,
    RtpPacket,
    decode_l16,
    encode_l16,
)

NS = 1_000_000_000
MS = 1_000_000
PACKET = 221
FRAME = 441  # 10 ms at 44.1 kHz
FRAME_NS = 10 * MS


def sine(
    seconds: float,
    freq: float = 997.0,
    *,
    amplitude: float = 0.5,
    rate: int = 44100,
    channels: int = 2,
    phase: float = 0.0,
) -> npt.NDArray[np.float32]:
    """A sine on every channel (channel c scaled by (-0.7)^c), shape (frames, channels)."""
    t = np.arange(round(seconds * rate)) / rate
    x = amplitude * np.sin(2 * np.pi * freq * t + phase)
    return np.stack([x * (-0.7) ** c for c in range(channels)], axis=1).astype(np.float32)


def quantize(signal: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """What a receiver plays from `signal` sent as L16 (Roc's float <-> s16 conversion)."""
    return decode_l16(encode_l16(signal), signal.shape[1])


@dataclass
class SimSender:
    """Packets of one sender; `payloads` are L16 payloads, one per packet, cycled."""

    payloads: list[bytes]
    encoding: Encoding = L16_STEREO
    fec: FecScheme | None = None
    address: tuple[str, int] = ("10.0.0.1", 5000)
    ssrc: int = 0x1234_5678
    seq0: int = 65500  # near the wrap on purpose
    ts0: int = 0xFFFF_0000
    drift_ppm: float = 0.0
    start_ns: int = 0
    n_packets: int | None = None  # None: one pass over the payloads
    n_source: int = 18
    n_repair: int = 10
    samples_per_packet: int = PACKET
    drop_esis: frozenset[int] = field(default_factory=frozenset)
    """FEC: source and repair ESIs of every block that are never sent."""
    drop_packets: frozenset[int] = field(default_factory=frozenset)
    """Indexes of source packets never sent (they still go through FEC encoding)."""
    ts_jumps: dict[int, int] = field(default_factory=dict)
    """From packet index i on, timestamps are shifted by ts_jumps[i] more samples."""

    @classmethod
    def from_signal(cls, signal: npt.NDArray[np.float32], **kwargs: object) -> SimSender:
        n = len(signal) // PACKET
        payloads = [encode_l16(signal[i * PACKET : (i + 1) * PACKET]) for i in range(n)]
        return cls(payloads, **kwargs)  # type: ignore[arg-type]

    def datagrams(self) -> Iterator[tuple[int, bool, bytes]]:
        """(send time ns, is_repair, datagram) in sending order."""
        count = self.n_packets if self.n_packets is not None else len(self.payloads)
        rate = self.encoding.rate * (1 + self.drift_ppm * 1e-6)  # samples per second of ours
        writer = (
            FecWriter(self.fec, n_source=self.n_source, n_repair=self.n_repair, first_sbn=65530)
            if self.fec is not None
            else None
        )
        payloads = self.payloads
        pt = self.encoding.payload_type
        spp = self.samples_per_packet
        shift = 0
        for i in range(count):
            shift += self.ts_jumps.get(i, 0)
            at = self.start_ns + round((i + 1) * spp * NS / rate)
            rtp = RtpPacket(
                pt,
                (self.seq0 + i) & 0xFFFF,
                (self.ts0 + i * spp + shift) & 0xFFFF_FFFF,
                self.ssrc,
                payloads[i % len(payloads)],
            ).serialize()
            if writer is None:
                if i not in self.drop_packets:
                    yield at, False, rtp
                continue
            out = writer.write(rtp)
            k = self.n_source
            if i % k not in self.drop_esis and i not in self.drop_packets:
                yield at, False, out.source
            for j, repair in enumerate(out.repair):
                if k + j not in self.drop_esis:
                    yield at, True, repair


@dataclass(order=True)
class _Arrival:
    at: int
    order: int
    is_repair: bool = field(compare=False)
    datagram: bytes = field(compare=False)
    address: tuple[str, int] = field(compare=False)


def schedule(
    senders: list[SimSender], impairment: ImpairmentConfig | None = None
) -> list[_Arrival]:
    """Every datagram of `senders` as it comes out of one impaired link, in arrival order."""
    model = ImpairmentModel(impairment or ImpairmentConfig())

    def tagged(k: int, sender: SimSender) -> Iterator[tuple[int, int, bool, bytes]]:
        for at, is_repair, datagram in sender.datagrams():
            yield at, k, is_repair, datagram

    streams = [tagged(k, s) for k, s in enumerate(senders)]
    arrivals: list[_Arrival] = []
    order = 0
    for at, k, is_repair, datagram in heapq.merge(*streams):
        for deliver_at, copy in model.process(at, datagram):
            arrivals.append(_Arrival(deliver_at, order, is_repair, copy, senders[k].address))
            order += 1
    arrivals.sort()
    return arrivals


def run(
    receiver: Receiver,
    arrivals: list[_Arrival],
    *,
    reads: int,
    start_ns: int = 0,
    frame: int = FRAME,
    period_ns: int = FRAME_NS,
    keep: bool = True,
    probe: Callable[[int, Receiver], None] | None = None,
) -> npt.NDArray[np.float32]:
    """Read `reads` frames every `period_ns` from `start_ns`, delivering arrivals on time.

    Returns the concatenated output (empty unless `keep`). `probe(k, receiver)` runs after
    read k.
    """
    out: list[npt.NDArray[np.float32]] = []
    i = 0
    n = len(arrivals)
    on_source = receiver.on_source
    on_repair = receiver.on_repair
    for k in range(reads):
        now = start_ns + k * period_ns
        while i < n and arrivals[i].at <= now:
            a = arrivals[i]
            if a.is_repair:
                on_repair(a.datagram, a.address, a.at)
            else:
                on_source(a.datagram, a.address, a.at)
            i += 1
        frames = receiver.read(frame, now)
        if keep:
            out.append(frames)
        if probe is not None:
            probe(k, receiver)
    if not out:
        return np.zeros((0, receiver.config.channels), dtype=np.float32)
    return np.concatenate(out)


def find_offset(output: npt.NDArray[np.float32], expected: npt.NDArray[np.float32]) -> int:
    """The offset at which `expected` plays in `output` (output[offset + j] is expected[j]),
    found from the first 64 non-silent output samples; `expected` must not repeat itself."""
    i0 = int(np.flatnonzero(np.any(output != 0, axis=1))[0])
    probe = output[i0 : i0 + 64]
    for j in np.flatnonzero(np.all(expected == probe[0], axis=1)).tolist():
        if np.array_equal(expected[j : j + len(probe)], probe):
            return i0 - j
    raise AssertionError("the output does not contain the expected signal")


def noisy_sine(seconds: float, *, seed: int = 0, channels: int = 2) -> npt.NDArray[np.float32]:
    """A sine plus a little noise: never repeats, so offsets are unambiguous."""
    rng = np.random.default_rng(seed)
    signal = sine(seconds, channels=channels)
    return (signal + rng.uniform(-0.01, 0.01, signal.shape)).astype(np.float32)


def random_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))
