"""Streams as the API and the cluster see them, and the requests a stream's ends answer.

A stream joins a source and a destination. Each is a device of some peer, a VAD of some
peer (a speaker VAD as a source means what apps play into it: its monitor), or an
external Roc endpoint (roc-send / roc-recv, a PipeWire or PulseAudio Roc module). The
instance that owns a device holds that end of the stream: a *receiver* end for the
destination, a *sender* end for the source.

The requests under "requests to an instance's ends" go to the actor ("streams", <uid of
the instance>) of the instance holding the end, through `Peers`: they are plain msgspec
structs so that they travel between instances as they are.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ._actor import Request
from ._audio_types import Rate, Volume
from ._stream_media import MediaPlan
from ._stream_state import StreamState

Role = Literal["sender", "receiver"]
FecName = Literal["rs8m", "ldpc", "none"]
ProfileName = Literal["lan", "wifi", "internet"]
Tuning = Literal["default", "intact", "responsive", "gradual"]
LatencyMs = Annotated[float, Meta(gt=0, le=10_000)]
PacketMs = Annotated[float, Meta(ge=0.5, le=100)]
BlockPackets = Annotated[int, Meta(ge=1, le=255)]

# -- ends -------------------------------------------------------------------------------


class ExternalEndpoints(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True
):
    """A Roc slot: where the receiving side listens (source, repair, control URIs)."""

    source: str  # rtp://, rtp+rs8m:// or rtp+ldpc://HOST:PORT
    repair: str | None = None  # rs8m:// or ldpc://HOST:PORT (with FEC)
    control: str | None = None  # rtcp://HOST:PORT


class EndSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One end: {peer, device}, {peer, vad} or {external}."""

    peer: str | None = None  # uid of the instance ("self": the one asked)
    device: str | None = None  # device id on that peer
    vad: str | None = None  # VAD uid on that peer
    external: ExternalEndpoints | None = None

    def __post_init__(self) -> None:
        forms = [x is not None for x in (self.device, self.vad, self.external)]
        if sum(forms) != 1:
            raise ValueError("an end is {peer, device}, {peer, vad} or {external}")
        if self.external is None and not self.peer:
            raise ValueError('a device or VAD end names its peer ("self" for this one)')
        if self.external is not None and self.peer is not None:
            raise ValueError("an external end names no peer")

    @property
    def is_external(self) -> bool:
        return self.external is not None


# -- settings ---------------------------------------------------------------------------


class EncodingSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The format on the wire (L16); 44.1 kHz mono or stereo are Roc's built-ins."""

    rate: Rate = 44100
    channels: Annotated[int, Meta(ge=1, le=8)] = 2


class FecSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Forward erasure correction; block sizes in packets (None: the profile's)."""

    scheme: FecName = "rs8m"
    source_packets: BlockPackets | None = None
    repair_packets: BlockPackets | None = None


class LatencySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How much the receiver buffers. A fixed `target_ms` (sessions restart outside
    [min_ms, max_ms], by default Roc's tolerance around the target), or `adaptive`
    (starts at target_ms and follows the link's jitter within [min_ms, max_ms]), or a
    `profile` that sets all of these (see the README's table)."""

    profile: ProfileName | None = None
    target_ms: LatencyMs | None = None
    min_ms: LatencyMs | None = None
    max_ms: LatencyMs | None = None
    adaptive: bool | None = None
    tuning: Tuning = "default"  # Roc's latency tuning profile (intact: no resampling)


class StreamSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A stream's settings; once the stream exists, every field has its value."""

    encoding: EncodingSettings = EncodingSettings()
    fec: FecSettings = FecSettings()
    packet_ms: PacketMs = 5.0
    latency: LatencySettings = LatencySettings()
    drift_compensation: bool = True  # resample to follow the sender's clock
    volume: Volume = 1.0  # 0..1.5, applied where the stream is played (or sent, if external)


class StreamCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    source: EndSpec
    destination: EndSpec
    settings: StreamSettings = StreamSettings()


class LatencyPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    min_ms: LatencyMs | UnsetType = UNSET
    max_ms: LatencyMs | UnsetType = UNSET


class StreamPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """What changes live, without a gap: the volume and the latency bounds."""

    volume: Volume | UnsetType = UNSET
    latency: LatencyPatch | UnsetType = UNSET


class StreamSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything an end needs to know of its stream (peers resolved to their uids)."""

    uid: str
    source: EndSpec
    destination: EndSpec
    settings: StreamSettings
    created: float  # Unix time, seconds
    origin: str  # uid of the instance that set it up
    media: MediaPlan | None = None  # the path of its audio (None: direct, as before)


# -- views ------------------------------------------------------------------------------


class EndInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One end, as the instance holding it reports it."""

    stream: StreamSpec
    role: Role
    peer: str  # the instance holding this end
    state: StreamState
    reason: str = ""
    since: float = 0.0  # Unix time of the last state change
    committed: bool = False
    #: receiver: where it listens (the ports to send to); sender: where it sends.
    endpoints: ExternalEndpoints | None = None
    #: The path its audio takes: "local", "direct", "hub" (through a hub's relay),
    #: "punched" (a direct path opened through a NAT); "" for an end that does not know.
    path: str = ""
    #: Not heard from its instance just now (offline): what was last known of it.
    stale: bool = False


class EndView(msgspec.Struct, frozen=True, kw_only=True):
    role: Role
    peer: str
    state: StreamState
    reason: str = ""
    endpoints: ExternalEndpoints | None = None
    #: The path of the audio (a sender's view: local, direct, punched or hub).
    path: str = ""
    #: Its instance cannot be asked now: the state shown is degraded, with the reason.
    stale: bool = False


class Stream(msgspec.Struct, frozen=True, kw_only=True):
    """A stream of the cluster: its two ends, its settings and its state."""

    uid: str
    source: EndSpec
    destination: EndSpec
    settings: StreamSettings
    state: StreamState
    reason: str = ""
    created: float
    ends: list[EndView]


class ReceiverEndMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """The receiving end: WebRTC inbound-rtp names where one fits, and Roc's."""

    sessions: int
    packetsReceived: int
    packetsLost: int
    packetsDiscarded: int
    recovered_packets: int  # rebuilt by FEC
    late_packets: int
    concealedSamples: int
    jitter: float  # seconds (RFC 3550 interarrival jitter)
    latency_ms: float  # measured (the queue the tuner holds)
    target_latency_ms: float
    drift_ppm: float
    underruns: int  # the sessions' and the device's
    device_underruns: int  # the device's alone (its writer was late: silence was played)
    bitrate_bps: float  # received, over the last interval
    counters: dict[str, int]  # the receiver's drop counters, all of them
    session_metrics: list[dict[str, Any]]  # every live session, every field
    #: The FEC readers' counters (what they took, refused, decoded), summed over every
    #: session the end had: forged or foreign repair packets show up here.
    fec: dict[str, int] = {}
    #: What the receiver's RTCP took and refused (`foreign`, `unknown_ssrc`,
    #: `table_full`, ...) and the size of its sender table.
    rtcp: dict[str, int] = {}
    #: RTCP naming a session's SSRC from another address (ignored), over every session.
    rtcp_foreign: int = 0


class SenderEndMetrics(msgspec.Struct, frozen=True, kw_only=True):
    packetsSent: int
    bytesSent: int
    fecPacketsSent: int
    bitrate_bps: float  # sent, over the last interval
    rtt_ms: float | None  # from the receivers' reports
    e2e_latency_ms: float | None
    receivers: list[dict[str, Any]]  # each receiver's feedback, every field


class EndMetrics(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    role: Role
    peer: str
    state: StreamState
    reason: str = ""
    time: float  # Unix time of the snapshot
    receiver: ReceiverEndMetrics | None = None
    sender: SenderEndMetrics | None = None


class StreamMetrics(msgspec.Struct, frozen=True, kw_only=True):
    uid: str
    state: StreamState
    reason: str = ""
    ends: list[EndMetrics]


# -- requests to an instance's ends (kind "streams", uid = the instance's uid) ------------


class ReceiverPrepared(msgspec.Struct, frozen=True):
    endpoints: ExternalEndpoints  # bound: the ports a sender must send to
    #: On a `nat` path: the public side of each socket's mapping, as the hub saw it.
    observed: ExternalEndpoints | None = None


class SenderPrepared(msgspec.Struct, frozen=True):
    port: int  # the UDP port the sender sends from
    #: On a `nat` path: "host:port" the hub saw the sender's socket at ("": unknown).
    observed: str = ""


class PrepareReceiver(Request[ReceiverPrepared], frozen=True, kw_only=True):
    """Phase 1 on the destination's instance: open the device, bind the ports."""

    stream: StreamSpec
    bind_host: str = "0.0.0.0"  # where to listen unless the end is external
    ttl_s: float = 10.0  # not committed within this: it goes away by itself


class PrepareSender(Request[SenderPrepared], frozen=True, kw_only=True):
    """Phase 1 on the source's instance: open the device, bind the socket."""

    stream: StreamSpec
    #: Where to send; None on a `nat` path whose direct candidates are unknown (the
    #: sender then sends through the hub at once).
    targets: ExternalEndpoints | None
    ttl_s: float = 10.0


class CommitEnd(Request[EndInfo], frozen=True, kw_only=True):
    """Phase 2: start the audio and persist the end."""

    stream: str
    role: Role
    #: A receiver on a `nat` path: "host:port" addresses where the sender's socket may be
    #: reached, to punch towards before the first packet comes.
    punch: tuple[str, ...] = ()


class AbortEnd(Request[bool], frozen=True, kw_only=True):
    """Remove an end, prepared or committed (rollback, delete); False: there was none."""

    stream: str
    role: Role
    reason: str = "aborted"


class ListEnds(Request[list[EndInfo]], frozen=True, kw_only=True):
    """The ends this instance holds (of one stream, or all)."""

    stream: str | None = None


class GetEndMetrics(Request[EndMetrics], frozen=True, kw_only=True):
    stream: str
    role: Role


class UpdateEnd(Request[EndInfo], frozen=True, kw_only=True):
    """Apply a live change (volume, latency bounds) to an end; persisted."""

    stream: str
    role: Role
    patch: StreamPatch


#: Every request a stream's end answers (for the cluster's role table: "operator").
END_REQUESTS: tuple[type[Request[Any]], ...] = (
    PrepareReceiver,
    PrepareSender,
    CommitEnd,
    AbortEnd,
    ListEnds,
    GetEndMetrics,
    UpdateEnd,
)

# -- requests to the local coordinator (from the API) -----------------------------------


class CreateStream(Request[Stream], frozen=True):
    create: StreamCreate


class ListStreams(Request[list[Stream]], frozen=True):
    pass


class GetStream(Request[Stream], frozen=True):
    uid: str


class UpdateStream(Request[Stream], frozen=True):
    uid: str
    patch: StreamPatch


class DeleteStream(Request[None], frozen=True):
    uid: str


class GetStreamMetrics(Request[StreamMetrics], frozen=True):
    uid: str


def end_uid(stream: str, role: str) -> str:
    """The uid of an end's actor."""
    return f"{stream}:{role}"


def _register_on_the_wire() -> None:
    from ._wire import WIRE

    for request in END_REQUESTS:
        WIRE.register(request, "viewer" if request in (ListEnds, GetEndMetrics) else "operator")


_register_on_the_wire()
