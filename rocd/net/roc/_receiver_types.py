"""The receiver's settings, metrics and events (msgspec Structs: they go to the API as is)."""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from ._adaptive_latency import AdaptiveLatencyConfig
from ._fecframe import FecScheme
from ._latency_tuner import LatencyConfig

__all__ = [
    "Address",
    "EndReason",
    "EndedSession",
    "FecStats",
    "ReceiverConfig",
    "ReceiverCounters",
    "SessionMetrics",
    "SessionState",
]

Address = tuple[Any, ...]
"""A UDP source address as the socket layer gives it: (host, port) or IPv6's 4-tuple."""

_MS = 1_000_000


class ReceiverConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of a receiver and its sessions; times in ns. Defaults are roc-recv's."""

    rate: int = 44100
    """Output sample rate (Hz)."""
    channels: int = 2
    """Output channels."""
    fec: FecScheme | None = None
    """FEC scheme of the endpoint (None: bare RTP, no repair packets)."""
    latency: LatencyConfig = msgspec.field(default_factory=LatencyConfig)
    """Target latency, tolerance and tuning profile of every session."""
    adaptive: AdaptiveLatencyConfig | None = None
    """Adaptive target latency: each session starts at `adaptive.start_ns` (instead of
    `latency.target_ns`) and follows the jitter of its link within the bounds."""
    drift_compensation: bool = True
    """Resample to keep the latency at its target. Off: no resampler at equal rates (the
    output is sample-exact), a fixed ratio otherwise."""
    no_playback_timeout_ns: int | None = None
    """None: 4/3 of the target latency (Roc); 0: never."""
    choppy_playback_timeout_ns: int = 2_000 * _MS
    """0: never."""
    fade_ns: int = 3 * _MS
    """Length of the fade-out into a hole and of the fade-in after it."""
    max_sessions: int = 64
    """Source packets of new senders beyond this are dropped (and counted)."""

    def __post_init__(self) -> None:
        owner = "ReceiverConfig"
        if self.rate <= 0 or self.channels < 1:
            raise ValueError(f"{owner}: rate must be > 0 and channels >= 1")
        if self.no_playback_timeout_ns is not None and self.no_playback_timeout_ns < 0:
            raise ValueError(f"{owner}.no_playback_timeout_ns must be >= 0")
        if self.choppy_playback_timeout_ns < 0:
            raise ValueError(f"{owner}.choppy_playback_timeout_ns must be >= 0")
        if self.fade_ns <= 0:
            raise ValueError(f"{owner}.fade_ns must be > 0")
        if self.max_sessions < 1:
            raise ValueError(f"{owner}.max_sessions must be >= 1")

    @property
    def session_latency(self) -> LatencyConfig:
        """The latency settings a session starts with."""
        if self.adaptive is None:
            return self.latency
        return msgspec.structs.replace(self.latency, target_ns=self.adaptive.start_ns)

    @property
    def effective_no_playback_timeout_ns(self) -> int:
        if self.no_playback_timeout_ns is not None:
            return self.no_playback_timeout_ns
        return self.session_latency.target_ns * 4 // 3


class SessionState(enum.StrEnum):
    BUFFERING = "buffering"
    """Waiting for the jitter buffer to hold the target latency."""
    PLAYING = "playing"


class EndReason(enum.StrEnum):
    NO_PLAYBACK = "no_playback"
    """The watchdog saw only blank frames for the no-playback timeout (sender gone)."""
    CHOPPY_PLAYBACK = "choppy_playback"
    """Packets kept coming too late for the choppy-playback timeout."""
    LATENCY_OUT_OF_BOUNDS = "latency_out_of_bounds"
    """The queue left [target - tolerance, target + tolerance]."""
    BYE = "bye"
    """The sender said goodbye (RTCP BYE)."""
    INACTIVE = "inactive"
    """The control protocol timed out."""
    CLOSED = "closed"
    """The receiver was closed."""


