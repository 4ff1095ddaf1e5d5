"""The sending side on Trio: a frame source -> `Sender` -> one UDP socket.

Source, repair and control datagrams all leave from ONE socket, because a Roc receiver
ties repair packets (no SSRC) to a session by the sender's address (§1.3); the same socket
receives the receivers' RTCP reports.

Pacing: a clocked source (a sound device) paces itself: each `read` returns when the
device has produced the frames. An unclocked one (file, tone) is held to real time by a
`Pacer`: the loop sleeps until the next chunk is due and then sends every chunk already
due, so a late wake-up never shifts the schedule.

The frame source is anything with `spec` (rate, channels), `clocked` and
`async read(frames)`, e.g. rocd.audio's file, tone and device streams; a read shorter than
asked means the end of the source: the stream is flushed and `run` returns.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt
import trio

from ._endpoint import EndpointSet, Interface
from ._errors import MalformedPacket
from ._pacer import Pacer
from ._sender import Datagram, Sender
from ._udp import Address, UdpEndpoint, resolve_udp

__all__ = ["FrameInput", "SendLink"]

log = logging.getLogger("rocd.net.send")

#: Frames read per step: 10 ms, Roc's I/O frame (two 5 ms packets per wake-up).
DEFAULT_CHUNK_NS = 10_000_000


class SampleSpecLike(Protocol):
    @property
    def rate(self) -> int: ...

    @property
    def channels(self) -> int: ...


class FrameInput(Protocol):
    """What a SendLink reads: float32 frames shaped (n, channels)."""

    @property
    def spec(self) -> SampleSpecLike: ...

    @property
    def clocked(self) -> bool: ...

    async def read(self, frames: int) -> npt.NDArray[np.float32]: ...


def _monotonic_ns() -> int:
    return round(trio.current_time() * 1e9)


class SendLink:
    """Streams one source to the endpoints of one Roc slot."""

    def __init__(
        self,
        sender: Sender,
        endpoints: EndpointSet,
        *,
        chunk_ns: int = DEFAULT_CHUNK_NS,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.sender = sender
        self.endpoints = endpoints
        self.chunk_ns = chunk_ns
        self._wall_ns = wall_ns
        self._udp: UdpEndpoint | None = None
        self._targets: dict[Interface, Address] = {}
        self.malformed_rtcp = 0
        self.done = trio.Event()

    @property
    def local_address(self) -> Address | None:
        return None if self._udp is None else self._udp.local

    @property
    def udp(self) -> UdpEndpoint | None:
        return self._udp

    async def run(
        self,
        source: FrameInput,
        *,
        task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Resolve the endpoints, bind the socket, report its address, stream until the
        source ends (then flush and return). On cancellation the socket is closed at once;
        the packets not yet sent are lost (a receiver conceals them)."""
        family: int = socket.AF_INET
        for interface in Interface:
            endpoint = self.endpoints.endpoint(interface)
            if endpoint is not None:
                family, self._targets[interface] = await resolve_udp(endpoint.address)
        wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
        self._udp = await UdpEndpoint.bind((wildcard, 0), family=family, max_datagram=65535)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._receive_rtcp)
                nursery.start_soon(self._rtcp_timer)
                task_status.started(self._udp.local)
                if source.clocked:
                    await self._stream_clocked(source)
                else:
                    await self._stream_paced(source)
                now = _monotonic_ns()
                self._send(self.sender.stop(now, self._wall_ns()))
                nursery.cancel_scope.cancel(reason="source ended")
        finally:
            self._udp.close()
            self.done.set()

    async def _stream_clocked(self, source: FrameInput) -> None:
        chunk = max(1, source.spec.rate * self.chunk_ns // 1_000_000_000)
        while True:
            frames = await source.read(chunk)
            # The device delivered these frames just now: they were captured one chunk ago.
            capture = self._wall_ns() - len(frames) * 1_000_000_000 // source.spec.rate
            if len(frames):
                self._write(frames, capture)
            if len(frames) < chunk:
                return

    async def _stream_paced(self, source: FrameInput) -> None:
        rate = source.spec.rate
        chunk = max(1, rate * self.chunk_ns // 1_000_000_000)
        pacer = Pacer(
            rate,
            _monotonic_ns(),
            chunk_samples=chunk,
            wall_start_ns=self._wall_ns(),
            max_lag_ns=1_000_000_000,
        )
        while True:
            await trio.sleep_until(pacer.deadline_ns / 1e9)
            for _ in range(pacer.due(_monotonic_ns())):
                frames = await source.read(chunk)
                if len(frames):
                    self._write(frames, pacer.capture_ns(pacer.sent_samples))
                    pacer.sent(len(frames))
                if len(frames) < chunk:
                    return

    def _write(self, frames: npt.NDArray[np.float32], capture_wall_ns: int) -> None:
        self._send(self.sender.write(frames, capture_wall_ns))
        self._send(self.sender.poll_rtcp(_monotonic_ns(), self._wall_ns()))

    def _send(self, datagrams: list[Datagram]) -> None:
        udp = self._udp
        assert udp is not None
        for interface, payload in datagrams:
            target = self._targets.get(interface)
            if target is not None:
                udp.send(payload, target)

    async def _rtcp_timer(self) -> None:
        # Reports also go out after each write; this covers a source that stalls.
        while True:
            deadline = self.sender.rtcp_deadline_ns
            if deadline is None:
                await trio.sleep(0.2)  # nothing sent yet: no report either
            else:
                await trio.sleep_until(deadline / 1e9)
            self._send(self.sender.poll_rtcp(_monotonic_ns(), self._wall_ns()))

    async def _receive_rtcp(self) -> None:
        udp = self._udp
        assert udp is not None
        control = self._targets.get(Interface.CONTROL)
        while True:
            for data, _source in await udp.receive():
                if control is None:
                    continue
                try:
                    self.sender.handle_rtcp(data, _monotonic_ns(), self._wall_ns())
                except MalformedPacket:
                    self.malformed_rtcp += 1
