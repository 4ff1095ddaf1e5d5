"""The wire: sans-IO codecs for RTP, FECFRAME (RS8M, LDPC-Staircase) and RTCP.

Nothing in the codec modules touches sockets, clocks or Trio: they turn bytes into
packets and back, so they are tested with bytes in and bytes out.
"""

from ._errors import FecDecodeError, MalformedPacket, ProtocolError
from ._freq_estimator import FirStage, FreqEstimator, FreqEstimatorConfig, lowpass_fir
from ._impairment import GilbertElliott, ImpairmentConfig, ImpairmentCounters, ImpairmentModel
from ._latency_tuner import (
    LatencyConfig,
    LatencyProfile,
    LatencyStatus,
    LatencyTuner,
    default_latency_tolerance_ns,
)
from ._relay import RelayCounters, RelayRoute, UdpRelay

__all__ = [
    "FecDecodeError",
    "FirStage",
    "FreqEstimator",
    "FreqEstimatorConfig",
    "GilbertElliott",
    "ImpairmentConfig",
    "ImpairmentCounters",
    "ImpairmentModel",
    "LatencyConfig",
    "LatencyProfile",
    "LatencyStatus",
    "LatencyTuner",
    "MalformedPacket",
    "ProtocolError",
    "RelayCounters",
    "RelayRoute",
    "UdpRelay",
    "default_latency_tolerance_ns",
    "lowpass_fir",
]
