"""The sender pipeline, sans I/O: audio frames in, tagged datagrams out (§8.1).

    frames (input rate, input channels)
      -> channel mapping + rate conversion to the network encoding (when they differ)
      -> packetizer (constant-size RTP packets, random SSRC / seq / timestamp)
      -> FEC writer (RS8M 18+10 by default, LDPC, or none; random first SBN)
      -> datagrams tagged SOURCE / REPAIR, plus CONTROL for RTCP

The I/O shell sends every datagram from ONE UDP socket to the endpoint of its interface
(a Roc receiver matches repair packets to sessions by source address, §1.3), feeds the
RTCP it receives to `handle_rtcp` and calls `poll_rtcp` after writing and at
`rtcp_deadline_ns`. Randomness comes from the injected `random.Random`, so a seeded
sender is reproducible; `SenderIdentity` pins every random start value.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from ._encoding import L16_STEREO, NS_PER_SECOND, Encoding, samples_for_duration
from ._endpoint import Interface
from ._fec_writer import DEFAULT_REPAIR_PACKETS, DEFAULT_SOURCE_PACKETS, FecWriter
from ._fecframe import SBN_MODULUS, FecScheme
from ._l16 import encode_l16
from ._packetizer import Packet, Packetizer
from ._rate_converter import ChannelMapper, RateConverter, ResamplerQuality
from ._rtcp_sender import ReceiverFeedback, SenderReporter
from ._rtcp_session import INACTIVITY_TIMEOUT_NS, REPORT_INTERVAL_NS, random_cname, random_ssrc
from ._types import Buffer

__all__ = ["Datagram", "Sender", "SenderConfig", "SenderIdentity", "SenderMetrics"]

_SOURCE = Interface.SOURCE
_REPAIR = Interface.REPAIR

DEFAULT_PACKET_LENGTH_NS = 5_000_000
"""Roc's default packet length: 5 ms (221 samples at 44.1 kHz)."""


class SenderConfig(msgspec.Struct, frozen=True):
    """How a sender encodes; the defaults are roc-send 0.4's."""

    encoding: Encoding = L16_STEREO
    packet_length_ns: int = DEFAULT_PACKET_LENGTH_NS
    fec: FecScheme | None = FecScheme.RS8M
    fec_source_packets: int = DEFAULT_SOURCE_PACKETS
    fec_repair_packets: int = DEFAULT_REPAIR_PACKETS
    # A partial last packet: dropped (roc-send at the end of a file) or padded.
    pad_last_packet: bool = False
    resampler: ResamplerQuality = ResamplerQuality.FASTEST
    rtcp_interval_ns: int = REPORT_INTERVAL_NS
    rtcp_timeout_ns: int = INACTIVITY_TIMEOUT_NS
    # BYE at `stop`: roc-send sends none; a receiver then ends the session at once.
    bye_on_stop: bool = False


class SenderIdentity(msgspec.Struct, frozen=True):
    """The random start values of a stream (RTP SSRC / seq / timestamp, FEC SBN, CNAME)."""

    ssrc: int
    first_seq: int
    first_timestamp: int
    first_sbn: int
    cname: str

    @classmethod
    def random(cls, rng: random.Random) -> SenderIdentity:
        """Fresh values, drawn as Roc draws them (SSRC never 0, CNAME a UUID v4)."""
        return cls(
            ssrc=random_ssrc(rng),
            first_seq=rng.randrange(0x1_0000),
            first_timestamp=rng.randrange(0x1_0000_0000),
            first_sbn=rng.randrange(SBN_MODULUS),
            cname=random_cname(rng),
        )


class Datagram(NamedTuple):
    """One datagram to send, and the interface whose endpoint it goes to."""

    interface: Interface
    payload: bytes


class SenderMetrics(msgspec.Struct, frozen=True):
    """Counters of one sending stream; bytes are whole datagrams (UDP payloads)."""

    ssrc: int
    cname: str
    source_packets: int
    source_bytes: int
    repair_packets: int
    repair_bytes: int
    rtcp_packets: int
    rtcp_bytes: int
    fec: str | None  # "rs8m", "ldpc" or None
    sbn: int | None  # the FEC block being filled
    ssrc_collisions: int
    receivers: tuple[ReceiverFeedback, ...]
    rtcp_receivers_refused: int = 0
    """Receiver reports not tracked because `rtcp_max_receivers` receivers were (maps to
    `rocd_sender_rtcp_receivers_refused_total`)."""
    rtcp_max_receivers: int = 0
    """The cap on receivers tracked (entries expire after 5 s without RTCP)."""


Frames = npt.NDArray[np.float32]


