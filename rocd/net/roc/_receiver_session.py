"""One sender's stream inside a receiver: packets in, output frames out (sans-IO).

The chain, after Roc's receiver session (ROC_PROTOCOL.md §7):

    source datagram -> RTP filter -> link meter -> FEC reader -> jitter buffer
    repair datagram ------------------------------^  (rebuilt packets: filter -> buffer)
    read: jitter buffer -> depacketizer (concealment, channel map) -> resampler
          -> latency monitor/tuner -> watchdog

Latency is measured at the output's playback position mapped back to the stream: the
resampler reads a few ms ahead of what it outputs, in chunks, so its real read position
jumps; the consumer's position advances smoothly by n / ratio per output frame. NIQ latency
= end of the newest queued packet - that position (samples at the stream rate), measured
after each frame as Roc does. It is checked against the bounds (out of bounds ends the
session) and reported in RTCP; the tuner keeps the same latency without its one-packet
sawtooth at the target (`NiqSmoother`), which is also the session's `latency` metric.
Playback starts with exactly the target queued after the first frame. Without drift
compensation and at equal rates there is no resampler: output samples are the stream's
samples, unchanged.

Every method takes the time (`now_ns`, any monotonic clock in ns); nothing here reads a
clock. Bad packets are counted and dropped, never raised.
"""

from __future__ import annotations

import struct
from math import ceil

import numpy as np
import numpy.typing as npt

from ._adaptive_latency import AdaptiveLatency
from ._depacketizer import Depacketizer
from ._encoding import Encoding
from ._errors import MalformedPacket
from ._fec_codec import BlockCodec
from ._fec_reader import FecBudget, FecReader
from ._fecframe import FecScheme
from ._jitter_buffer import JitterBuffer, WriteResult
from ._latency_tuner import LatencyStatus, LatencyTuner
from ._link_meter import LinkMeter
from ._niq_smoother import NiqSmoother
from ._receiver_types import (
    Address,
    EndReason,
    FecStats,
    ReceiverConfig,
    SessionMetrics,
    SessionState,
)
from ._reception_stats import ReceptionStats
from ._resampler import DEFAULT_CHUNK, Resampler
from ._rtcp_receiver import SenderClock
from ._rtp import RTP_HEADER_SIZE, RtpPacket
from ._rtp_filter import RtpFilter
from ._types import Buffer
from ._watchdog import Watchdog, WatchdogVerdict

__all__ = ["ReceiverSession"]

_HEADER = struct.Struct(">BBHII")
# FECFRAME source footers as (SBN mod 2^16, ESI, K): RS8M's SBN top byte is skipped.
_RS8M_FOOTER = struct.Struct(">xHBH")
_LDPC_FOOTER = struct.Struct(">HHH")
_NS = 1_000_000_000
_MIN_CAPACITY_S = 0.25


