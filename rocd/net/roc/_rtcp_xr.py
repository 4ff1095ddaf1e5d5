"""RTCP Extended Reports (XR, PT 207; RFC 3611) and the report blocks Roc exchanges.

Roc's sender sends DLRR; its receiver sends RRTR, Measurement Info (RFC 6776), Delay
Metrics (RFC 6843) and the Roc-specific Queue Metrics (BT 220, NIQ latency/stalling),
which feeds roc-send's latency tuning.

A block of unknown type, or of a known type whose length is not its defined size (Roc
itself requires exactly 16 bytes for BT 220), is kept as `RawXrBlock`, so one odd block
neither rejects the whole datagram nor is lost on re-serialisation. Time fields are the
raw wire values (NTP32 = 16.16 s, NTP64 = 32.32 s); `rocd.net.roc._ntp` converts them.
"""

from __future__ import annotations

import enum
import struct
from typing import ClassVar, TypeVar

import msgspec

from ._errors import MalformedPacket
from ._ntp import NTP32_UNAVAILABLE, NTP64_UNAVAILABLE, ntp32_to_metric, ntp64_to_metric
from ._rtcp import PT_XR, pad_to_word, rtcp_header

BT_RRTR = 4
BT_DLRR = 5
BT_MEASUREMENT_INFO = 14
BT_DELAY_METRICS = 16
BT_QUEUE_METRICS = 220  # Roc-specific

_U32 = struct.Struct(">I")
_BLOCK_HEADER = struct.Struct(">BBH")
_RRTR = struct.Struct(">Q")
_DLRR_SUB = struct.Struct(">III")
_MEASUREMENT_INFO = struct.Struct(">IHHIIIQ")
_DELAY_METRICS = struct.Struct(">IIIIQ")
_QUEUE_METRICS = struct.Struct(">III")


class MetricInterval(enum.IntEnum):
    """The I flag (top 2 bits of the type-specific byte) of metric blocks (RFC 6843 §3.2)."""

    RESERVED = 0
    SAMPLED = 1  # a value sampled at report time (Roc's choice)
    INTERVAL = 2
    CUMULATIVE = 3


def _block(block_type: int, type_specific: int, body: bytes) -> bytes:
    words, rest = divmod(len(body), 4)
    if rest or words > 0xFFFF:
        raise ValueError(f"XR block body of {len(body)} bytes is not 0..65535 whole words")
    return _BLOCK_HEADER.pack(block_type, type_specific, words) + body


def _pack(s: struct.Struct, *fields: int) -> bytes:
    try:
        return s.pack(*fields)
    except struct.error as exc:
        raise ValueError(f"XR field out of range: {exc}") from None


class Rrtr(msgspec.Struct, frozen=True):
    """Receiver Reference Time (BT 4): the receiver's NTP64 wall clock when sending."""

    BLOCK_TYPE: ClassVar[int] = BT_RRTR

    ntp_timestamp: int

    def serialize(self) -> bytes:
        return _block(BT_RRTR, 0, _pack(_RRTR, self.ntp_timestamp))


class DlrrSubBlock(msgspec.Struct, frozen=True):
    """One receiver in a DLRR: its SSRC, the NTP32 of its last RRTR and the delay since."""

    ssrc: int
    last_rr: int  # NTP32 (middle bits of the RRTR timestamp)
    delay: int  # NTP32 duration, 16.16 s


class Dlrr(msgspec.Struct, frozen=True):
    """Delay since Last Receiver Report (BT 5): lets receivers measure their RTT."""

    BLOCK_TYPE: ClassVar[int] = BT_DLRR

    subblocks: tuple[DlrrSubBlock, ...] = ()

    def serialize(self) -> bytes:
        body = b"".join(_pack(_DLRR_SUB, s.ssrc, s.last_rr, s.delay) for s in self.subblocks)
        return _block(BT_DLRR, 0, body)


class MeasurementInfo(msgspec.Struct, frozen=True):
    """Measurement Information (BT 14, RFC 6776): the interval the metrics describe."""

    BLOCK_TYPE: ClassVar[int] = BT_MEASUREMENT_INFO

    ssrc: int  # of the source
    first_seq: int  # 16 bits: first sequence number received from the source
    interval_first_seq: int  # extended
    interval_last_seq: int  # extended
    interval_duration: int  # NTP32
    cumulative_duration: int  # NTP64 duration

    def serialize(self) -> bytes:
        body = _pack(
            _MEASUREMENT_INFO, self.ssrc, 0, self.first_seq, self.interval_first_seq,
            self.interval_last_seq, self.interval_duration, self.cumulative_duration,
        )  # fmt: skip
        return _block(BT_MEASUREMENT_INFO, 0, body)


class DelayMetrics(msgspec.Struct, frozen=True):
    """Delay Metrics (BT 16, RFC 6843): RTT and end-system delay, unavailable = all ones.

    Roc puts its end-to-end latency (capture on the sender -> playback here) in
    `end_system_delay`.
    """

    BLOCK_TYPE: ClassVar[int] = BT_DELAY_METRICS

    ssrc: int  # of the source
    mean_rtt: int = NTP32_UNAVAILABLE  # NTP32
    min_rtt: int = NTP32_UNAVAILABLE  # NTP32
    max_rtt: int = NTP32_UNAVAILABLE  # NTP32
    end_system_delay: int = NTP64_UNAVAILABLE  # NTP64 duration
    interval: MetricInterval = MetricInterval.SAMPLED

    @property
    def end_system_delay_ns(self) -> int | None:
        """`end_system_delay` in ns, None when unavailable."""
        return ntp64_to_metric(self.end_system_delay)

    @property
    def mean_rtt_ns(self) -> int | None:
        """`mean_rtt` in ns, None when unavailable."""
        return ntp32_to_metric(self.mean_rtt)

    def serialize(self) -> bytes:
        body = _pack(
            _DELAY_METRICS, self.ssrc, self.mean_rtt, self.min_rtt, self.max_rtt,
            self.end_system_delay,
        )  # fmt: skip
        return _block(BT_DELAY_METRICS, (self.interval & 3) << 6, body)


