"""The receiving side on Trio: UDP endpoints -> `Receiver` -> a frame sink.

One socket per bound endpoint (source, repair, control), as roc-recv does; RTCP reports go
back from the control socket to the address of each sender's last RTCP (§6.1).

The link never waits on its sockets: before each output chunk it drains everything that
arrived, each datagram stamped by the kernel with its arrival time (see `UdpEndpoint`), so
a stream costs one wake-up per 10 ms instead of one per datagram. Packets are needed only
when their time comes to be played, which is at least the target latency later.

Playback: a clocked sink (a sound device) sets the pace: each `write` returns when the
device has room, and the next frames are read from the receiver right then. An unclocked
sink (a file) is held to real time by a `Pacer` at the output rate and stepped by a
`Ticker` (shared or the link's own), so a file records exactly what a speaker would have
played, silence included.

An unclocked sink is also read on time exactly, whenever the tick comes: each read has a
nominal time on the pacer's schedule, and only the datagrams that arrived (kernel
timestamp) before it are fed to the receiver first; later ones wait for the next read. A
tick that is late (a busy machine delays a process by milliseconds) thus changes nothing
in what is played, where it used to let the next burst of packets into the queue early
(at a 10 ms target, out of the latency bounds). The reads are moreover placed at a fixed
point of the sender's 10 ms period of bursts (`ReadPhase`), learned while no session
plays (and only moved later once one plays), so a burst may be up to 7.5 ms late and
still make the read it belongs to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import trio

from ._encoding import NS_PER_SECOND
from ._endpoint import EndpointSet, Interface
from ._errors import MalformedPacket
from ._pacer import Pacer
from ._read_phase import ReadPhase
from ._receiver import Receiver
from ._receiver_types import EndReason, SessionState
from ._rtcp_receiver import ReceiverReporter
from ._send_link import RTCP_DRAIN_TICKS, SampleSpecLike
from ._ticker import CONSUME, Ticker, now_ns
from ._udp import Address, UdpEndpoint

__all__ = ["FrameOutput", "RecvLink"]

log = logging.getLogger("rocd.net.roc.recv")

DEFAULT_CHUNK_NS = 10_000_000  # Roc's I/O frame: 10 ms

RTCP_PER_DRAIN = 32
"""RTCP datagrams handled per drain of the control socket (a flood waits in the kernel's
buffer, which drops the excess, instead of stalling the audio path): 64 senders send
~3 a tick."""

#: on_event(kind, data): "session.started" / "session.ended" with the SSRC and the reason
#: (and, when it ended, the session's last `metrics`).
SessionEvents = Callable[[str, dict[str, Any]], None]

#: A datagram drained but not fed yet: (arrival ns, is a source packet, data, sender).
_Pending = tuple[int, bool, bytes, Any]


#: How far off its phase a paced read may be before it is moved (ns): arrivals wander by
#: tens of microseconds, and each move shifts where silence is played while buffering.
_PHASE_SLACK_NS = 250_000


def _arrival(item: _Pending) -> int:
    return item[0]


class FrameOutput(Protocol):
    """What a RecvLink writes: float32 frames shaped (n, channels)."""

    @property
    def spec(self) -> SampleSpecLike: ...

    @property
    def clocked(self) -> bool: ...

    async def write(self, frames: npt.NDArray[np.float32]) -> None: ...


class RecvLink:
    """Receives one Roc slot (source + optional repair + optional control endpoints)."""

    def __init__(
        self,
        receiver: Receiver,
        endpoints: EndpointSet,
        *,
        reporter: ReceiverReporter | None = None,
        ticker: Ticker | None = None,
        chunk_ns: int = DEFAULT_CHUNK_NS,
        wall_ns: Callable[[], int] = time.time_ns,
        output_latency_ns: int = 0,
        multicast_iface: str | None = None,
        on_event: SessionEvents | None = None,
    ) -> None:
        self.receiver = receiver
        self.endpoints = endpoints
        self.reporter = reporter
        self.ticker = ticker
        self.chunk_ns = chunk_ns
        self.output_latency_ns = output_latency_ns
        self.multicast_iface = multicast_iface
        self._wall_ns = wall_ns
        self._on_event = on_event
        self.sockets: dict[Interface, UdpEndpoint] = {}
        self.malformed_rtcp = 0
        self.sessions_seen = 0
        self._known: set[int] = set()
        #: Sessions not playing yet: SSRC -> when their first packet was read (ns).
        self._waiting: dict[int, int] = {}
        self._ticks = 0
        self.all_ended = trio.Event()  # set when sessions existed and none is left

    async def run(
        self,
        sink: FrameOutput,
        *,
        task_status: trio.TaskStatus[dict[Interface, Address]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Bind the endpoints, report the bound addresses, play until cancelled.

        Bind errors (port in use, bad address) are raised before `started`. On
        cancellation the sockets close at once; the sink's owner finishes the sink.
        """
        try:
            task_status.started(await self.open())
            chunk = max(1, sink.spec.rate * self.chunk_ns // 1_000_000_000)
            if sink.clocked:
                await self._play_clocked(sink, chunk)
            elif self.ticker is not None:
                await self._play_ticked(sink, chunk, self.ticker)
            else:
                async with trio.open_nursery() as nursery:
                    ticker = await nursery.start(Ticker(self.chunk_ns).run)
                    await self._play_ticked(sink, chunk, ticker)
        finally:
            self.close()

    # -- driven from outside (a `MixLink` playing several links into one sink) --------

    async def open(self) -> dict[Interface, Address]:
        """Bind the endpoints (once); the bound address of each. Bind errors (port in use,
        bad address) are raised, and nothing stays bound then."""
        if not self.sockets:
            try:
                for interface in Interface:
                    endpoint = self.endpoints.endpoint(interface)
                    if endpoint is None:
                        continue
                    self.sockets[interface] = await UdpEndpoint.bind(
                        endpoint.address,
                        multicast_iface=self.multicast_iface,
                        max_datagram=2048 if interface is not Interface.CONTROL else 65535,
                        timestamps=True,
                        gro=interface is not Interface.CONTROL,
                    )
            except BaseException:
                self.close()
                raise
        return {i: s.local for i, s in self.sockets.items()}

    @property
    def fds(self) -> list[int]:
        """The bound sockets' file descriptors (for a ticker to `watch`)."""
        return [udp.fd for udp in self.sockets.values()]

    def pull(self, frames: int, now: int, ticker: Ticker | None = None) -> npt.NDArray[np.float32]:
        """Take what arrived, then the next `frames` output frames (the mix of this
        link's sessions); reports and session tracking as in `run`. With `ticker`, only
        the sockets it saw readable are read (see `_take_datagrams`)."""
        self._ticks += 1
        self._take_datagrams(now, ticker)
        out = self.receiver.read(frames, now)
        self._after_read(now)
        return out

    def close(self) -> None:
        """Close the sockets and end every session (idempotent)."""
        for udp in self.sockets.values():
            udp.close()
        self.receiver.close()

    async def _play_clocked(self, sink: FrameOutput, chunk: int) -> None:
        while True:
            self._ticks += 1
            now = now_ns()
            self._take_datagrams(now)
            frames = self.receiver.read(chunk, now)
            self._after_read(now)
            await sink.write(frames)

    async def _play_ticked(self, sink: FrameOutput, chunk: int, ticker: Ticker) -> None:
        rate = sink.spec.rate
        start = ticker.pacer_start_ns(now_ns())
        pacer = Pacer(rate, start, chunk_samples=chunk, max_lag_ns=10**9)
        phase = ReadPhase(chunk * NS_PER_SECOND // rate)
        pending: list[_Pending] = []
        receiver = self.receiver

        def keep_source(data: bytes, source: Any, arrival: int) -> None:
            pending.append((arrival, True, data, source))

        def keep_repair(data: bytes, source: Any, arrival: int) -> None:
            pending.append((arrival, False, data, source))

        async def step(now: int) -> bool:
            self._ticks += 1
            if receiver.session_count == 0 and not pending:
                phase.reset()  # between senders: the next one has its own phase
            wall = self._wall_ns()
            sockets = self.sockets
            udp = sockets.get(Interface.SOURCE)
            if udp is not None and ticker.readable(udp.fd):
                udp.drain_to(keep_source, now, wall)
            udp = sockets.get(Interface.REPAIR)
            if udp is not None and ticker.readable(udp.fd):
                udp.drain_to(keep_repair, now, wall)
            if len(pending) > 1:
                pending.sort(key=_arrival)  # two sockets: one order of arrival
            self._take_control(now, wall, ticker)
            if pending:
                for arrival, is_source, _data, _source in pending:
                    if is_source:
                        phase.arrival(arrival)
                # While a session plays, reads only move later (none is skipped).
                shift = phase.shift_ns(pacer.deadline_ns, later_only=self._playing())
                if abs(shift) > _PHASE_SLACK_NS:
                    pacer.shift(shift)
            for _ in range(pacer.due(now)):
                read_ns = pacer.deadline_ns
                self._feed(pending, read_ns)
                frames = receiver.read(chunk, read_ns)
                pacer.sent(chunk)
                await sink.write(frames)
            self._after_read(now)
            return False

        fds = [udp.fd for udp in self.sockets.values()]
        for fd in fds:
            ticker.watch(fd)
        try:
            await ticker.attach(step, stage=CONSUME).wait()
        finally:
            for fd in fds:
                ticker.unwatch(fd)

    def _feed(self, pending: list[_Pending], until_ns: int) -> None:
        """Hand the receiver the pending datagrams that arrived by `until_ns`."""
        receiver = self.receiver
        fed = 0
        for arrival, is_source, data, source in pending:
            if arrival > until_ns:
                break
            if is_source:
                receiver.on_source(data, source, arrival)
            else:
                receiver.on_repair(data, source, arrival)
            fed += 1
        del pending[:fed]

    def _playing(self) -> bool:
        """Whether a session plays (the read phase is then kept as it is)."""
        receiver = self.receiver
        for ssrc in self._known:
            session = receiver.session(ssrc)
            if session is not None and session.state is SessionState.PLAYING:
                return True
        return False

    def _take_datagrams(self, now: int, ticker: Ticker | None = None) -> None:
        """Drain the sockets into the receiver (a clocked sink's loop, or `pull`); on a
        ticker, only those it saw readable."""
        wall = self._wall_ns()
        receiver = self.receiver
        sockets = self.sockets
        udp = sockets.get(Interface.SOURCE)
        if udp is not None and (ticker is None or ticker.readable(udp.fd)):
            udp.drain_to(receiver.on_source, now, wall)
        udp = sockets.get(Interface.REPAIR)
        if udp is not None and (ticker is None or ticker.readable(udp.fd)):
            udp.drain_to(receiver.on_repair, now, wall)
        self._take_control(now, wall, ticker)

    def _take_control(self, now: int, wall: int, ticker: Ticker | None) -> None:
        """Receiver reports: on a ticker when it saw the socket readable (a report is then
        handled at most one tick after it came), else every RTCP_DRAIN_TICKS reads."""
        receiver = self.receiver
        control = self.sockets.get(Interface.CONTROL)
        if (
            control is not None
            and self.reporter is not None
            and (
                self._ticks % RTCP_DRAIN_TICKS == 0
                if ticker is None
                else ticker.readable(control.fd)
            )
        ):
            for data, source, arrival in control.drain(now, wall, RTCP_PER_DRAIN):
                try:
                    ended = self.reporter.handle(
                        data, source, arrival, wall - (now - arrival), sessions=receiver.session
                    )
                except MalformedPacket:
                    self.malformed_rtcp += 1
                    continue
                for end in ended:
                    receiver.end_session(end.ssrc, EndReason.BYE)

    def _after_read(self, now: int) -> None:
        self._track_sessions(now)
        if self.reporter is not None and Interface.CONTROL in self.sockets:
            deadline = self.reporter.deadline_ns
            if deadline is None or now >= deadline:
                self._report(now)

    def _report(self, now: int) -> None:
        reporter = self.reporter
        assert reporter is not None
        wall = self._wall_ns()
        clocks = {}
        for ssrc in self._known:
            clock = reporter.sender_clock(ssrc)
            if clock is not None:
                clocks[ssrc] = clock
        stats = self.receiver.reception(now, wall_ns=wall + self.output_latency_ns, clocks=clocks)
        reports, ended = reporter.poll(now, wall, stats)
        control = self.sockets[Interface.CONTROL]
        for report in reports:
            address = report.address
            if isinstance(address, tuple):
                control.send(report.data, (str(address[0]), int(address[1])))
        for end in ended:
            reason = EndReason.BYE if end.reason == "bye" else EndReason.INACTIVE
            self.receiver.end_session(end.ssrc, reason)

    def _track_sessions(self, now: int) -> None:
        receiver = self.receiver
        ended = receiver.pop_ended()
        for end in ended:
            self._known.discard(end.ssrc)
            self._waiting.pop(end.ssrc, None)
            if self.reporter is not None:
                self.reporter.forget(end.ssrc)
            log.info("session %08x ended: %s", end.ssrc, end.reason)
            self._emit(
                "session.ended",
                {"ssrc": end.ssrc, "reason": str(end.reason), "metrics": end.metrics},
            )
        if ended or receiver.session_count != len(self._known):
            current = {m.ssrc for m in receiver.metrics()}
            for ssrc in current - self._known:
                self.sessions_seen += 1
                session = receiver.session(ssrc)
                address = None if session is None else session.address
                log.info("session %08x started (from %s)", ssrc, address)
                self._waiting[ssrc] = now
                self._emit("session.started", {"ssrc": ssrc, "address": address})
            self._known = current
        if self._waiting:
            self._note_playing(now)
        if self.sessions_seen and not self._known:
            self.all_ended.set()

    def _note_playing(self, now: int) -> None:
        """Log each new session once it plays: how long it buffered after its first packet
        was read (its target latency, less what its first packets held, and the phase of
        the reads); what a stream's start-up costs is read from these lines."""
        for ssrc, since in list(self._waiting.items()):
            session = self.receiver.session(ssrc)
            if session is None:
                del self._waiting[ssrc]
            elif session.state is SessionState.PLAYING:
                del self._waiting[ssrc]
                log.info(
                    "session %08x playing, %.1f ms after its first packet was read",
                    ssrc,
                    (now - since) / 1e6,
                )

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(kind, data)
