"""An actor's mailbox: a bounded Trio memory channel with statistics.

Bounded so that a flood of requests shows up as back-pressure (`send`) or as a clear
`Busy` (`send_nowait`) instead of unbounded memory. Routers and pumps that must never block
(ZeroMQ, WebSocket) use `send_nowait`. The mailbox outlives an actor's incarnations: a
restarted actor picks up the messages queued while it was down; only `close` ends it.
"""

from __future__ import annotations

from typing import Any

import msgspec
import trio

from rocd.errors import ActorGone, Busy


class MailboxStats(msgspec.Struct, frozen=True):
    """A snapshot of one mailbox: messages queued now, the most ever queued, and totals."""

    depth: int
    peak: int
    capacity: int
    received: int
    overruns: int


class Mailbox:
    """Bounded FIFO of messages for one actor."""

    def __init__(self, owner: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("mailbox capacity must be at least 1")
        self._owner = owner
        self._capacity = capacity
        self._send, self._receive = trio.open_memory_channel[Any](capacity)
        self._peak = 0
        self._received = 0
        self._overruns = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def send_nowait(self, msg: Any) -> None:
        """Queue `msg` or raise `Busy` (full) / `ActorGone` (closed); never blocks."""
        if self._closed:
            raise ActorGone(f"{self._owner} has stopped")
        try:
            self._send.send_nowait(msg)
        except trio.WouldBlock:
            self._overruns += 1
            raise Busy(f"{self._owner} is overloaded (mailbox full)") from None
        self._accepted()

    async def send(self, msg: Any) -> None:
        """Queue `msg`, waiting for room. On cancellation nothing was queued."""
        if self._closed:
            raise ActorGone(f"{self._owner} has stopped")
        try:
            await self._send.send(msg)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorGone(f"{self._owner} has stopped") from None
        self._accepted()

    async def receive(self) -> Any:
        """The next message; raises trio.EndOfChannel once closed and drained."""
        return await self._receive.receive()

    def close(self) -> list[Any]:
        """Refuse new messages and hand back the ones still queued (to fail their asks)."""
        self._closed = True
        self._send.close()
        left: list[Any] = []
        while True:
            try:
                left.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        self._receive.close()
        return left

    def stats(self) -> MailboxStats:
        depth = self._receive.statistics().current_buffer_used if not self._closed else 0
        return MailboxStats(depth, self._peak, self._capacity, self._received, self._overruns)

    def _accepted(self) -> None:
        self._received += 1
        depth = self._receive.statistics().current_buffer_used
        if depth > self._peak:
            self._peak = depth