class FecStats(msgspec.Struct, kw_only=True):
    """A session's FEC reader: what it took, refused, decoded and holds. Counts are
    packets unless said otherwise; each counter maps to a Prometheus counter
    `rocd_receiver_fec_<name>_total`, the geometry and window to gauges."""

    source_received: int = 0
    repair_received: int = 0
    recovered: int = 0
    """Source packets rebuilt (some may arrive after all: `overtaken`)."""
    unrepaired_blocks: int = 0
    """Blocks that left the window with source packets still missing."""
    inconsistent: int = 0
    """Packets whose K, N or symbol length disagree with the session's geometry (dropped
    before anything is stored or decoded)."""
    misaligned: int = 0
    """Source packets whose block number disagrees with their sequence number (played,
    not used for FEC)."""
    late: int = 0
    """Packets for blocks behind the window."""
    outside_window: int = 0
    """Repair packets for blocks ahead of the window (a repair packet never moves it)."""
    stragglers: int = 0
    """Repair packets for blocks already decoded."""
    duplicates: int = 0
    overtaken: int = 0
    resets: int = 0
    """Times FEC started over on a sender's new block numbering or geometry."""
    decodes: int = 0
    """Decodes run (at most one per block)."""
    decode_failures: int = 0
    """Decodes that rebuilt nothing."""
    deferred: int = 0
    """Decodes put off to a later audio period by the receiver's FEC budget."""
    too_costly: int = 0
    """Blocks left undecoded because one decode may not cost that much."""
    block_k: int = 0
    """The session's geometry (0 until known): source symbols per block,"""
    block_n: int = 0
    """source + repair symbols per block,"""
    symbol_bytes: int = 0
    """and bytes per symbol."""
    window_blocks: int = 0
    """Blocks the window spans (the cap on blocks held)."""
    held_blocks: int = 0


class SessionMetrics(msgspec.Struct, kw_only=True):
    """A snapshot of one session. Packet counts are RTP packets; samples are per channel at
    the stream's rate."""

    ssrc: int
    address: Address
    payload_type: int
    state: SessionState
    latency_ms: float
    """The latency held at the target: NIQ latency (end of the newest queued packet minus
    the playback position) without its one-packet sawtooth (see `NiqSmoother`); RTCP
    reports carry the instant NIQ latency."""
    target_ms: float
    jitter_ms: float
    """RFC 3550 interarrival jitter."""
    received: int
    """Distinct packets that arrived from the network."""
    lost: int
    """Expected (by extended sequence number) minus received: before FEC."""
    recovered: int
    """Packets rebuilt by FEC and placed in time."""
    late: int
    """Packets (arrived or rebuilt) dropped because their time had been played."""
    duplicated: int
    filtered: int
    """Dropped by Roc's RTP filter: SSRC / payload type change, seq or timestamp jump."""
    malformed: int
    """Packets of this sender that did not parse (payload size, FEC payload ID)."""
    concealed_samples: int
    drift_ppm: float
    """Estimated sender clock rate relative to ours, minus 1."""
    resampler_ratio: float
    """Output rate / stream rate the resampler runs at (1.0 without a resampler)."""
    underruns: int
    """Output frames that needed samples past the newest packet while playing."""
    overruns: int
    """Packets dropped because they were too far ahead for the jitter buffer."""
    rtcp_foreign: int = 0
    """RTCP packets naming this session's SSRC from another address than the one its
    RTCP comes from (BYE, SR, SDES: counted and ignored)."""
    fec: FecStats | None = None
    """The FEC reader's counters (None on an endpoint without FEC)."""


class ReceiverCounters(msgspec.Struct, kw_only=True):
    """Datagrams the receiver dropped before any session saw them, and session counts."""

    malformed: int = 0
    """Not an RTP packet of the endpoint's format."""
    unknown_sender: int = 0
    """Repair packets from an address without a session."""
    ssrc_mismatch: int = 0
    """Source packets whose SSRC lives at another address, or from a session's address with
    another SSRC (a restarted or spoofing sender, until the old session ends)."""
    unknown_payload_type: int = 0
    """Source packets of new senders whose payload type is not in the encoding map, or
    whose channels cannot be mapped to the output's."""
    unexpected_repair: int = 0
    """Repair packets at an endpoint without FEC."""
    session_limit: int = 0
    """Source packets of new senders refused because `max_sessions` were active."""
    sessions_created: int = 0
    sessions_ended: int = 0


class EndedSession(msgspec.Struct, kw_only=True):
    """A session that was removed, why, and its final metrics."""

    ssrc: int
    address: Address
    reason: EndReason
    metrics: SessionMetrics
