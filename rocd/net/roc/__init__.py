"""The Roc transport: sans-IO codecs for RTP, FECFRAME (RS8M, LDPC-Staircase) and RTCP.

Nothing in the codec modules touches sockets, clocks or Trio: they turn bytes into
packets and back, so they are tested with bytes in and bytes out.
"""

from ._adaptive_latency import AdaptiveLatency, AdaptiveLatencyConfig
from ._depacketizer import Depacketizer
from ._encoding import L16_MONO, L16_STEREO, Encoding, EncodingMap, samples_for_duration
from ._endpoint import (
    Endpoint,
    EndpointError,
    EndpointSet,
    Interface,
    Protocol,
    receiver_endpoints,
    sender_endpoints,
)
from ._errors import FecDecodeError, MalformedPacket, ProtocolError
from ._fanout_link import FanoutLink, FanoutSlot
from ._fec_codec import BlockCodec, default_codec
from ._fec_reader import FecReader, FecReaderStats
from ._fec_writer import FecWriter, FecWriterOutput
from ._fecframe import (
    SBN_MODULUS,
    FecScheme,
    RepairPayloadId,
    SourcePayloadId,
    build_repair_datagram,
    build_source_datagram,
    check_block_size,
    parse_repair_datagram,
    parse_source_datagram,
    sbn_diff,
)
from ._freq_estimator import FirStage, FreqEstimator, FreqEstimatorConfig, lowpass_fir
from ._impairment import GilbertElliott, ImpairmentConfig, ImpairmentCounters, ImpairmentModel
from ._jitter_buffer import JitterBuffer, WriteResult
from ._l16 import decode_l16, decode_l16_s16, encode_l16, encode_l16_s16
from ._latency_tuner import (
    LatencyConfig,
    LatencyProfile,
    LatencyStatus,
    LatencyTuner,
    default_latency_tolerance_ns,
    default_stale_tolerance_ns,
)
from ._ldpc import LDPC_N1, LDPC_SEED, LdpcStaircaseCodec
from ._link_meter import LinkMeter
from ._mix_link import MixLink, MixSlot
from ._ntp import (
    NTP32_UNAVAILABLE,
    NTP64_UNAVAILABLE,
    metric_to_ntp32,
    metric_to_ntp64,
    ns_to_ntp32,
    ns_to_ntp64,
    ntp32_diff,
    ntp32_to_metric,
    ntp32_to_ns,
    ntp64_to_metric,
    ntp64_to_ns,
    ntp64_to_ntp32,
    ntp64_to_unix_ns,
    unix_ns_to_ntp64,
)
from ._pacer import Pacer
from ._packetizer import Packet, Packetizer
from ._rate_converter import ChannelMapper, RateConverter, ResamplerQuality
from ._receiver import Receiver
from ._receiver_session import ReceiverSession
from ._receiver_types import (
    EndedSession,
    EndReason,
    ReceiverConfig,
    ReceiverCounters,
    SessionMetrics,
    SessionState,
)
from ._reception_stats import ReceptionStats
from ._recv_link import FrameOutput, RecvLink
from ._relay import RelayCounters, RelayRoute, UdpRelay
from ._resampler import Resampler
from ._rs8m import Rs8mCodec
from ._rtcp import (
    Bye,
    RawRtcpPacket,
    ReceiverReport,
    ReportBlock,
    Sdes,
    SdesChunk,
    SdesItem,
    SdesType,
    SenderReport,
)
from ._rtcp_compound import RtcpPacket, parse_rtcp, serialize_rtcp
from ._rtcp_receiver import OutgoingReport, ReceiverReporter, RtcpSessionEnded, SenderClock
from ._rtcp_sender import ReceiverFeedback, SenderReporter, SsrcChanged
from ._rtcp_session import (
    INACTIVITY_TIMEOUT_NS,
    REPORT_INTERVAL_NS,
    ReportTimer,
    hold_ntp32,
    random_cname,
    random_ssrc,
    round_trip_ns,
    wall_ntp32,
)
from ._rtcp_xr import (
    DelayMetrics,
    Dlrr,
    DlrrSubBlock,
    ExtendedReport,
    MeasurementInfo,
    MetricInterval,
    QueueMetrics,
    RawXrBlock,
    Rrtr,
    XrBlock,
)
from ._rtp import RTP_HEADER_SIZE, RtpExtension, RtpPacket
from ._rtp_filter import RtpFilter, RtpFilterStats
from ._send_link import FrameInput, SendLink
from ._sender import Datagram, Sender, SenderConfig, SenderIdentity, SenderMetrics
from ._ticker import Step, Ticker, TickHandle
from ._udp import Address, UdpEndpoint, UdpStats, open_udp_socket, read_batch, resolve_udp
from ._watchdog import Watchdog, WatchdogVerdict
from ._wrap import (
    SeqExtender,
    TimestampExtender,
    WrapExtender,
    seq_add,
    seq_diff,
    seq_le,
    seq_lt,
    ts_add,
    ts_diff,
    ts_le,
    ts_lt,
)

