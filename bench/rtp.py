"""RTP / L16 / RTCP codec throughput on one core: `python -m bench.rtp`.

Packets are Roc's defaults: 896-byte RTP packets (12-byte header + 221 stereo L16 frames),
the 176-byte roc-recv report (RR + XR with four blocks + SDES) and the 100-byte roc-send
report (SR + XR DLRR + SDES).
"""

from __future__ import annotations

import struct
import timeit
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import numpy as np

from rocd.net.roc import (
    Dlrr,
    DlrrSubBlock,
    ExtendedReport,
    RtcpPacket,
    RtpPacket,
    Sdes,
    SdesChunk,
    SenderReport,
    decode_l16,
    decode_l16_s16,
    encode_l16,
    encode_l16_s16,
    parse_rtcp,
    serialize_rtcp,
)

ROC_RECV_REPORT = bytes.fromhex(
    "81c90007da55b4ef80e5f0d80000000000007381000000009d3935b10000199b"
    "80cf0017da55b4ef04000002eeb09d394fef36cd0e00000780e5f0d80000736d"
    "00007381000073810000000000000000000000001040000680e5f0d8ffffffff"
    "ffffffffffffffffffffffffffffffffdc40000380e5f0d8ffffffffffffffff"
    "81ca000bda55b4ef012433303365646338362d333533382d346634622d393061"
    "372d3063333532633132353361660000"
)
ROC_SEND_REPORT: list[RtcpPacket] = [
    SenderReport(0x80E5F0D8, 0xEEB09D3968E16238, 0xC28A2B4B, 40, 35360),
    ExtendedReport(0x80E5F0D8, (Dlrr((DlrrSubBlock(0xDA55B4EF, 0x9D394FEF, 0x170A),)),)),
    Sdes((SdesChunk.with_cname(0x80E5F0D8, "60f73645-6d92-440e-b651-0656b07ff4f9"),)),
]


def rate(fn: Callable[[], object], number: int) -> float:
    """Calls per second, best of 5 runs of `number` calls."""
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return number / best


def report(name: str, per_second: float) -> None:
    print(f"{name:<44} {per_second:>12,.0f} /s  {1e6 / per_second:8.2f} us")


class _StructPacket(msgspec.Struct, frozen=True, gc=False):
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False


@dataclass(slots=True)
class _SlotsPacket:
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False


@dataclass(slots=True, frozen=True)
class _FrozenPacket:
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False


_Packet = _StructPacket | _SlotsPacket | _FrozenPacket


def compare_representations(data: bytes) -> None:
    """Parse + build of the bare header with each candidate type (why RtpPacket is a Struct)."""
    header = struct.Struct(">BBHII")
    print("RTP packet type candidates, parse + build")
    kinds: list[type[_Packet]] = [_StructPacket, _SlotsPacket, _FrozenPacket]
    for kind in kinds:

        def round_trip(kind: type[_Packet] = kind) -> bytes:
            b0, b1, seq, ts, ssrc = header.unpack_from(data)
            p = kind(b1 & 0x7F, seq, ts, ssrc, data[12:], b1 > 0x7F)
            return header.pack(b0, p.payload_type, p.seq, p.timestamp, p.ssrc) + p.payload

        report(f"  {kind.__name__.lstrip('_')}", rate(round_trip, 200_000))


def main() -> None:
    rng = np.random.default_rng(1)
    frames = rng.uniform(-1.0, 1.0, size=(221, 2)).astype(np.float32)
    frames_s16 = (frames * 32767).astype(np.int16)
    payload = encode_l16(frames)
    packet = RtpPacket(payload_type=10, seq=1, timestamp=2, ssrc=3, payload=payload)
    data = packet.serialize()
    padded = RtpPacket(10, 1, 2, 3, payload[:-8], padding=8)
    padded_data = padded.serialize()
    assert len(data) == len(padded_data) == 896
    assert len(serialize_rtcp(ROC_SEND_REPORT)) == 100

    print(f"RTP, {len(data)}-byte packets")
    report("  parse", rate(lambda: RtpPacket.parse(data), 200_000))
    report("  build (serialize)", rate(packet.serialize, 200_000))
    report("  parse + build", rate(lambda: RtpPacket.parse(data).serialize(), 200_000))
    report("  parse, padded", rate(lambda: RtpPacket.parse(padded_data), 200_000))
    report("  build, padded", rate(padded.serialize, 200_000))
    report(
        "  construct + build (a sender's packet)",
        rate(lambda: RtpPacket(10, 1, 2, 3, payload).serialize(), 200_000),
    )
    print("L16, 221 stereo frames per packet")
    report("  decode -> float32", rate(lambda: decode_l16(payload, 2), 50_000))
    report("  decode -> int16", rate(lambda: decode_l16_s16(payload, 2), 50_000))
    report("  encode <- float32", rate(lambda: encode_l16(frames), 50_000))
    report("  encode <- int16", rate(lambda: encode_l16_s16(frames_s16), 50_000))
    print("RTCP compound")
    recv_packets = parse_rtcp(ROC_RECV_REPORT)
    report("  parse roc-recv report (176 B)", rate(lambda: parse_rtcp(ROC_RECV_REPORT), 20_000))
    report("  build roc-recv report (176 B)", rate(lambda: serialize_rtcp(recv_packets), 20_000))
    send_data = serialize_rtcp(ROC_SEND_REPORT)
    report("  parse roc-send report (100 B)", rate(lambda: parse_rtcp(send_data), 20_000))
    report("  build roc-send report (100 B)", rate(lambda: serialize_rtcp(ROC_SEND_REPORT), 20_000))
    compare_representations(data)


if __name__ == "__main__":
    main()
