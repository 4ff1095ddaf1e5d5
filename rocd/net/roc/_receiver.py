"""The receiver: datagrams of any number of senders in, one mixed output signal out (sans-IO).

An endpoint's I/O layer feeds it what its sockets receive (`on_source`, `on_repair`) and
its audio side pulls frames (`read`); all three take the current time in ns and nothing
here reads a clock, so tests run minutes of streaming on virtual time.

Sessions (ROC_PROTOCOL.md §1.3, §7.1): one per sender, created by its first source packet
of a known payload type, identified by its SSRC and bound to the UDP address it came from.
Repair packets carry no SSRC and are routed by address, which is why a sender must send
both from one socket. A source packet that contradicts this binding (a known SSRC from
another address, another SSRC from a session's address) is dropped and counted: as in
Roc, a sender that restarts with a new SSRC is heard again once the watchdog has ended its
old session. Sessions end by the watchdog, by leaving the latency bounds, or by the
caller (`end_session`, for RTCP BYE or timeout); `pop_ended` reports them, with reasons.

The output is the sum of all playing sessions (no clipping: float32 may exceed +-1; the
sink clips). Malformed datagrams and strangers are counted (`counters`) and dropped; no
method raises on bad input.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from ._encoding import EncodingMap
from ._fec_codec import default_codec
from ._fec_reader import FecBudget
from ._receiver_session import ReceiverSession
from ._receiver_types import (
    Address,
    EndedSession,
    EndReason,
    ReceiverConfig,
    ReceiverCounters,
    SessionMetrics,
)
from ._reception_stats import ReceptionStats
from ._rtcp_receiver import SenderClock
from ._rtp import RTP_HEADER_SIZE

__all__ = ["Receiver"]

_SSRC = struct.Struct(">I")


class Receiver:
    """Sessions of every sender of one endpoint, and their mix; see the module docstring.

    `encodings` maps payload types to encodings (Roc's built-ins by default); nothing on
    the wire says which one a sender uses beyond the payload type.
    """

    def __init__(
        self, config: ReceiverConfig | None = None, *, encodings: EncodingMap | None = None
    ) -> None:
        self.config = config if config is not None else ReceiverConfig()
        self.encodings = encodings if encodings is not None else EncodingMap()
        self.counters = ReceiverCounters()
        fec = self.config.fec
        self._codec = default_codec(fec) if fec is not None else None
        self.fec_budget = FecBudget()
        """Decode work per output period, shared by every session (refilled by `read`)."""
        self._min_size = RTP_HEADER_SIZE + (fec.source_footer_size if fec is not None else 0)
        self._by_ssrc: dict[int, ReceiverSession] = {}
        self._by_address: dict[Address, ReceiverSession] = {}
        self._ended: list[EndedSession] = []

    # Datagrams in.

    def on_source(self, datagram: bytes, src_addr: Address, now_ns: int) -> None:
        """A datagram that arrived on the source endpoint from `src_addr`."""
        if len(datagram) <= self._min_size or datagram[0] >> 6 != 2:
            self.counters.malformed += 1
            return
        ssrc = _SSRC.unpack_from(datagram, 8)[0]
        session = self._by_ssrc.get(ssrc)
        if session is None:
            session = self._new_session(ssrc, datagram[1] & 0x7F, src_addr)
            if session is None:
                return
        elif session.address != src_addr:
            self.counters.ssrc_mismatch += 1
            return
        pt = datagram[1] & 0x7F
        if pt != session.encoding.payload_type and pt not in self.encodings:
            self.counters.unknown_payload_type += 1
            return
        session.on_source(datagram, now_ns)

    def on_repair(self, datagram: bytes, src_addr: Address, now_ns: int) -> None:
        """A datagram that arrived on the repair endpoint from `src_addr`."""
        if self.config.fec is None:
            self.counters.unexpected_repair += 1
            return
        session = self._by_address.get(src_addr)
        if session is None:
            self.counters.unknown_sender += 1
            return
        session.on_repair(datagram, now_ns)

    def _new_session(
        self, ssrc: int, payload_type: int, address: Address
    ) -> ReceiverSession | None:
        counters = self.counters
        if address in self._by_address:
            counters.ssrc_mismatch += 1
            return None
        encoding = self.encodings.get(payload_type)
        if encoding is None:
            counters.unknown_payload_type += 1
            return None
        if len(self._by_ssrc) >= self.config.max_sessions:
            counters.session_limit += 1
            return None
        try:
            session = ReceiverSession(
                ssrc, address, encoding, self.config, codec=self._codec, fec_budget=self.fec_budget
            )
        except ValueError:  # channels that cannot be mapped to the output's
            counters.unknown_payload_type += 1
            return None
        self._by_ssrc[ssrc] = session
        self._by_address[address] = session
        counters.sessions_created += 1
        return session

    # Frames out.

    def read(self, n_frames: int, now_ns: int) -> npt.NDArray[np.float32]:
        """The next `n_frames` output frames: the mix of every session, shape
        (n_frames, channels), float32, a fresh array the caller owns. Sessions that must end
        are removed here (see `pop_ended`)."""
        if n_frames < 0:
            raise ValueError(f"n_frames must be >= 0, got {n_frames}")
        self.fec_budget.refill()
        out: npt.NDArray[np.float32] | None = None
        ended: list[ReceiverSession] = []
        for session in self._by_ssrc.values():
            frames = session.read(n_frames, now_ns) if n_frames else None
            if session.end_reason is not None:
                ended.append(session)
            if frames is None:
                continue
            out = frames if out is None else out + frames
        for session in ended:
            assert session.end_reason is not None
            self._remove(session, session.end_reason)
        if out is None:
            return np.zeros((n_frames, self.config.channels), dtype=np.float32)
        return out

    # Sessions.

    def end_session(self, ssrc: int, reason: EndReason) -> bool:
        """Remove the session of `ssrc` (RTCP BYE, control timeout); False if unknown."""
        session = self._by_ssrc.get(ssrc)
        if session is None:
            return False
        session.end_reason = reason
        self._remove(session, reason)
        return True

    def close(self) -> None:
        """End every session (reason CLOSED)."""
        for ssrc in list(self._by_ssrc):
            self.end_session(ssrc, EndReason.CLOSED)

    def _remove(self, session: ReceiverSession, reason: EndReason) -> None:
        del self._by_ssrc[session.ssrc]
        if self._by_address.get(session.address) is session:
            del self._by_address[session.address]
        self.counters.sessions_ended += 1
        self._ended.append(
            EndedSession(
                ssrc=session.ssrc,
                address=session.address,
                reason=reason,
                metrics=session.metrics(),
            )
        )

    def pop_ended(self) -> list[EndedSession]:
        """Sessions removed since the last call, oldest first."""
        ended, self._ended = self._ended, []
        return ended

    @property
    def session_count(self) -> int:
        return len(self._by_ssrc)

    def session(self, ssrc: int) -> ReceiverSession | None:
        """The live session of `ssrc`, if any."""
        return self._by_ssrc.get(ssrc)

    def metrics(self) -> list[SessionMetrics]:
        """A snapshot of every live session, in creation order."""
        return [s.metrics() for s in self._by_ssrc.values()]

    def reception(
        self,
        now_ns: int,
        *,
        wall_ns: int | None = None,
        clocks: Mapping[int, SenderClock] | None = None,
    ) -> dict[int, ReceptionStats]:
        """What the RTCP reporter needs, per sender SSRC (`ReceiverReporter.poll`'s `stats`).

        `clocks` (sender SSRC -> its SR mapping, `ReceiverReporter.sender_clock`) and
        `wall_ns` (Unix ns at which the next output sample is heard) give e2e latencies.
        """
        clocks = clocks or {}
        return {
            ssrc: s.reception(now_ns, wall_ns=wall_ns, clock=clocks.get(ssrc))
            for ssrc, s in self._by_ssrc.items()
        }