class QueueMetrics(msgspec.Struct, frozen=True):
    """Roc's Queue Metrics (BT 220, 16 bytes): the receiver's network incoming queue.

    `niq_latency` is the audio queued in the receiver's packet pipeline, `niq_stalling` the
    time since the last packet arrived; both NTP32 durations, all ones when unavailable.
    """

    BLOCK_TYPE: ClassVar[int] = BT_QUEUE_METRICS

    ssrc: int  # of the source
    niq_latency: int = NTP32_UNAVAILABLE
    niq_stalling: int = NTP32_UNAVAILABLE
    interval: MetricInterval = MetricInterval.SAMPLED

    @property
    def niq_latency_ns(self) -> int | None:
        """`niq_latency` in ns, None when unavailable."""
        return ntp32_to_metric(self.niq_latency)

    @property
    def niq_stalling_ns(self) -> int | None:
        """`niq_stalling` in ns, None when unavailable."""
        return ntp32_to_metric(self.niq_stalling)

    def serialize(self) -> bytes:
        body = _pack(_QUEUE_METRICS, self.ssrc, self.niq_latency, self.niq_stalling)
        return _block(BT_QUEUE_METRICS, (self.interval & 3) << 6, body)


class RawXrBlock(msgspec.Struct, frozen=True):
    """An XR block not decoded here, kept byte for byte (body zero-filled to whole words)."""

    block_type: int
    type_specific: int
    body: bytes = b""

    def serialize(self) -> bytes:
        if not 0 <= self.block_type <= 0xFF or not 0 <= self.type_specific <= 0xFF:
            raise ValueError("XR block type and type-specific byte must fit 8 bits")
        return _block(self.block_type, self.type_specific, pad_to_word(self.body))


XrBlock = Rrtr | Dlrr | MeasurementInfo | DelayMetrics | QueueMetrics | RawXrBlock

_B = TypeVar("_B", bound=XrBlock)


def _parse_block(block_type: int, type_specific: int, body: bytes) -> XrBlock:
    """The block of `block_type` whose body (after its 4-byte header) is `body`."""
    size = len(body)
    if block_type == BT_RRTR and size == _RRTR.size:
        return Rrtr(*_RRTR.unpack(body))
    if block_type == BT_DLRR and size % _DLRR_SUB.size == 0:
        return Dlrr(tuple(DlrrSubBlock(*f) for f in _DLRR_SUB.iter_unpack(body)))
    if block_type == BT_MEASUREMENT_INFO and size == _MEASUREMENT_INFO.size:
        ssrc, _reserved, first, i_first, i_last, i_dur, c_dur = _MEASUREMENT_INFO.unpack(body)
        return MeasurementInfo(ssrc, first, i_first, i_last, i_dur, c_dur)
    if block_type == BT_DELAY_METRICS and size == _DELAY_METRICS.size:
        ssrc, mean, low, high, esd = _DELAY_METRICS.unpack(body)
        return DelayMetrics(ssrc, mean, low, high, esd, MetricInterval(type_specific >> 6))
    if block_type == BT_QUEUE_METRICS and size == _QUEUE_METRICS.size:
        ssrc, latency, stalling = _QUEUE_METRICS.unpack(body)
        return QueueMetrics(ssrc, latency, stalling, MetricInterval(type_specific >> 6))
    return RawXrBlock(block_type, type_specific, body)


class ExtendedReport(msgspec.Struct, frozen=True):
    """XR, PT 207: report blocks from the participant `ssrc`."""

    ssrc: int
    blocks: tuple[XrBlock, ...] = ()

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> ExtendedReport:
        """`count` is reserved in XR and ignored."""
        n = len(body)
        if n < 4:
            raise MalformedPacket(f"XR body of {n} bytes is shorter than 4")
        (ssrc,) = _U32.unpack_from(body)
        off = 4
        blocks = []
        while off < n:
            if off + 4 > n:
                raise MalformedPacket(f"{n - off} bytes after the last XR block")
            block_type, type_specific, words = _BLOCK_HEADER.unpack_from(body, off)
            end = off + 4 + 4 * words
            if end > n:
                raise MalformedPacket(f"XR block of {4 + 4 * words} bytes overruns the packet")
            blocks.append(_parse_block(block_type, type_specific, body[off + 4 : end]))
            off = end
        return cls(ssrc, tuple(blocks))

    def serialize(self) -> bytes:
        body = _pack(_U32, self.ssrc) + b"".join(b.serialize() for b in self.blocks)
        return rtcp_header(PT_XR, 0, len(body)) + body

    def find(self, kind: type[_B]) -> list[_B]:
        """The blocks of one class, in packet order."""
        return [b for b in self.blocks if isinstance(b, kind)]