class Sender:
    """One sending stream: `write` frames, send what comes back."""

    def __init__(
        self,
        config: SenderConfig | None = None,
        *,
        input_rate: int,
        input_channels: int,
        rng: random.Random,
        identity: SenderIdentity | None = None,
    ) -> None:
        config = config if config is not None else SenderConfig()
        enc = config.encoding
        self.config = config
        self.input_rate = input_rate
        self.input_channels = input_channels
        ident = identity if identity is not None else SenderIdentity.random(rng)
        self.identity = ident
        spp = samples_for_duration(config.packet_length_ns, enc.rate)
        if spp < 1:
            raise ValueError(f"packet length {config.packet_length_ns} ns holds no sample")
        self._mapper = ChannelMapper(input_channels, enc.channels)
        self._converter: RateConverter | None = None
        if input_rate != enc.rate:
            self._converter = RateConverter(
                input_rate, enc.rate, min(input_channels, enc.channels), config.resampler
            )
        self._packetizer = Packetizer(
            enc,
            spp,
            ssrc=ident.ssrc,
            first_seq=ident.first_seq,
            first_timestamp=ident.first_timestamp,
            pad_last=config.pad_last_packet,
        )
        self._fec: FecWriter | None = None
        if config.fec is not None:
            self._fec = FecWriter(
                config.fec,
                n_source=config.fec_source_packets,
                n_repair=config.fec_repair_packets,
                first_sbn=ident.first_sbn,
            )
        self.reporter = SenderReporter(
            rng=rng,
            ssrc=ident.ssrc,
            cname=ident.cname,
            rate=enc.rate,
            interval_ns=config.rtcp_interval_ns,
            timeout_ns=config.rtcp_timeout_ns,
        )
        self._in_position = 0  # input frames taken since the start
        self._out_position = 0  # network-rate frames handed to the packetizer
        self._anchor_in = 0  # input position of the newest chunk's first frame
        self._anchor_ns = 0  # its capture time
        self._source = [0, 0]  # packets, bytes
        self._repair = [0, 0]
        self._rtcp = [0, 0]

    @property
    def samples_per_packet(self) -> int:
        return self._packetizer.samples_per_packet

    @property
    def ssrc(self) -> int:
        return self._packetizer.ssrc

    # -- audio ------------------------------------------------------------------------

    def write(self, frames: npt.NDArray[np.floating], capture_ns: int) -> list[Datagram]:
        """Datagrams for the next input frames, shape (n, input_channels), values in
        [-1, 1); `capture_ns` is the wall-clock capture time of frames[0]."""
        return self._packetize(self._convert(frames, capture_ns))

    def write_bursts(
        self, frames: npt.NDArray[np.floating], captures: Sequence[int], burst_frames: int
    ) -> list[list[Datagram]]:
        """`write` of successive bursts of `burst_frames` input frames (the last may be
        shorter), burst k captured at `captures[k]`, in one call: the datagrams of each
        burst, exactly what `write(burst, captures[k])` for each in turn returns.

        Why: a sender reading ahead encodes many 10 ms bursts at once, and the per-sample
        work (conversion, L16 encoding) done once for all of them costs a fraction of
        doing it burst by burst (numpy's cost per call dominates at 441 frames). With a
        rate converter, whose output does not split at input frames, it writes burst
        by burst."""
        if burst_frames < 1:
            raise ValueError(f"bursts must hold >= 1 frame, got {burst_frames}")
        total = len(frames)
        count = -(-total // burst_frames)
        if len(captures) != count:
            raise ValueError(f"{count} bursts of {burst_frames} frames, {len(captures)} captures")
        if self._converter is not None or count <= 1:
            return [
                self.write(frames[k * burst_frames : (k + 1) * burst_frames], captures[k])
                for k in range(count)
            ]
        data = self._convert(frames, captures[0])
        payload = memoryview(encode_l16(data))
        frame_bytes = self.config.encoding.frame_bytes
        in_position = self._in_position - total  # `_convert` counted them all
        out = []
        for k in range(count):
            start = k * burst_frames
            n = min(burst_frames, total - start)
            self._anchor_in = in_position + start  # as `_convert` of this burst sets them
            self._anchor_ns = captures[k]
            chunk = payload[start * frame_bytes : (start + n) * frame_bytes]
            out.append(self._send(self._packetizer.write_encoded(chunk, n, self._capture(n))))
        return out

    def _convert(self, frames: npt.NDArray[np.floating], capture_ns: int) -> Frames:
        """Input frames to the network encoding's rate and channels (so far as they come
        out of the rate converter)."""
        if frames.ndim != 2 or frames.shape[1] != self.input_channels:
            raise ValueError(
                f"frames must have shape (n, {self.input_channels}), got {frames.shape}"
            )
        data: Frames = np.ascontiguousarray(frames, dtype=np.float32)
        self._anchor_in = self._in_position
        self._anchor_ns = capture_ns
        self._in_position += len(data)
        mapper = self._mapper
        if mapper.out_channels < mapper.in_channels:
            data = mapper.map(data)
        if self._converter is not None:
            data = self._converter.process(data)
        if mapper.out_channels > mapper.in_channels:
            data = mapper.map(data)
        return data

    def flush(self) -> list[Datagram]:
        """End of the stream: drain the resampler, then drop or pad a partial packet
        (`pad_last_packet`); an unfinished FEC block closes without repair, as in Roc."""
        out: list[Datagram] = []
        if self._converter is not None:
            tail = self._converter.flush()
            if self._mapper.out_channels > self._mapper.in_channels:
                tail = self._mapper.map(tail)
            out = self._packetize(tail)
        out += self._send(self._packetizer.flush())
        if self._fec is not None:
            self._fec.flush()
        return out

    def _packetize(self, data: Frames) -> list[Datagram]:
        return self._send(self._packets(data))

    def _packets(self, data: Frames) -> list[Packet]:
        return self._packetizer.write(data, self._capture(len(data)))

    def _capture(self, frames: int) -> int:
        """The capture time of the next `frames` network-rate frames' first one (they
        are counted as handed to the packetizer)."""
        enc_rate = self.config.encoding.rate
        j0 = self._out_position
        self._out_position += frames
        # Capture time of data[0]: the input instant it stands for (the converter keeps
        # output frame j aligned with input time j / enc_rate), extrapolated from the
        # newest input chunk's capture time.
        offset = j0 * self.input_rate - self._anchor_in * enc_rate
        den = self.input_rate * enc_rate
        return self._anchor_ns + (2 * offset * NS_PER_SECOND + den) // (2 * den)

    def _send(self, packets: list[Packet]) -> list[Datagram]:
        if not packets:
            return []
        out: list[Datagram] = []
        append = out.append
        fec = self._fec
        octets = source = repair = 0
        n_repair = 0
        if fec is None:
            for packet in packets:
                octets += packet.payload_bytes
                source += len(packet.rtp)
                append(Datagram(_SOURCE, packet.rtp))
        else:
            write = fec.write
            for packet in packets:
                octets += packet.payload_bytes
                data, repairs = write(packet.rtp)
                append(Datagram(_SOURCE, data))
                source += len(data)
                if repairs:
                    n_repair += len(repairs)
                    for r in repairs:
                        append(Datagram(_REPAIR, r))
                        repair += len(r)
        counts = self._source
        counts[0] += len(packets)
        counts[1] += source
        counts = self._repair
        counts[0] += n_repair
        counts[1] += repair
        last = packets[-1]
        self.reporter.on_sent(len(packets), octets, last.timestamp, last.capture_ns)
        return out

    # -- control ----------------------------------------------------------------------

    @property
    def rtcp_deadline_ns(self) -> int | None:
        """When `poll_rtcp` next has a report (None: call it after the next write)."""
        return self.reporter.deadline_ns

    def poll_rtcp(self, now_ns: int, wall_ns: int) -> list[Datagram]:
        """The RTCP report due now, if any (`now_ns` monotonic, `wall_ns` Unix time)."""
        data = self.reporter.poll(now_ns, wall_ns)
        return [] if data is None else [self._control(data)]

    def handle_rtcp(self, data: Buffer, now_ns: int, wall_ns: int) -> None:
        """Take in RTCP from a receiver (MalformedPacket if it is not RTCP).

        On an SSRC collision the stream continues under a new SSRC at once.
        """
        for change in self.reporter.handle(data, now_ns, wall_ns):
            self._packetizer.ssrc = change.new

    def stop(self, now_ns: int, wall_ns: int) -> list[Datagram]:
        """End the stream: `flush`, then a last report with BYE if `bye_on_stop`."""
        out = self.flush()
        if self.config.bye_on_stop:
            out.append(self._control(self.reporter.goodbye(now_ns, wall_ns)))
        return out

    def _control(self, data: bytes) -> Datagram:
        self._rtcp[0] += 1
        self._rtcp[1] += len(data)
        return Datagram(Interface.CONTROL, data)

    # -- metrics ----------------------------------------------------------------------

    def metrics(self) -> SenderMetrics:
        fec = self._fec
        return SenderMetrics(
            ssrc=self.ssrc,
            cname=self.reporter.cname,
            source_packets=self._source[0],
            source_bytes=self._source[1],
            repair_packets=self._repair[0],
            repair_bytes=self._repair[1],
            rtcp_packets=self._rtcp[0],
            rtcp_bytes=self._rtcp[1],
            fec=None if fec is None else fec.scheme.value,
            sbn=None if fec is None else fec.sbn,
            ssrc_collisions=self.reporter.collisions,
            receivers=tuple(self.reporter.feedback()),
            rtcp_receivers_refused=self.reporter.receivers_refused,
            rtcp_max_receivers=self.reporter.max_receivers,
        )
