"""Cluster events and the bus that fans them out to subscribers.

Publishing never blocks and never fails the publisher: an event that does not fit in the
bus's mailbox is counted and dropped. Each subscriber has its own bounded queue; one that
does not keep up is dropped with a reason (its queue closes), so a slow WebSocket client
never stalls the bus or the other subscribers.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import msgspec
import trio

from rocd.errors import RocdError

from ._actor import Actor, Request

log = logging.getLogger("rocd.events")


class Event(msgspec.Struct, frozen=True):
    """Something that happened on some instance of the cluster."""

    seq: int  # per publishing instance, increasing
    time: float  # Unix time, seconds
    kind: str  # dotted: "peer.updated", "device.added", "actor.restarted"...
    peer: str  # uid of the instance where it happened
    subject: str  # uid of the resource concerned ("" when none)
    data: dict[str, Any] = {}


class EventFilter(msgspec.Struct, frozen=True):
    """Which events a subscriber wants: kinds (exact, or a prefix ending in '.') and peer."""

    kinds: tuple[str, ...] = ()
    peer: str | None = None

    def matches(self, event: Event) -> bool:
        if self.peer is not None and event.peer != self.peer:
            return False
        if not self.kinds:
            return True
        return any(
            event.kind == k or (k.endswith(".") and event.kind.startswith(k)) for k in self.kinds
        )


class Subscription:
    """A subscriber's end: iterate for events; `dropped_reason` says why it ended early
    and `overrun` whether that was because the subscriber did not keep up."""

    def __init__(self, receive: trio.MemoryReceiveChannel[Event]) -> None:
        self._receive = receive
        self.dropped_reason: str | None = None
        self.overrun = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    def close(self) -> None:
        self._receive.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Publish(msgspec.Struct, frozen=True):
    kind: str
    subject: str = ""
    data: dict[str, Any] = {}


class Relay(msgspec.Struct, frozen=True):
    """An event of another instance, fanned out as it is (its own peer, seq and time)."""

    event: Event


class Subscribe(Request[Subscription], frozen=True):
    filter: EventFilter = EventFilter()
    buffer: int = 256


class Recent(Request[list[Event]], frozen=True):
    """The last events published (up to `limit`), oldest first."""

    limit: int = 100


class BusStats(msgspec.Struct, frozen=True):
    published: int
    dropped: int  # did not fit in the bus's mailbox
    subscribers: int


class GetBusStats(Request[BusStats], frozen=True):
    pass


class _Subscriber:
    __slots__ = ("filter", "send", "subscription")

    def __init__(self, filter: EventFilter, send: trio.MemorySendChannel[Event], sub: Subscription):
        self.filter = filter
        self.send = send
        self.subscription = sub


class EventBus(Actor):
    """Stamps published events with a sequence number and time, and fans them out."""

    kind = "events"
    mailbox_capacity = 4096

    def __init__(self, peer_uid: str, *, history: int = 256) -> None:
        super().__init__("bus")
        self.peer_uid = peer_uid
        self._seq = 0
        self._subscribers: list[_Subscriber] = []
        self._history: deque[Event] = deque(maxlen=history)
        self.dropped_events = 0

    def publish(self, kind: str, subject: str = "", data: dict[str, Any] | None = None) -> None:
        """Queue an event for fan-out; never blocks, never raises (drops when overloaded)."""
        try:
            self.ref.tell_nowait(Publish(kind, subject, data or {}))
        except RocdError as exc:
            self.dropped_events += 1
            log.debug("event %s dropped: %s", kind, exc)

    def relay(self, event: Event) -> None:
        """Queue another instance's event for fan-out; never blocks, never raises."""
        try:
            self.ref.tell_nowait(Relay(event))
        except RocdError as exc:
            self.dropped_events += 1
            log.debug("relayed event %s dropped: %s", event.kind, exc)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def on_stop(self) -> None:
        for sub in self._subscribers:
            sub.subscription.dropped_reason = "daemon shutting down"
            sub.send.close()
        self._subscribers.clear()

    async def handle(self, msg: Any) -> Any:
        match msg:
            case Publish():
                self._seq += 1
                event = Event(
                    self._seq, time.time(), msg.kind, self.peer_uid, msg.subject, msg.data
                )
                self._fan_out(event)
                return None
            case Relay(event=event):
                self._fan_out(event)
                return None
            case Subscribe():
                send, receive = trio.open_memory_channel[Event](max(1, msg.buffer))
                subscription = Subscription(receive)
                self._subscribers.append(_Subscriber(msg.filter, send, subscription))
                return subscription
            case Recent():
                return list(self._history)[-msg.limit :] if msg.limit > 0 else []
            case GetBusStats():
                return BusStats(self._seq, self.dropped_events, len(self._subscribers))
        return await super().handle(msg)

    def _fan_out(self, event: Event) -> None:
        self._history.append(event)
        keep: list[_Subscriber] = []
        for sub in self._subscribers:
            if not sub.filter.matches(event):
                if sub.send.statistics().open_receive_channels:
                    keep.append(sub)
                continue
            try:
                sub.send.send_nowait(event)
            except trio.WouldBlock:
                sub.subscription.dropped_reason = "slow subscriber: event queue full"
                sub.subscription.overrun = True
                sub.send.close()
                log.warning("dropped a slow event subscriber (queue full at event %d)", event.seq)
                continue
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                continue  # the subscriber went away
            keep.append(sub)
        self._subscribers = keep
