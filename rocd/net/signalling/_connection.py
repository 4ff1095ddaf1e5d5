"""The dialling side of a link, as a Trio shell: a DEALER socket driving a `Link`.

A monitor of the socket reports a CURVE handshake that failed, and the link then ends
at once instead of waiting for a Welcome that cannot come: with code "refused" when the
listener refused our key (its ZAP handler does not trust it), "wrong-key" when the
handshake itself failed (the listener there holds another key than the one dialled: not
the peer, say another instance that took its old port). Such a listener may also just
drop the connection without the socket reporting anything: the link then ends at the
handshake timeout ("dead"), which says as well that the peer did not answer there.

`run` dials, says hello and reports the other side's `Welcome` as started; it then keeps
the link (heartbeats, ask deadlines) and returns the `Closed` event when the link ends:
the peer said bye, went silent for `dead_after` seconds, broke the protocol, or `aclose`
was called. One connection is one attempt: reconnecting is a new `Connection` (a fresh
socket, so nothing written for the old link can arrive on the new one).

Events the other side pushes arrive on `events` (a bounded channel: when the reader falls
behind they are dropped and counted in `events_lost`; each event's `n` shows the gap too).

A relayed connection (`carrier` given) has no socket of its own: its frames ride inside
another link (`Carrier.send_nowait`), and whoever owns that link hands it the frames for
it (`feed`). Otherwise it is the same link, with the same handshake, heartbeats and asks.
A direct connection can itself carry relayed links (`send_raw`, `on_misrouted`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
import outcome
import trio
import zmq
from zmq.utils.monitor import parse_monitor_message

from ._errors import (
    LinkStateError,
    MalformedMessage,
    RemoteProtocolError,
    SignallingError,
    SocketClosed,
)
from ._keys import KeyPair
from ._link import Link, LinkState, LocalInfo, Side
from ._link_events import (
    Answered,
    AskAborted,
    AskExpired,
    AskFailed,
    AskReceived,
    Closed,
    EventReceived,
    LinkError,
    LinkEvent,
    Misrouted,
    Welcomed,
)
from ._messages import ActorAddress, Error, Event, Welcome
from ._zmq import LINGER_MS, ZmqSocket, dealer_socket

log = logging.getLogger("rocd.cluster")


_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class Carrier(Protocol):
    """A link that carries the frames of relayed links: to a neighbour whose uid and key
    (proven in its CURVE handshake) it knows."""

    @property
    def uid(self) -> str: ...

    @property
    def key(self) -> str: ...

    def send_nowait(self, data: bytes) -> None:
        """Queue one frame; SignallingError when it cannot go (the link is gone or full)."""
        ...


class HandshakeFailed(SignallingError):
    """The link closed before the other side welcomed us."""

    def __init__(self, closed: Closed) -> None:
        super().__init__(closed.reason)
        self.closed = closed


class LinkDown(SignallingError):
    """The link is not open (not yet, or any more): the ask was not delivered or its
    answer will never come."""


class AskTimedOut(SignallingError):
    """No answer within the ask's timeout."""


class AskRefused(SignallingError):
    """The other side answered the ask with an `Error`."""

    def __init__(self, error: Error) -> None:
        super().__init__(error.message)
        self.error = error


class _Waiter:
    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: outcome.Outcome[msgspec.Raw] | None = None

    def set(self, result: outcome.Outcome[msgspec.Raw]) -> None:
        if self.result is None:
            self.result = result
            self.done.set()


