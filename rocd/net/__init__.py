"""The wire: sans-IO codecs for RTP, FECFRAME (RS8M, LDPC-Staircase) and RTCP.

Nothing in the codec modules touches sockets, clocks or Trio: they turn bytes into
packets and back, so they are tested with bytes in and bytes out.
"""

from ._errors import FecDecodeError, MalformedPacket, ProtocolError
from ._impairment import GilbertElliott, ImpairmentConfig, ImpairmentCounters, ImpairmentModel
from ._relay import RelayCounters, RelayRoute, UdpRelay

__all__ = [
    "FecDecodeError",
    "GilbertElliott",
    "ImpairmentConfig",
    "ImpairmentCounters",
    "ImpairmentModel",
    "MalformedPacket",
    "ProtocolError",
    "RelayCounters",
    "RelayRoute",
    "UdpRelay",
]
