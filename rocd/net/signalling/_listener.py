"""The listening side, as a Trio shell: one ROUTER socket, one `Link` per dialler.

Every connection that got past the ZAP handler (its key admitted) is a session, made on
its first frame, which must be a `Hello`. The application decides what to do through a
`ListenerHandler` (plain synchronous callbacks, never blocking): admit the hello with a
role or refuse it, take asks and subscriptions (answering later through `reply` /
`error` / `event`), hear when a session ends. A session ends on a Bye, on silence
(`dead_after` seconds without a frame, e.g. the dialler was killed), on a protocol error,
or when a frame for it cannot be delivered (the connection is gone).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import trio
import zmq

from ._errors import MalformedMessage, RemoteProtocolError, SendQueueFull, SocketClosed
from ._keys import KeyPair
from ._link import Link, LinkState, LocalInfo, Side
from ._link_events import (
    AskReceived,
    Closed,
    HelloReceived,
    LinkError,
    Misrouted,
    SubscribeReceived,
)
from ._messages import ActorAddress, Ask, Bye, Event, Hello, Subscribe, encode
from ._zmq import LINGER_MS, ZmqSocket, router_socket

log = logging.getLogger("rocd.cluster")


@dataclass(eq=False)
class Session:
    """One dialler connected to this listener."""

    routing_id: bytes
    key: str  # its public key (Z85), as the ZAP handler admitted it
    address: str  # its IP address
    link: Link
    role: str = ""  # given when its hello was admitted
    state: Any = None  # the application's own per-session data
    subscription: Subscribe | None = None
    events_sent: int = field(default=0)

    @property
    def uid(self) -> str:
        return self.link.remote_uid


@dataclass(frozen=True)
class Admit:
    role: str


@dataclass(frozen=True)
class Refuse:
    reason: str
    code: str = "refused"


class ListenerHandler(Protocol):
    def hello(self, session: Session, hello: Hello) -> Admit | Refuse: ...

    def ask(self, session: Session, ask: Ask) -> None: ...

    def subscribe(self, session: Session, subscribe: Subscribe) -> None: ...

    def closed(self, session: Session, closed: Closed) -> None: ...


class Listener:
    """The ROUTER and its sessions; see the module docstring."""

    def __init__(
        self,
        ctx: zmq.Context[Any],
        keys: KeyPair,
        *,
        bind: str,
        local: LocalInfo | Callable[[], LocalInfo],
        handler: ListenerHandler,
        dead_after: float = 3.0,
        max_sessions: int = 256,
    ) -> None:
        self._ctx = ctx
        self._keys = keys
        self._bind = bind
        #: What this instance says about itself (a callable: asked for each welcome).
        self.local = local
        self._handler = handler
        self._dead_after = dead_after
        self._max_sessions = max_sessions
        self.sessions: dict[bytes, Session] = {}
        self._socket: ZmqSocket | None = None
        self._tick_scope: trio.CancelScope | None = None
        self.endpoint = ""
        self.refused_frames = 0  # frames from connections we would not make a session for
        self._closing = False  # said bye to everyone: no new sessions

    async def run(self, *, task_status: trio.TaskStatus[str]) -> None:
        """Bind and serve until cancelled; started with the bound endpoint
        (tcp://host:port, the real port when `bind` asked for port 0)."""
        sock = router_socket(self._ctx, self._keys)
        try:
            sock.bind(_zmq_endpoint(self._bind))
            self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except BaseException:
            sock.close(linger=0)
            raise
        self._socket = ZmqSocket(
            sock,
            properties=("User-Id", "Peer-Address"),
            on_undeliverable=self._undeliverable,
            linger_ms=LINGER_MS,
        )
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._socket.run)
                nursery.start_soon(self._ticker)
                task_status.started(self.endpoint)
                await self._pump()
        finally:
            for session in list(self.sessions.values()):
                session.link.bye("listener stopped")
                self._closed(session)

    async def say_bye(self, reason: str, code: str = "closing") -> None:
        """Tell every session goodbye and wait (at most 0.2 s) for the Byes to leave;
        a listener that stops without it is only noticed when its sessions time out.
        From then on no new session is made (a frame already on its way from a dialler
        that was just told bye must not open another one)."""
        self._closing = True
        for session in list(self.sessions.values()):
            self.bye(session, reason, code)
        if self._socket is not None:
            with trio.move_on_after(0.2):
                await self._socket.wait_flushed()

    # -- answering -----------------------------------------------------------------------

    def reply(self, session: Session, ask_id: int, body: msgspec.Raw) -> None:
        if self._live(session):
            session.link.reply(ask_id, body)
            self._flush(session)

    def error(
        self,
        session: Session,
        ask_id: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        actor: ActorAddress | None = None,
    ) -> None:
        if self._live(session):
            session.link.error(ask_id, code, message, details, actor)
            self._flush(session)

    def event(self, session: Session, event: Event) -> None:
        if self._live(session):
            session.link.event(event)
            session.events_sent += 1
            self._flush(session)

    def bye(self, session: Session, reason: str, code: str = "closing") -> None:
        if self.sessions.get(session.routing_id) is session:
            session.link.bye(reason, code)
            self._flush(session)

    def _live(self, session: Session) -> bool:
        return (
            self.sessions.get(session.routing_id) is session
            and session.link.state is LinkState.OPEN
        )

    # -- the shell's tasks ---------------------------------------------------------------

    async def _pump(self) -> None:
        assert self._socket is not None
        while True:
            try:
                incoming = await self._socket.receive()
            except SocketClosed:
                return
            if len(incoming.frames) != 2:
                self.refused_frames += 1
                continue
            routing_id, data = incoming.frames
            session = self.sessions.get(routing_id)
            if session is None and self._closing:
                self.refused_frames += 1
                continue
            if session is None:
                session = self._new_session(routing_id, incoming.properties)
                if session is None:
                    continue
            try:
                session.link.receive(data, trio.current_time())
            except MalformedMessage as exc:
                log.warning("%s sent an unreadable frame: %s", session.address, exc)
            except RemoteProtocolError as exc:
                log.warning("%s broke the protocol: %s", session.address, exc)
            self._flush(session)

    def _new_session(self, routing_id: bytes, props: dict[str, str]) -> Session | None:
        assert self._socket is not None
        if len(self.sessions) >= self._max_sessions:
            self.refused_frames += 1
            bye = encode(Bye("too many connections", "busy"))
            with contextlib.suppress(SendQueueFull, SocketClosed):
                self._socket.send_nowait([routing_id, bye])
            return None
        now = trio.current_time()
        local = self.local() if callable(self.local) else self.local
        link = Link(Side.LISTENER, local, now, dead_after=self._dead_after)
        session = Session(routing_id, props.get("User-Id", ""), props.get("Peer-Address", ""), link)
        self.sessions[routing_id] = session
        log.debug("session %s from %s opened", routing_id.hex(), session.address)
        return session

    async def _ticker(self) -> None:
        while True:
            deadline = min(
                (s.link.next_deadline() for s in self.sessions.values()), default=float("inf")
            )
            with trio.CancelScope(deadline=deadline) as scope:
                self._tick_scope = scope
                await trio.sleep_forever()
            self._tick_scope = None
            now = trio.current_time()
            for session in list(self.sessions.values()):
                if session.link.next_deadline() <= now:
                    session.link.tick(now)
                    if session.link.state is LinkState.CLOSED and self._socket is not None:
                        # Gone silent: tell it anyway, in case only its heartbeats are lost
                        # (it then dials again at once instead of finding out later).
                        bye = encode(Bye("no heartbeat for too long", "dead"))
                        with contextlib.suppress(SendQueueFull, SocketClosed):
                            self._socket.send_nowait([session.routing_id, bye])
                    self._flush(session)

    def _flush(self, session: Session) -> None:
        """Send what the session's link wrote, then act on what happened on it (which may
        write more: a hello's answer), until the link has nothing left to say."""
        socket = self._socket
        link = session.link
        while True:
            for data in link.outbox():
                if socket is None:
                    break
                try:
                    socket.send_nowait([session.routing_id, data])
                except (SendQueueFull, SocketClosed) as exc:
                    link.bye(f"cannot send: {exc}", "dead")
                    link.outbox()
                    break
            events = link.events()
            if not events:
                break
            for event in events:
                self._on_event(session, event)
        scope = self._tick_scope
        if scope is not None and session.routing_id in self.sessions:
            scope.deadline = min(scope.deadline, link.next_deadline())

    def _on_event(self, session: Session, event: object) -> None:
        match event:
            case HelloReceived(hello=hello):
                answer = self._handler.hello(session, hello)
                if isinstance(answer, Admit):
                    session.role = answer.role
                    session.link.welcome(answer.role, trio.current_time())
                else:
                    session.link.refuse(answer.reason, answer.code)
            case AskReceived(ask=ask):
                self._handler.ask(session, ask)
            case SubscribeReceived(subscribe=subscribe):
                session.subscription = subscribe
                self._handler.subscribe(session, subscribe)
            case LinkError(error=error):
                log.warning("%s: %s", session.address, error.message)
            case Misrouted(frame=frame):
                log.debug("%s: frame for %r dropped (no relaying)", session.address, frame.dst)
            case Closed():
                self._closed(session, event)

    def _closed(self, session: Session, closed: Closed | None = None) -> None:
        if self.sessions.get(session.routing_id) is session:
            del self.sessions[session.routing_id]
            why = closed.reason if closed is not None else "listener stopped"
            log.debug("session %s (%s) closed: %s", session.routing_id.hex(), session.uid, why)
            if session.link.state is LinkState.OPEN:
                session.link.bye("closed")
            self._handler.closed(session, closed or Closed("listener stopped", "closing", False))

    def _undeliverable(self, frames: list[bytes], why: str) -> None:
        session = self.sessions.get(frames[0]) if frames else None
        if session is not None and session.link.state is not LinkState.CLOSED:
            session.link.bye(why, "dead")
            session.link.outbox()  # nowhere to send the Bye
            self._flush(session)


def _zmq_endpoint(bind: str) -> str:
    """ZeroMQ spells "any free port" tcp://host:*, not :0."""
    return bind.removesuffix(":0") + ":*" if bind.endswith(":0") else bind
