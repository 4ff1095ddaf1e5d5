"""The receiving side on Trio: UDP endpoints -> `Receiver` -> a frame sink.

One socket per bound endpoint (source, repair, control), as roc-recv does; RTCP reports go
back from the control socket to the address of each sender's last RTCP (§6.1). Each
socket task waits once and then feeds every queued datagram, stamped with its arrival time.

Playback: a clocked sink (a sound device) sets the pace: each `write` returns when the
device has room, and the next frames are read from the receiver right then. An unclocked
sink (a file) is held to real time by a `Pacer` at the output rate, so a file records
exactly what a speaker would have played, silence included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import trio

from ._endpoint import EndpointSet, Interface
from ._errors import MalformedPacket
from ._pacer import Pacer
from ._receiver import Receiver
from ._receiver_types import EndReason
from ._rtcp_receiver import ReceiverReporter
from ._send_link import SampleSpecLike
from ._udp import Address, UdpEndpoint

__all__ = ["FrameOutput", "RecvLink"]

log = logging.getLogger("rocd.net.recv")

DEFAULT_CHUNK_NS = 10_000_000  # Roc's I/O frame: 10 ms

#: on_event(kind, data): "session.started" / "session.ended" with the SSRC and the reason.
SessionEvents = Callable[[str, dict[str, Any]], None]


class FrameOutput(Protocol):
    """What a RecvLink writes: float32 frames shaped (n, channels)."""

    @property
    def spec(self) -> SampleSpecLike: ...

    @property
    def clocked(self) -> bool: ...

    async def write(self, frames: npt.NDArray[np.float32]) -> None: ...


def _monotonic_ns() -> int:
    return round(trio.current_time() * 1e9)


class RecvLink:
    """Receives one Roc slot (source + optional repair + optional control endpoints)."""

    def __init__(
        self,
        receiver: Receiver,
        endpoints: EndpointSet,
        *,
        reporter: ReceiverReporter | None = None,
        chunk_ns: int = DEFAULT_CHUNK_NS,
        wall_ns: Callable[[], int] = time.time_ns,
        output_latency_ns: int = 0,
        multicast_iface: str | None = None,
        on_event: SessionEvents | None = None,
    ) -> None:
        self.receiver = receiver
        self.endpoints = endpoints
        self.reporter = reporter
        self.chunk_ns = chunk_ns
        self.output_latency_ns = output_latency_ns
        self.multicast_iface = multicast_iface
        self._wall_ns = wall_ns
        self._on_event = on_event
        self.sockets: dict[Interface, UdpEndpoint] = {}
        self.malformed_rtcp = 0
        self.sessions_seen = 0
        self._known: set[int] = set()
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
            for interface in Interface:
                endpoint = self.endpoints.endpoint(interface)
                if endpoint is None:
                    continue
                self.sockets[interface] = await UdpEndpoint.bind(
                    endpoint.address,
                    multicast_iface=self.multicast_iface,
                    max_datagram=2048 if interface is not Interface.CONTROL else 65535,
                )
            async with trio.open_nursery() as nursery:
                receiver = self.receiver
                for interface, feed in (
                    (Interface.SOURCE, receiver.on_source),
                    (Interface.REPAIR, receiver.on_repair),
                ):
                    if interface in self.sockets:
                        nursery.start_soon(self._pump, self.sockets[interface], feed)
                if Interface.CONTROL in self.sockets and self.reporter is not None:
                    nursery.start_soon(self._control, self.sockets[Interface.CONTROL])
                    nursery.start_soon(self._report_loop, self.sockets[Interface.CONTROL])
                task_status.started({i: s.local for i, s in self.sockets.items()})
                if sink.clocked:
                    await self._play_clocked(sink)
                else:
                    await self._play_paced(sink)
        finally:
            for udp in self.sockets.values():
                udp.close()
            receiver = self.receiver
            receiver.close()

    async def _pump(self, udp: UdpEndpoint, feed: Callable[[bytes, Address, int], None]) -> None:
        while True:
            batch = await udp.receive()
            now = _monotonic_ns()
            for data, source in batch:
                feed(data, source, now)

    async def _play_clocked(self, sink: FrameOutput) -> None:
        chunk = max(1, sink.spec.rate * self.chunk_ns // 1_000_000_000)
        while True:
            frames = self.receiver.read(chunk, _monotonic_ns())
            self._track_sessions()
            await sink.write(frames)

    async def _play_paced(self, sink: FrameOutput) -> None:
        rate = sink.spec.rate
        chunk = max(1, rate * self.chunk_ns // 1_000_000_000)
        pacer = Pacer(rate, _monotonic_ns(), chunk_samples=chunk, max_lag_ns=1_000_000_000)
        while True:
            await trio.sleep_until(pacer.deadline_ns / 1e9)
            for _ in range(pacer.due(_monotonic_ns())):
                frames = self.receiver.read(chunk, _monotonic_ns())
                pacer.sent(chunk)
                self._track_sessions()
                await sink.write(frames)

    def _track_sessions(self) -> None:
        receiver = self.receiver
        if receiver.session_count != len(self._known):
            current = {m.ssrc for m in receiver.metrics()}
            for ssrc in current - self._known:
                self.sessions_seen += 1
                session = receiver.session(ssrc)
                address = None if session is None else session.address
                log.info("session %08x started (from %s)", ssrc, address)
                self._emit("session.started", {"ssrc": ssrc, "address": address})
            self._known = current
        for ended in receiver.pop_ended():
            self._known.discard(ended.ssrc)
            if self.reporter is not None:
                self.reporter.forget(ended.ssrc)
            log.info("session %08x ended: %s", ended.ssrc, ended.reason)
            self._emit("session.ended", {"ssrc": ended.ssrc, "reason": str(ended.reason)})
        if self.sessions_seen and not self._known and receiver.session_count == 0:
            self.all_ended.set()

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(kind, data)

    async def _control(self, udp: UdpEndpoint) -> None:
        reporter = self.reporter
        assert reporter is not None
        while True:
            for data, source in await udp.receive():
                try:
                    ended = reporter.handle(data, source, _monotonic_ns(), self._wall_ns())
                except MalformedPacket:
                    self.malformed_rtcp += 1
                    continue
                for end in ended:
                    self.receiver.end_session(end.ssrc, EndReason.BYE)

    async def _report_loop(self, udp: UdpEndpoint) -> None:
        reporter = self.reporter
        assert reporter is not None
        while True:
            now, wall = _monotonic_ns(), self._wall_ns()
            clocks = {}
            for ssrc in list(self._known):
                clock = reporter.sender_clock(ssrc)
                if clock is not None:
                    clocks[ssrc] = clock
            stats = self.receiver.reception(
                now, wall_ns=wall + self.output_latency_ns, clocks=clocks
            )
            reports, ended = reporter.poll(now, wall, stats)
            for report in reports:
                address = report.address
                if isinstance(address, tuple):
                    udp.send(report.data, (str(address[0]), int(address[1])))
            for end in ended:
                reason = EndReason.BYE if end.reason == "bye" else EndReason.INACTIVE
                self.receiver.end_session(end.ssrc, reason)
            deadline = reporter.deadline_ns
            await trio.sleep_until((deadline if deadline is not None else now) / 1e9)