class Connection:
    """One dialled link; see the module docstring."""

    def __init__(
        self,
        ctx: zmq.Context[Any],
        keys: KeyPair,
        *,
        address: str,
        server_key: str,
        local: LocalInfo,
        join: str = "",
        heartbeat_interval: float = 1.0,
        dead_after: float = 3.0,
        handshake_timeout: float = 5.0,
        event_buffer: int = 1024,
        carrier: Carrier | None = None,
        peer_uid: str = "",
        on_misrouted: Callable[[Misrouted], None] | None = None,
    ) -> None:
        self.address = address
        self.carrier = carrier
        self._on_misrouted = on_misrouted
        self._ctx = ctx
        self._keys = keys
        self._server_key = server_key
        self._join = join
        self.link = Link(
            Side.DIALLER,
            local,
            trio.current_time(),
            heartbeat_interval=heartbeat_interval,
            dead_after=dead_after,
            handshake_timeout=handshake_timeout,
            relayed=carrier is not None,
            peer_uid=peer_uid,
        )
        self._socket: ZmqSocket | None = None
        self._monitor: ZmqSocket | None = None
        self._waiters: dict[int, _Waiter] = {}
        self._tick_scope: trio.CancelScope | None = None
        self._closed = trio.Event()
        self._settled = trio.Event()  # welcomed or closed
        self.welcome: Welcome | None = None
        self.closed_by: Closed | None = None
        self._events_send, self.events = trio.open_memory_channel[Event](event_buffer)
        self.events_lost = 0

    @property
    def open(self) -> bool:
        return self.link.state is LinkState.OPEN

    async def run(self, *, task_status: trio.TaskStatus[Welcome]) -> Closed:
        """Dial, handshake (started with the Welcome; HandshakeFailed if the link closes
        before), then keep the link until it closes; returns how it closed.

        On cancellation the socket is closed at once, without a Bye (use `aclose`).
        """
        if self.carrier is not None:
            return await self._run_relayed(task_status)
        sock = dealer_socket(self._ctx, self._keys, self._server_key)
        try:
            sock.connect(self.address)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise LinkDown(f"cannot dial {self.address}: {exc}") from None
        self._socket = ZmqSocket(sock, linger_ms=LINGER_MS)
        self._monitor = ZmqSocket(sock.get_monitor_socket(_HANDSHAKE_FAILED))
        started = False
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._monitor.run)
                await nursery.start(self._socket.run)
                nursery.start_soon(self._watch_handshakes)
                self.link.hello(trio.current_time(), join=self._join)
                self._flush()
                nursery.start_soon(self._pump)
                nursery.start_soon(self._ticker)
                await self._settled.wait()
                if self.welcome is not None and self.closed_by is None:
                    task_status.started(self.welcome)
                    started = True
                await self._closed.wait()
                closed = self.closed_by
                if closed is not None and not closed.by_remote and closed.code != "dead":
                    await self._drain_socket()  # our own Bye: let it leave
                nursery.cancel_scope.cancel(reason="link closed")
        finally:
            self._ended()
        return self._outcome(started)

    async def _run_relayed(self, task_status: trio.TaskStatus[Welcome]) -> Closed:
        started = False
        try:
            async with trio.open_nursery() as nursery:
                self.link.hello(trio.current_time(), join=self._join)
                self._flush()
                nursery.start_soon(self._ticker)
                await self._settled.wait()
                if self.welcome is not None and self.closed_by is None:
                    if self.welcome.key and self.welcome.key != self._server_key:
                        self.link.bye("the welcome came with another key", "refused")
                        self._flush()
                        self._process(self.link.events())
                    else:
                        task_status.started(self.welcome)
                        started = True
                await self._closed.wait()
                nursery.cancel_scope.cancel(reason="link closed")
        finally:
            self._ended()
        return self._outcome(started)

    def _ended(self) -> None:
        """No more events; whoever still waits for an answer hears the link is down."""
        self._events_send.close()
        for waiter in self._waiters.values():
            waiter.set(outcome.Error(LinkDown("the link closed")))

    def _outcome(self, started: bool) -> Closed:
        assert self.closed_by is not None
        if not started:
            raise HandshakeFailed(self.closed_by)
        return self.closed_by

    def feed(self, data: bytes) -> None:
        """A frame of this relayed link, from its carrier."""
        self._received(data)

    def carrier_lost(self, why: str) -> None:
        """The link carrying this relayed one is gone: so is this one."""
        self.link.abort(why, "dead")
        self._process(self.link.events())

    def send_raw(self, data: bytes) -> None:
        """Queue a frame of another link (relayed) on this connection's socket; raises
        SocketClosed / SendQueueFull (SignallingError) when it cannot."""
        if self._socket is None or not self.open:
            raise LinkDown("the link is not open")
        self._socket.send_nowait([data])

    async def ask(
        self, actor: ActorAddress, request: str, body: msgspec.Raw, within: float
    ) -> msgspec.Raw:
        """Send an ask and wait for its answer (the reply body).

        Raises AskRefused (the other side's Error), AskTimedOut (nothing within `within`
        seconds, which the other side is told too), LinkDown. On
        cancellation the ask may still be handled there; its answer is dropped.
        """
        if not self.open:
            raise LinkDown(f"the link to {self.address} is {self.link.state.value}")
        now = trio.current_time()
        try:
            ask_id = self.link.ask(actor, request, body, within, now)
        except LinkStateError as exc:
            raise LinkDown(str(exc)) from None
        waiter = _Waiter()
        self._waiters[ask_id] = waiter
        self._flush()
        self._reschedule(now + within)
        try:
            await waiter.done.wait()
        finally:
            self._waiters.pop(ask_id, None)
        assert waiter.result is not None
        return waiter.result.unwrap()

    def subscribe(self, kinds: list[str]) -> None:
        """Ask for the other side's events (all kinds when `kinds` is empty)."""
        if not self.open:
            raise LinkDown("the link is not open")
        self.link.subscribe(kinds)
        self._flush()

    async def aclose(self, reason: str, code: str = "closing") -> None:
        """Say bye (if the link got that far) and end `run`; waits at most 0.2 s for the
        Bye to leave."""
        if self.link.state is LinkState.CLOSED:
            return
        self.link.bye(reason, code)
        self._flush()
        self._process(self.link.events())

    # -- the shell's tasks ---------------------------------------------------------------

    async def _pump(self) -> None:
        assert self._socket is not None
        while True:
            try:
                incoming = await self._socket.receive()
            except SocketClosed:
                return
            for data in incoming.frames:
                self._received(data)

    def _received(self, data: bytes) -> None:
        try:
            self.link.receive(data, trio.current_time())
        except MalformedMessage as exc:
            log.warning("%s sent an unreadable frame: %s", self.address, exc)
        except RemoteProtocolError as exc:
            log.warning("%s broke the protocol: %s", self.address, exc)
        self._flush()
        self._process(self.link.events())

    async def _watch_handshakes(self) -> None:
        assert self._monitor is not None
        while True:
            try:
                incoming = await self._monitor.receive()
            except SocketClosed:
                return
            event = parse_monitor_message(incoming.frames)
            if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                # ZAP runs once the CURVE boxes opened: the listener holds the key we
                # dialled, and it refuses ours.
                why = f"the peer refused this instance's key (ZAP status {event['value']})"
                self.link.abort(why, "refused")
            else:
                why = "another key answers there (the CURVE handshake failed)"
                self.link.abort(why, "wrong-key")
            self._process(self.link.events())

    async def _ticker(self) -> None:
        while True:
            with trio.CancelScope(deadline=self.link.next_deadline()) as scope:
                self._tick_scope = scope
                await trio.sleep_forever()
            self._tick_scope = None
            self.link.tick(trio.current_time())
            self._flush()
            self._process(self.link.events())

    def _reschedule(self, deadline: float) -> None:
        scope = self._tick_scope
        if scope is not None and deadline < scope.deadline:
            scope.deadline = deadline

    async def _drain_socket(self) -> None:
        """Give queued frames (a last Bye) up to 0.2 s to leave."""
        if self._socket is not None:
            with trio.move_on_after(0.2):
                await self._socket.wait_flushed()

    def _flush(self) -> None:
        socket, carrier = self._socket, self.carrier
        for data in self.link.outbox():
            try:
                if carrier is not None:
                    carrier.send_nowait(data)
                elif socket is not None:
                    socket.send_nowait([data])
                else:
                    break
            except SignallingError as exc:
                self.link.bye(f"cannot send: {exc}", "dead")
                self.link.outbox()
                break
        self._reschedule(self.link.next_deadline())

    def _process(self, events: list[LinkEvent]) -> None:
        for event in events:
            match event:
                case Welcomed(welcome=welcome):
                    self.welcome = welcome
                    self._settled.set()
                case Answered(id=ask_id, body=body):
                    self._answer(ask_id, outcome.Value(body))
                case AskFailed(id=ask_id, error=error):
                    self._answer(ask_id, outcome.Error(AskRefused(error)))
                case AskExpired(id=ask_id):
                    self._answer(ask_id, outcome.Error(AskTimedOut("no answer in time")))
                case AskAborted(id=ask_id, reason=reason):
                    self._answer(ask_id, outcome.Error(LinkDown(f"the link closed: {reason}")))
                case EventReceived(event=ev):
                    try:
                        self._events_send.send_nowait(ev)
                    except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                        self.events_lost += 1
                case AskReceived(ask=ask):
                    self.link.error(ask.id, "unsupported", "asks go to an instance's listener")
                    self._flush()
                case LinkError(error=error):
                    log.warning("%s: %s", self.address, error.message)
                case Misrouted(frame=frame):
                    if self._on_misrouted is not None:
                        self._on_misrouted(event)
                    else:
                        log.debug("%s: frame for %r dropped (no relaying)", self.address, frame.dst)
                case Closed():
                    self.closed_by = event
                    self._closed.set()
                    self._settled.set()
                case _:
                    log.debug("%s: %s ignored", self.address, type(event).__name__)

    def _answer(self, ask_id: int, result: outcome.Outcome[msgspec.Raw]) -> None:
        waiter = self._waiters.get(ask_id)
        if waiter is not None:
            waiter.set(result)