__all__ = [
    "INACTIVITY_TIMEOUT_NS",
    "L16_MONO",
    "L16_STEREO",
    "LDPC_N1",
    "LDPC_SEED",
    "NTP32_UNAVAILABLE",
    "NTP64_UNAVAILABLE",
    "REPORT_INTERVAL_NS",
    "RTP_HEADER_SIZE",
    "SBN_MODULUS",
    "AdaptiveLatency",
    "AdaptiveLatencyConfig",
    "Address",
    "BlockCodec",
    "Bye",
    "ChannelMapper",
    "Datagram",
    "DelayMetrics",
    "Depacketizer",
    "Dlrr",
    "DlrrSubBlock",
    "Encoding",
    "EncodingMap",
    "EndReason",
    "EndedSession",
    "Endpoint",
    "EndpointError",
    "EndpointSet",
    "ExtendedReport",
    "FanoutLink",
    "FanoutSlot",
    "FecDecodeError",
    "FecReader",
    "FecReaderStats",
    "FecScheme",
    "FecWriter",
    "FecWriterOutput",
    "FirStage",
    "FrameInput",
    "FrameOutput",
    "FreqEstimator",
    "FreqEstimatorConfig",
    "GilbertElliott",
    "ImpairmentConfig",
    "ImpairmentCounters",
    "ImpairmentModel",
    "Interface",
    "JitterBuffer",
    "LatencyConfig",
    "LatencyProfile",
    "LatencyStatus",
    "LatencyTuner",
    "LdpcStaircaseCodec",
    "LinkMeter",
    "MalformedPacket",
    "MeasurementInfo",
    "MetricInterval",
    "MixLink",
    "MixSlot",
    "OutgoingReport",
    "Pacer",
    "Packet",
    "Packetizer",
    "Protocol",
    "ProtocolError",
    "QueueMetrics",
    "RateConverter",
    "RawRtcpPacket",
    "RawXrBlock",
    "Receiver",
    "ReceiverConfig",
    "ReceiverCounters",
    "ReceiverFeedback",
    "ReceiverReport",
    "ReceiverReporter",
    "ReceiverSession",
    "ReceptionStats",
    "RecvLink",
    "RelayCounters",
    "RelayRoute",
    "RepairPayloadId",
    "ReportBlock",
    "ReportTimer",
    "Resampler",
    "ResamplerQuality",
    "Rrtr",
    "Rs8mCodec",
    "RtcpPacket",
    "RtcpSessionEnded",
    "RtpExtension",
    "RtpFilter",
    "RtpFilterStats",
    "RtpPacket",
    "Sdes",
    "SdesChunk",
    "SdesItem",
    "SdesType",
    "SendLink",
    "Sender",
    "SenderClock",
    "SenderConfig",
    "SenderIdentity",
    "SenderMetrics",
    "SenderReport",
    "SenderReporter",
    "SeqExtender",
    "SessionMetrics",
    "SessionState",
    "SourcePayloadId",
    "SsrcChanged",
    "Step",
    "TickHandle",
    "Ticker",
    "TimestampExtender",
    "UdpEndpoint",
    "UdpRelay",
    "UdpStats",
    "Watchdog",
    "WatchdogVerdict",
    "WrapExtender",
    "WriteResult",
    "XrBlock",
    "build_repair_datagram",
    "build_source_datagram",
    "check_block_size",
    "decode_l16",
    "decode_l16_s16",
    "default_codec",
    "default_latency_tolerance_ns",
    "default_stale_tolerance_ns",
    "encode_l16",
    "encode_l16_s16",
    "hold_ntp32",
    "lowpass_fir",
    "metric_to_ntp32",
    "metric_to_ntp64",
    "ns_to_ntp32",
    "ns_to_ntp64",
    "ntp32_diff",
    "ntp32_to_metric",
    "ntp32_to_ns",
    "ntp64_to_metric",
    "ntp64_to_ns",
    "ntp64_to_ntp32",
    "ntp64_to_unix_ns",
    "open_udp_socket",
    "parse_repair_datagram",
    "parse_rtcp",
    "parse_source_datagram",
    "random_cname",
    "random_ssrc",
    "read_batch",
    "receiver_endpoints",
    "resolve_udp",
    "round_trip_ns",
    "samples_for_duration",
    "sbn_diff",
    "sender_endpoints",
    "seq_add",
    "seq_diff",
    "seq_le",
    "seq_lt",
    "serialize_rtcp",
    "ts_add",
    "ts_diff",
    "ts_le",
    "ts_lt",
    "unix_ns_to_ntp64",
    "wall_ntp32",
]
