"""The wire: sans-IO codecs for RTP, FECFRAME (RS8M, LDPC-Staircase) and RTCP.

Nothing in the codec modules touches sockets, clocks or Trio: they turn bytes into
packets and back, so they are tested with bytes in and bytes out.
"""

from ._errors import FecDecodeError, MalformedPacket, ProtocolError
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
from ._ldpc import LDPC_N1, LDPC_SEED, LdpcStaircaseCodec
from ._rs8m import Rs8mCodec

__all__ = [
    "LDPC_N1",
    "LDPC_SEED",
    "SBN_MODULUS",
    "BlockCodec",
    "FecDecodeError",
    "FecReader",
    "FecReaderStats",
    "FecScheme",
    "FecWriter",
    "FecWriterOutput",
    "LdpcStaircaseCodec",
    "MalformedPacket",
    "ProtocolError",
    "RepairPayloadId",
    "Rs8mCodec",
    "SourcePayloadId",
    "build_repair_datagram",
    "build_source_datagram",
    "check_block_size",
    "default_codec",
    "parse_repair_datagram",
    "parse_source_datagram",
    "sbn_diff",
]
