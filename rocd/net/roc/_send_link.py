"""The sending side on Trio: a frame source -> `Sender` -> one UDP socket.

Source, repair and control datagrams all leave from ONE socket, because a Roc receiver
ties repair packets (no SSRC) to a session by the sender's address (§1.3); the same socket
receives the receivers' RTCP reports.

Pacing: a clocked source (a sound device) paces itself: each `read` returns when the
device has produced the frames, and the link runs its own loop. An unclocked one (file,
tone) is held to real time by a `Pacer` and stepped by a `Ticker` (shared by many links,
or the link's own): every tick it sends every chunk already due, so a late wake-up never
shifts the schedule. RTCP from receivers is drained at each step, not waited for.

An unclocked source can be read ahead, and is: when its queue runs dry the link reads and
encodes `ahead_chunks` chunks (100 ms) in one go and queues their datagrams, each with the
time its chunk falls due; every tick then only sends what is due. The datagrams leave at
the same moments as if each chunk were encoded at its tick, but the encoding runs as one
hot loop ten times less often: measured here, a 10 ms chunk costs ~120 us of CPU encoded
alone after a 10 ms sleep (cold caches) and ~35 us in a loop, which is most of what a
sender process spends. The sender's counters and reports run up to that far ahead of
the wire; on a stop request what is queued is sent at once, before the last report.

With `send_thread`, the sends themselves leave from a `SendThread` at their times, and the
ticker (which may then tick far less often, e.g. every 200 ms) only reads, encodes and
queues what falls due within the next tick and `AHEAD_NS`, and handles RTCP: a Trio
wake-up every 10 ms costs a Python process as much again as roc-send needs in all. The
thread is the C loop of `_send_native` where it is built (`native_send`), else the
Python `SendThread`.

The frame source is anything with `spec` (rate, channels), `clocked` and
`async read(frames)`, e.g. rocd.audio's file, tone and device streams; a read shorter than
asked means the end of the source: the stream is flushed and `run` returns.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt
import trio

from . import _send_native
from ._endpoint import EndpointSet, Interface
from ._errors import MalformedPacket
from ._media_hub import is_hub_message
from ._pacer import Pacer
from ._send_native import NativeSendThread
from ._send_thread import SendThread
from ._sender import Datagram, Sender
from ._ticker import PRODUCE, Ticker, now_ns
from ._udp import Address, UdpEndpoint, resolve_udp

__all__ = ["FrameInput", "SampleSpecLike", "SendLink"]

_SOURCE = Interface.SOURCE
_REPAIR = Interface.REPAIR

#: Datagrams, each with the index of its interface's address in the link's route
#: (source 0, repair 1, control 2), as `UdpEndpoint.send_routed` takes them: the address
#: is read as it leaves, so what is queued ahead follows a `retarget`.
Routed = list[tuple[bytes, int]]

log = logging.getLogger("rocd.net.roc.send")

#: Frames read per step: 10 ms, Roc's I/O frame (two 5 ms packets per step).
DEFAULT_CHUNK_NS = 10_000_000

#: Chunks of an unclocked source encoded in one go, ahead of their time (see above).
DEFAULT_AHEAD_CHUNKS = 10

#: An unclocked source's chunks fall due this long before the ticks (`Ticker.pacer_start_ns`):
#: a tick must then be 9.5 ms late before it sends the next chunk's packets early too. A
#: receiver at a small target latency (10 ms) takes such an early burst for a jump of
#: its queue beyond the latency bounds and restarts the session; half a period (the
#: ticker's default) allowed it at 5 ms, which a busy machine reaches.
SEND_LEAD_NS = 500_000

#: With a send thread, how far beyond the next tick the link keeps datagrams queued (ns).
AHEAD_NS = 100_000_000
#: With a send thread, when the first chunk is due after the first step (ns) at the
#: least: once it is encoded and queued, so that it leaves on time.
THREAD_START_NS = 20_000_000

#: RTCP reports come every 200 ms and carry their kernel arrival time: a link that reads
#: its control socket without a ticker's poll reads it every 5th step (50 ms), which loses
#: no precision and saves four empty reads in five.
RTCP_DRAIN_TICKS = 5

#: Punch datagrams kept until the link's owner reads them.
MAX_PUNCHES = 16


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


class SendLink:
    """Streams one source to the endpoints of one Roc slot."""

    def __init__(
        self,
        sender: Sender,
        endpoints: EndpointSet,
        *,
        ticker: Ticker | None = None,
        chunk_ns: int = DEFAULT_CHUNK_NS,
        ahead_chunks: int = DEFAULT_AHEAD_CHUNKS,
        wall_ns: Callable[[], int] = time.time_ns,
        gso: bool = False,
        send_thread: bool = False,
        native_send: bool = True,
    ) -> None:
        if ahead_chunks < 1:
            raise ValueError(f"ahead_chunks must be >= 1, got {ahead_chunks}")
        self.sender = sender
        self.endpoints = endpoints
        self.ticker = ticker
        self.chunk_ns = chunk_ns
        self.ahead_chunks = ahead_chunks
        self.send_thread = send_thread
        """Unclocked sources: send from a `SendThread` (system clock only, not a MockClock)."""
        self.native_send = native_send
        """With `send_thread`: the C send loop (`NativeSendThread`) where it is built and
        `gso` is off, else the Python one."""
        self._native: NativeSendThread | None = None
        self.gso = gso
        """Send each chunk's source packets and each block's repair packets in one system
        call (UDP segmentation offload, see `UdpEndpoint`): cheaper, but only where no
        loss is emulated on the path before a device (it would drop the run at once)."""
        self._wall_ns = wall_ns
        self._udp: UdpEndpoint | None = None
        #: Datagrams encoded ahead (unclocked sources), with when their chunk is due.
        self._ahead: deque[tuple[int, Routed]] = deque()
        self._send_lock = threading.Lock()  # a send thread and Trio both send
        self._targets: dict[Interface, Address] = {}
        #: The source, repair and control addresses (None: not sent), changed in place.
        self._route: list[Address | None] = [None, None, None]
        self.malformed_rtcp = 0
        self.rtcp_received = 0  # reports taken from receivers (a path that works)
        #: Punch datagrams that came from receivers behind NATs, (data, source), for the
        #: owner to read (at most `MAX_PUNCHES` kept until it does).
        self.punches: list[tuple[bytes, Address]] = []
        self.done = trio.Event()
        self._streaming = trio.CancelScope()

    def request_stop(self) -> None:
        """End the stream as if the source had ended: flush, last report (BYE if the
        sender is configured for it), then `run` returns."""
        self._streaming.cancel(reason="stop requested")

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
        local = await self.open()
        assert self._udp is not None
        try:
            task_status.started(local)
            with self._streaming:
                if source.clocked:
                    await self._stream_clocked(source)
                elif self.ticker is not None:
                    await self._stream_ticked(source, self.ticker)
                else:
                    async with trio.open_nursery() as nursery:
                        ticker = await nursery.start(Ticker(self.chunk_ns).run)
                        await self._stream_ticked(source, ticker)
                        nursery.cancel_scope.cancel(reason="source ended")
            while self._ahead:  # stopped early: what was encoded goes out now
                self._send_routed(self._ahead.popleft()[1])
            self._send(self.sender.stop(now_ns(), self._wall_ns()))
        finally:
            self.close()

    # -- driven from outside (a `FanoutLink` feeding several links from one source) ----

    async def open(self) -> Address:
        """Resolve the endpoints and bind the socket (once); the socket's local address.

        Raises OSError when a destination does not resolve or no socket can be bound."""
        if self._udp is not None:
            return self._udp.local
        family: int = socket.AF_INET
        targets: dict[Interface, Address] = {}
        for interface in Interface:
            endpoint = self.endpoints.endpoint(interface)
            if endpoint is not None:
                family, targets[interface] = await resolve_udp(endpoint.address)
        self._set_targets(targets)
        wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
        self._udp = await UdpEndpoint.bind(
            (wildcard, 0), family=family, max_datagram=65535, gso=self.gso
        )
        return self._udp.local

    @property
    def targets(self) -> dict[Interface, Address]:
        return dict(self._targets)

    def retarget(self, targets: dict[Interface, Address]) -> None:
        """Send to `targets` from the next datagram on (a path through a NAT found, or a
        move to a hub's relay); an interface left out is not sent at all."""
        self._set_targets(dict(targets))

    def _set_targets(self, targets: dict[Interface, Address]) -> None:
        self._targets = targets
        # One list assignment: a send thread reading the route sees the old or the new.
        self._route[:] = [targets.get(interface) for interface in Interface]
        if self._native is not None:
            self._native.set_route(self._route)

    def write(self, frames: npt.NDArray[np.float32], capture_ns: int) -> None:
        """Send the datagrams of the next frames (captured at wall time `capture_ns`)."""
        self._send(self.sender.write(frames, capture_ns))

    def service(self, now: int, *, readable: bool = True) -> None:
        """Take the receivers' reports (when the socket is `readable`) and send the report
        that is due; call it once per step, also while the source stalls."""
        wall = self._wall_ns()
        if readable:
            self._take_rtcp(now, wall)
        self._send(self.sender.poll_rtcp(now, wall))

    def finish(self) -> None:
        """End the stream (flush, last report; BYE if configured) and close the socket."""
        if self._udp is not None and not self.done.is_set():
            self._send(self.sender.stop(now_ns(), self._wall_ns()))
        self.close()

    def close(self) -> None:
        """Close the socket at once (idempotent); whatever was not sent is lost."""
        if self._udp is not None:
            self._udp.close()
        self.done.set()

    async def _stream_clocked(self, source: FrameInput) -> None:
        rate = source.spec.rate
        chunk = max(1, rate * self.chunk_ns // 1_000_000_000)
        while True:
            frames = await source.read(chunk)
            # The device delivered these frames just now: they were captured one chunk ago.
            wall = self._wall_ns()
            self._take_rtcp(now_ns(), wall)
            if len(frames):
                sender = self.sender
                self._send(sender.write(frames, wall - len(frames) * 1_000_000_000 // rate))
                self._send(sender.poll_rtcp(now_ns(), self._wall_ns()))
            if len(frames) < chunk:
                return

    async def _stream_ticked(self, source: FrameInput, ticker: Ticker) -> None:
        rate = source.spec.rate
        chunk = max(1, rate * self.chunk_ns // 1_000_000_000)
        lead = min(SEND_LEAD_NS, ticker.period_ns // 2)
        pacer: Pacer | None = None
        udp = self._udp
        assert udp is not None
        fd = udp.fd
        ahead = self._ahead
        sender = self.sender
        thread: SendThread[Routed] | NativeSendThread | None = None
        if self.send_thread and self.native_send and not self.gso and _send_native.available():
            thread = self._native = NativeSendThread(udp.sock, udp.stats)
            thread.set_route(self._route)
        elif self.send_thread:
            thread = SendThread(self._send_routed)
        horizon = ticker.period_ns + AHEAD_NS
        ended = False

        async def encode(pacer: Pacer, count: int) -> list[tuple[int, Routed]]:
            """The next `count` chunks (read and encoded at once), each chunk's datagrams
            with their due time."""
            nonlocal ended
            frames = await source.read(count * chunk)
            ended = len(frames) < count * chunk
            sent = pacer.sent_samples
            starts = range(sent, sent + len(frames), chunk)
            bursts = sender.write_bursts(frames, [pacer.capture_ns(i) for i in starts], chunk)
            routed = self._routed
            out = [
                (pacer.sample_time_ns(i), routed(b)) for i, b in zip(starts, bursts, strict=True)
            ]
            pacer.sent(len(frames))
            return out

        async def step(now: int) -> bool:
            nonlocal pacer
            if pacer is None:
                # The stream starts at this tick however late it runs (a process warming
                # up): its first chunk is due now, the next ones `lead` before each tick.
                # A send thread starts it a little later instead, so that even the first
                # burst leaves on the beat (receivers learn the beat from the bursts),
                # and half a chunk off the ticks: the thread needs the interpreter's lock
                # to send, and the ticks' work (reading, encoding) holds it; a burst due
                # as a tick begins would wait for it (measured: ~10 futex calls a tick).
                tick = ticker.tick_ns
                if tick is None:  # before the first tick: the ticker's start, on its grid
                    tick = ticker.pacer_start_ns(now, lead_ns=ticker.period_ns)
                if thread is not None:
                    phase = tick + self.chunk_ns // 2
                    start = phase - (phase - now - THREAD_START_NS) // self.chunk_ns * self.chunk_ns
                else:
                    start = tick - lead
                wall_start = self._wall_ns() - (now - start)
                pacer = Pacer(
                    rate, start, chunk_samples=chunk, wall_start_ns=wall_start, max_lag_ns=10**9
                )
            if ticker.readable(fd):  # receiver reports (the ticker polls the socket)
                self._take_rtcp(now, self._wall_ns())
            due = pacer.due(now)  # chunks due and not encoded yet (0 while ahead)
            if thread is not None:
                # Keep what falls due before the tick after next queued in the thread.
                count = 0
                while pacer.sample_time_ns(pacer.sent_samples + count * chunk) <= now + horizon:
                    count += 1
                if count and not ended:
                    for encoded in await encode(pacer, count):
                        thread.put(*encoded)
            else:
                if due and not ended:
                    ahead.extend(await encode(pacer, max(due, self.ahead_chunks)))
                while ahead and ahead[0][0] <= now:
                    self._send_routed(ahead.popleft()[1])
            deadline = sender.rtcp_deadline_ns
            if deadline is None or deadline <= now:  # a report is due (also while stalled)
                self._send(sender.poll_rtcp(now, self._wall_ns()))
            if self._native is not None:
                self._native.count()
            return ended and not ahead and (thread is None or not thread.queued)

        ticker.watch(fd)
        try:
            async with trio.open_nursery() as nursery:
                finished = False
                if thread is not None:
                    nursery.start_soon(thread.run)
                    # The first chunks go to the thread now rather than at the first tick,
                    # which may be a whole period away (200 ms for `rocd send`).
                    finished = await step(now_ns())
                if not finished:
                    await ticker.attach(step, stage=PRODUCE).wait()
                nursery.cancel_scope.cancel(reason="stream ended")
        finally:
            ticker.unwatch(fd)
            if thread is not None:  # stopped early: `run` sends what is left at once
                ahead.extend(thread.take_queued())
            self._native = None

    def _send(self, datagrams: list[Datagram]) -> None:
        if datagrams:
            self._send_routed(self._routed(datagrams))

    @staticmethod
    def _routed(datagrams: list[Datagram]) -> Routed:
        # `is`, not a dict: an Enum's hash is a Python call.
        return [
            (data, 0 if kind is _SOURCE else 1 if kind is _REPAIR else 2)
            for kind, data in datagrams
        ]

    def _send_routed(self, datagrams: Routed) -> None:
        """Send now (from Trio or from the send thread: one at a time)."""
        udp = self._udp
        assert udp is not None
        with self._send_lock:
            udp.send_routed(datagrams, self._route)

    def _take_rtcp(self, now: int, wall: int) -> None:
        udp = self._udp
        assert udp is not None
        for data, source, arrival in udp.drain(now, wall):
            if data[:1] == b"r" and is_hub_message(data):  # never RTCP (0x80-0xBF)
                if len(self.punches) < MAX_PUNCHES:
                    self.punches.append((data, source))
                continue
            if Interface.CONTROL not in self._targets:
                continue
            try:
                self.sender.handle_rtcp(data, arrival, wall - (now - arrival))
            except MalformedPacket:
                self.malformed_rtcp += 1
            else:
                self.rtcp_received += 1