class ReceiverSession:
    """The session of sender `ssrc` at `address`, whose packets use `encoding`."""

    def __init__(
        self,
        ssrc: int,
        address: Address,
        encoding: Encoding,
        config: ReceiverConfig,
        *,
        codec: BlockCodec | None = None,
        fec_budget: FecBudget | None = None,
    ) -> None:
        self.ssrc = ssrc
        self.address = address
        self.encoding = encoding
        self.config = config
        rate = encoding.rate
        channels = encoding.channels
        self._frame_bytes = encoding.frame_bytes
        self._filter = RtpFilter(ssrc, encoding.payload_type, rate)
        self._meter = LinkMeter(rate)
        self._fec = (
            FecReader(config.fec, codec=codec, budget=fec_budget)
            if config.fec is not None
            else None
        )
        self._footer = config.fec.source_footer_size if config.fec is not None else 0
        self._unpack_footer = (
            _RS8M_FOOTER if config.fec is FecScheme.RS8M else _LDPC_FOOTER
        ).unpack_from
        self._tuner = LatencyTuner(config.session_latency, rate)
        self._target = round(self._tuner.target)
        headroom = max(self._tuner.max_latency, self._tuner.target)
        self._adaptive: AdaptiveLatency | None = None  # made at the first played frame
        self._rate = rate
        self._packet_samples = 0  # samples per channel of the newest packet
        if config.adaptive is not None:
            # As Roc's adaptive mode: the session restarts only outside [min - tolerance,
            # max + tolerance], the tolerance of the start latency; the target moves inside.
            low, high = config.adaptive.bounds
            tolerance = self._tuner.tolerance_ns
            self._tuner.set_bounds(max(0, low - tolerance), high + tolerance)
            headroom = max(headroom, (high + tolerance) * rate / _NS)
        self._fec_k = 0  # K of the newest FEC block seen (its duration feeds `adaptive`)
        capacity = max(int(2 * headroom) + 4 * DEFAULT_CHUNK, int(_MIN_CAPACITY_S * rate))
        fade = max(1, round(config.fade_ns * rate / _NS))
        self._buffer = JitterBuffer(channels, capacity, history=fade)
        self._depacketizer = Depacketizer(self._buffer, channels, config.channels, fade)
        self._stream_per_output = rate / config.rate  # stream samples per output sample
        self._out_rate = config.rate
        self._base_ratio = config.rate / rate
        self._drift = config.drift_compensation
        self._resampler: Resampler | None = None
        self._ratio = self._base_ratio  # the resampler's ratio (output / stream rate)
        if self._drift or rate != config.rate:
            self._resampler = Resampler(self._depacketizer.read, config.channels, self._base_ratio)
        self._watchdog = Watchdog(
            config.rate,
            no_playback_timeout_ns=config.effective_no_playback_timeout_ns,
            choppy_timeout_ns=config.choppy_playback_timeout_ns,
            warmup_ns=config.session_latency.target_ns,
        )
        self.state = SessionState.BUFFERING
        self.end_reason: EndReason | None = None
        """Set when the session must be removed."""
        self._play_pos = 0.0  # consumer position, stream samples
        self._out_clock = 0.0  # output frames read while playing, in stream samples
        self._smoother = NiqSmoother()
        self._latency: float | None = None  # the tuned latency (see NiqSmoother)
        self._advance_rest = 0.0  # fraction of a stream sample not yet given to the tuner
        self._drops = False  # packets dropped as late since the last frame
        self.recovered = 0
        self.late = 0
        self.duplicated = 0
        self.malformed = 0
        self.overruns = 0
        self.underruns = 0
        self.retargets = 0
        self.rtcp_foreign = 0
        """RTCP about this session's SSRC from another address than its own (counted and
        ignored by the receiver's reporter)."""

    # Packets in.

    def on_source(self, datagram: bytes, now_ns: int) -> None:
        """A source datagram routed to this session (the receiver checked its length and RTP
        version; the filter checks SSRC and payload type again).

        This runs for every packet: the FEC payload ID is read once, here (0 <= ESI < K is
        checked before the packet counts as received: a bad copy must not make the good
        one a duplicate), and the FEC reader is handed the parsed fields. Only a packet
        that passed the RTP checks reaches the FEC reader (only such packets may move its
        block window), and its audio is placed whatever FEC makes of it."""
        fec = self._fec
        if fec is not None:
            rtp_len = len(datagram) - self._footer
            sbn, esi, k = self._unpack_footer(datagram, rtp_len)
            if esi >= k:
                self.malformed += 1
                return
            self._fec_k = k
        else:
            rtp_len = len(datagram)
        _b0, b1, seq, ts, ssrc = _HEADER.unpack_from(datagram)
        if _b0 == 0x80:  # Roc's bare header: no CSRC, extension or padding
            payload: Buffer = memoryview(datagram)[RTP_HEADER_SIZE:rtp_len]
            size = rtp_len - RTP_HEADER_SIZE
            if size <= 0 or size % self._frame_bytes:
                self.malformed += 1
                return
            self._packet_samples = size // self._frame_bytes
        else:
            parsed = self._payload(datagram, rtp_len)
            if parsed is None:
                return
            payload = parsed
        ext = self._filter.check(ssrc, b1 & 0x7F, seq, ts)
        if ext is None:
            return
        ext_seq, ext_ts = ext
        if not self._meter.on_packet(ext_seq, ext_ts, now_ns):
            return
        self._place(ext_ts, payload, now_ns)
        if fec is None:
            return
        for rtp in fec.feed_source_id(datagram[:rtp_len], sbn, esi, k, ext_seq):
            self._place_rebuilt(rtp, now_ns)

    def on_repair(self, datagram: bytes, now_ns: int) -> None:
        """A repair datagram from this sender's address."""
        if self._fec is None:
            return
        for rtp in self._fec.feed_repair(datagram):
            self._place_rebuilt(rtp, now_ns)

    def _payload(self, rtp: bytes, rtp_len: int) -> Buffer | None:
        """The L16 payload of the RTP packet in rtp[:rtp_len], or None (counted) if bad."""
        if rtp[0] == 0x80:  # Roc's bare header: no CSRC, extension or padding
            payload: Buffer = memoryview(rtp)[RTP_HEADER_SIZE:rtp_len]
        else:
            try:
                payload = RtpPacket.parse(rtp[:rtp_len]).payload
            except MalformedPacket:
                self.malformed += 1
                return None
        size = len(payload)
        if size == 0 or size % self._frame_bytes:
            self.malformed += 1
            return None
        return payload

    def _place_rebuilt(self, rtp: bytes, now_ns: int) -> None:
        if len(rtp) < RTP_HEADER_SIZE or rtp[0] >> 6 != 2:
            self.malformed += 1
            return
        payload = self._payload(rtp, len(rtp))
        if payload is None:
            return
        _b0, b1, seq, ts, ssrc = _HEADER.unpack_from(rtp)
        ext = self._filter.check(ssrc, b1 & 0x7F, seq, ts)
        if ext is not None and self._place(ext[1], payload, now_ns):
            self.recovered += 1

    def _place(self, ext_ts: int, payload: Buffer, now_ns: int) -> bool:
        result = self._buffer.write(ext_ts, payload, now_ns)
        if result is WriteResult.PLACED or result is WriteResult.TRIMMED:
            return True
        if result is WriteResult.LATE:
            self.late += 1
            self._drops = True
        elif result is WriteResult.DUPLICATE:
            self.duplicated += 1
        else:
            self.overruns += 1
        return False

    # Frames out.

    def read(self, n: int, now_ns: int) -> npt.NDArray[np.float32] | None:
        """The session's next `n` output frames, or None while buffering or once ended.

        After a read that ends the session, `end_reason` says why (the frame of that read is
        still returned when there is one)."""
        if self.end_reason is not None:
            return None
        if self._fec is not None:
            # Decodes that waited for this period's FEC budget (before the frame is read,
            # so what they rebuild can still be played).
            for rtp in self._fec.poll():
                self._place_rebuilt(rtp, now_ns)
        buffer = self._buffer
        if self.state is SessionState.BUFFERING:
            # Start when the queue holds the target, reading from the target plus this
            # frame before its end (see JitterBuffer.try_start_exact): the latency left
            # after the frame (what is measured and tuned) starts at the target to the
            # sample, so the tuner has no start-up offset to remove (the gradual profile
            # takes about a minute to remove one packet's worth).
            frame = ceil(n * self._stream_per_output)
            if not buffer.try_start_exact(self._target, self._target + frame):
                self._watch(n, blank=True, incomplete=False)
                return None
            self.state = SessionState.PLAYING
            assert buffer.pos is not None
            self._play_pos = float(buffer.pos)
        tuner = self._tuner
        resampler = self._resampler
        if resampler is None:
            out = self._depacketizer.read(n)
            consumed = float(n)
        else:
            old_ratio = self._ratio
            ratio = self._base_ratio / tuner.coefficient if self._drift else self._base_ratio
            if ratio != old_ratio:
                resampler.ratio = self._ratio = ratio
            out = resampler.read(n)
            # libsamplerate ramps the ratio linearly across the block.
            consumed = 0.5 * n * (1.0 / old_ratio + 1.0 / ratio)
        self._play_pos += consumed
        # Latency after the frame, as Roc's latency monitor measures it: the queue left for
        # the next frame. The tuner keeps this at the target.
        end = buffer.newest_end
        assert end is not None
        stalling = now_ns - buffer.newest_arrival_ns
        niq = end - self._play_pos
        self._out_clock += n * self._stream_per_output
        lag = self._out_clock - end
        self._latency = latency = self._smoother.update(niq, lag, n / self._out_rate)
        status = tuner.update(niq, stalling_ns=stalling, tuned=latency)
        if status is LatencyStatus.OUT_OF_BOUNDS:
            self.end_reason = EndReason.LATENCY_OUT_OF_BOUNDS
            return out
        played = n * self._stream_per_output + self._advance_rest
        whole = int(played)
        self._advance_rest = played - whole
        tuner.advance(whole)
        if self.config.adaptive is not None:
            self._adapt(now_ns)
        blank, incomplete, underrun = self._depacketizer.take_flags()
        if underrun:
            self.underruns += 1
        self._watch(n, blank=blank, incomplete=incomplete)
        return out

    def _adapt(self, now_ns: int) -> None:
        """Let the adaptive policy move the target from the link's jitter (see
        AdaptiveLatency); the tuner then walks the queue there by resampling."""
        adaptive = self._adaptive
        if adaptive is None:
            assert self.config.adaptive is not None
            adaptive = self._adaptive = AdaptiveLatency(self.config.adaptive, now_ns)
        ns_per_sample = _NS / self._rate
        meter = self._meter
        packet = self._packet_samples
        new = adaptive.update(
            now_ns,
            mean_jitter_ns=meter.jitter * ns_per_sample,
            peak_jitter_ns=meter.peak_jitter * ns_per_sample,
            fec_block_ns=int(self._fec_k * packet * ns_per_sample),
            stable=abs(self._tuner.coefficient - 1.0) < 0.001,
        )
        if new is not None:
            self._tuner.slew_to(new)  # the bounds stay those of the adaptive range
            self.retargets += 1

    def _watch(self, n: int, *, blank: bool, incomplete: bool) -> None:
        verdict = self._watchdog.update(n, blank=blank, incomplete=incomplete, drops=self._drops)
        self._drops = False
        if verdict is WatchdogVerdict.NO_PLAYBACK:
            self.end_reason = EndReason.NO_PLAYBACK
        elif verdict is WatchdogVerdict.CHOPPY_PLAYBACK:
            self.end_reason = EndReason.CHOPPY_PLAYBACK

    # Observation.

    @property
    def niq_latency(self) -> float:
        """NIQ latency in stream samples (the queued span while buffering)."""
        buffer = self._buffer
        if buffer.newest_end is None:
            return 0.0
        if self.state is SessionState.BUFFERING:
            return float(buffer.span)
        return buffer.newest_end - self._play_pos

    @property
    def latency(self) -> float:
        """The latency the tuner holds at the target (stream samples): the NIQ latency
        without its packet sawtooth (`NiqSmoother`); the NIQ latency until the first
        frame is played."""
        if self._latency is None or self.state is SessionState.BUFFERING:
            return self.niq_latency
        return self._latency

    @property
    def concealed_samples(self) -> int:
        return self._depacketizer.concealed

    @property
    def tuner(self) -> LatencyTuner:
        return self._tuner

    def metrics(self) -> SessionMetrics:
        rate = self.encoding.rate
        meter = self._meter
        resampler = self._resampler
        return SessionMetrics(
            ssrc=self.ssrc,
            address=self.address,
            payload_type=self.encoding.payload_type,
            state=self.state,
            latency_ms=self.latency * 1000.0 / rate,
            target_ms=self._tuner.target_ns / 1e6,
            jitter_ms=meter.jitter * 1000.0 / rate,
            received=meter.received,
            lost=meter.lost,
            recovered=self.recovered,
            late=self.late,
            duplicated=self.duplicated + meter.duplicated,
            filtered=self._filter.stats.total,
            malformed=self.malformed + (self._fec.stats.malformed if self._fec else 0),
            concealed_samples=self._depacketizer.concealed,
            drift_ppm=self._tuner.drift_ppm,
            resampler_ratio=self._ratio if resampler is not None else 1.0,
            underruns=self.underruns,
            overruns=self.overruns,
            rtcp_foreign=self.rtcp_foreign,
            fec=self.fec_stats(),
        )

    @property
    def fec_reader(self) -> FecReader | None:
        """The session's FEC reader (None without FEC), for inspection."""
        return self._fec

    def fec_stats(self) -> FecStats | None:
        """What the FEC reader refused, decoded and holds (None without FEC)."""
        fec = self._fec
        if fec is None:
            return None
        st = fec.stats
        geometry = fec.geometry
        return FecStats(
            source_received=st.source_received,
            repair_received=st.repair_received,
            recovered=st.recovered,
            unrepaired_blocks=st.unrepaired_blocks,
            inconsistent=st.inconsistent,
            misaligned=st.misaligned,
            late=st.late,
            outside_window=st.outside_window,
            stragglers=st.stragglers,
            duplicates=st.duplicates,
            overtaken=st.overtaken,
            resets=st.resets,
            decodes=st.decodes,
            decode_failures=st.decode_failures,
            deferred=st.deferred,
            too_costly=st.too_costly,
            block_k=geometry[0] if geometry else 0,
            block_n=geometry[1] if geometry else 0,
            symbol_bytes=geometry[2] if geometry else 0,
            window_blocks=fec.window_blocks,
            held_blocks=fec.held_blocks,
        )

    @property
    def playback_timestamp(self) -> int | None:
        """RTP timestamp (32-bit, stream rate) of the next sample to play; None while
        buffering."""
        if self.state is SessionState.BUFFERING:
            return None
        return int(self._play_pos) & 0xFFFF_FFFF

    def reception(
        self, now_ns: int, *, wall_ns: int | None = None, clock: SenderClock | None = None
    ) -> ReceptionStats:
        """What the RTCP reporter needs about this stream at `now_ns`.

        With the sender's clock mapping (from its SR) and the wall time (Unix ns) at which
        the next sample will be heard, the end-to-end latency is filled in too.
        """
        meter = self._meter
        first = meter.first_seq if meter.first_seq is not None else 0
        highest = meter.highest_seq if meter.highest_seq is not None else first
        playing = self.state is SessionState.PLAYING
        e2e = None
        position = self.playback_timestamp
        if wall_ns is not None and clock is not None and position is not None:
            e2e = wall_ns - clock.capture_ns(position, self.encoding.rate)
        return ReceptionStats(
            ssrc=self.ssrc,
            first_seq=first & 0xFFFF,
            ext_highest_seq=highest,
            expected_packets=meter.expected,
            lost_packets=meter.lost,
            jitter=int(meter.jitter),
            niq_latency_ns=round(self.niq_latency * _NS / self.encoding.rate) if playing else None,
            niq_stalling_ns=max(0, now_ns - self._buffer.newest_arrival_ns) if playing else None,
            e2e_latency_ns=e2e,
        )

    def set_latency_bounds(self, min_ns: int, max_ns: int) -> None:
        """Change the latency bounds of a live session (between two reads, no gap).

        With an adaptive target, [min, max] is the range the target moves in, and the
        session restarts only beyond it by the tolerance (as at its start); with a fixed
        target, the session restarts outside [min, max]."""
        if not 0 <= min_ns < max_ns:
            raise ValueError(f"need 0 <= min ({min_ns} ns) < max ({max_ns} ns)")
        if self.config.adaptive is None:
            self._tuner.set_bounds(min_ns, max_ns)
            return
        tolerance = self._tuner.tolerance_ns
        self._tuner.set_bounds(max(0, min_ns - tolerance), max_ns + tolerance)
        if self._adaptive is not None:
            self._adaptive.min_ns, self._adaptive.max_ns = min_ns, max_ns
