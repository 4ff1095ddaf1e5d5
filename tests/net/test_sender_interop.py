"""Our sender against roc-send 0.4.0: the same input gives the same datagrams, byte for byte.

The captures (tests/vectors) hold roc-send's traffic for sig2s_stereo.wav (2 s, 88200
frames). Pinning the random start values (SSRC, seq, timestamp, SBN) to the captured
ones, every source datagram and every repair datagram comes back identical and in the
same order. roc-send drops the last 21 frames (88200 = 399 x 221 + 21) and sends no
repair for the unfinished 23rd block (3 packets): so do we by default.
"""

import random
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from rocd.net.roc import (
    Datagram,
    FecScheme,
    Interface,
    RtpPacket,
    Sender,
    SenderConfig,
    SenderIdentity,
    parse_source_datagram,
)
from tests.pcap import REPAIR_PORT, SOURCE_PORT, VECTORS, by_port, read_udp

CAPTURES = [
    ("rs8m_default.pcap", FecScheme.RS8M),
    ("ldpc_default.pcap", FecScheme.LDPC_STAIRCASE),
]


def _wav() -> npt.NDArray[np.float32]:
    frames, rate = soundfile.read(VECTORS / "sig2s_stereo.wav", dtype="float32")
    assert rate == 44100
    assert frames.shape == (88200, 2)
    return np.asarray(frames, dtype=np.float32)


def _sender(path: Path, scheme: FecScheme, *, pad_last: bool = False) -> Sender:
    rtp, pid = parse_source_datagram(scheme, by_port(path, SOURCE_PORT)[0])
    first = RtpPacket.parse(rtp)
    identity = SenderIdentity(
        ssrc=first.ssrc,
        first_seq=first.seq,
        first_timestamp=first.timestamp,
        first_sbn=pid.sbn,
        cname="a6396fb5-5555-4749-ae20-c31acc9a1690",
    )
    config = SenderConfig(
        fec=scheme, fec_source_packets=pid.k, fec_repair_packets=10, pad_last_packet=pad_last
    )
    return Sender(
        config, input_rate=44100, input_channels=2, rng=random.Random(1), identity=identity
    )


def _run(sender: Sender, frames: npt.NDArray[np.float32], chunks: list[int]) -> list[Datagram]:
    out: list[Datagram] = []
    pos = 0
    for size in chunks:
        out += sender.write(frames[pos : pos + size], 1_700_000_000_000_000_000 + pos)
        pos += size
    assert pos == len(frames)
    return out + sender.flush()


def _odd_chunks(total: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    sizes = []
    while total:
        size = min(total, rng.choice([1, 7, 100, 220, 221, 222, 441, 997, 4096]))
        sizes.append(size)
        total -= size
    return sizes


@pytest.mark.parametrize(("name", "scheme"), CAPTURES)
@pytest.mark.parametrize("chunking", ["10ms", "odd"])
def test_same_datagrams_as_roc_send(name: str, scheme: FecScheme, chunking: str) -> None:
    path = VECTORS / name
    frames = _wav()
    chunks = [441] * 200 if chunking == "10ms" else _odd_chunks(len(frames), 7)
    out = _run(_sender(path, scheme), frames, chunks)
    captured = [d for d in read_udp(path) if d.dst[1] in (SOURCE_PORT, REPAIR_PORT)]
    assert len(captured) == 399 + 220
    # Same datagrams, same interfaces, same order.
    assert [d.payload for d in out] == [d.payload for d in captured]
    expected = [Interface.SOURCE if d.dst[1] == SOURCE_PORT else Interface.REPAIR for d in captured]
    assert [d.interface for d in out] == expected


@pytest.mark.parametrize(("name", "scheme"), CAPTURES)
def test_padding_the_partial_end_adds_one_packet(name: str, scheme: FecScheme) -> None:
    path = VECTORS / name
    out = _run(_sender(path, scheme, pad_last=True), _wav(), [441] * 200)
    captured = [d.payload for d in read_udp(path) if d.dst[1] in (SOURCE_PORT, REPAIR_PORT)]
    assert [d.payload for d in out[:-1]] == captured
    last = out[-1]
    assert last.interface is Interface.SOURCE
    assert len(last.payload) == 902  # the constant datagram size
    rtp, pid = parse_source_datagram(scheme, last.payload)
    packet = RtpPacket.parse(rtp)
    previous = RtpPacket.parse(parse_source_datagram(scheme, captured[-1])[0])
    assert packet.seq == (previous.seq + 1) & 0xFFFF
    assert packet.timestamp == (previous.timestamp + 221) & 0xFFFF_FFFF
    assert pid.esi == 3  # the 4th packet of the unfinished block, which gets no repair
    # 21 frames left: 800 missing bytes do not fit RTP padding, so silence fills the packet.
    assert packet.padding == 0
    tail = _wav()[-21:]
    expected = np.trunc(tail * 32768).astype(">i2").tobytes()
    assert packet.payload == expected + bytes(800)
