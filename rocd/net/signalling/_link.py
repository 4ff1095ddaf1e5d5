"""One signalling link between two instances, as a state machine over bytes and time.

Sans-IO: the shell feeds it the frames it receives (`receive(data, now)`) and the time
(`tick(now)`), and after every call drains what to send (`outbox()`) and what happened
(`events()`). Nothing here reads a clock or touches a socket.

Sides and states:

    dialler:   NEW --hello()--> GREETING --Welcome in--> OPEN --bye()/Bye in/dead--> CLOSED
    listener:  NEW --Hello in--> GREETING --welcome()--> OPEN --...--> CLOSED
                                          --refuse()--> CLOSED

Rules:
- The dialler speaks first, once (`Hello`); the listener answers `Welcome` or refuses with
  `Bye`. Both handshake frames are version MAJOR.0; afterwards both sides use the agreed
  minor (the lower of the two) and a frame of a higher minor breaks the protocol.
- Only in OPEN: asks, replies, errors, events, subscriptions, heartbeats. A peer that
  sends one of them before the handshake ends, or a second Hello/Welcome, breaks the
  protocol: the link closes with a `Bye` (code "protocol") and `receive` raises
  `RemoteProtocolError`. A frame that cannot be decoded at all is answered with an
  `Error` (id 0, code "malformed") and dropped; the link stays open (`receive` raises
  `MalformedMessage` so the shell can count it).
- Our own misuse (asking before OPEN, sending after CLOSED) raises `LinkStateError`.
- Liveness: the dialler sends a `Heartbeat` every `heartbeat_interval` seconds in OPEN, the
  listener acks it (the round trip is `rtt`). Any frame counts as a sign of life; a link
  that hears nothing for `dead_after` seconds (or no Welcome within `handshake_timeout`)
  closes with a `Closed` event of code "dead".
- Pending asks: each has a deadline; `tick` expires it (`AskExpired`), a late reply is
  ignored. When the link closes every pending ask ends with `AskAborted`.
- Envelope: frames carry our uid as `src` and the other side's as `dst`. A frame whose
  `dst` is another instance, or whose `src` is not the other side, is not ours to read:
  it is handed up as `Misrouted` (a relaying instance forwards such frames).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ._errors import LinkStateError, MalformedMessage, RemoteProtocolError
from ._link_events import (
    Answered,
    AskAborted,
    AskExpired,
    AskFailed,
    AskReceived,
    Closed,
    EventReceived,
    HelloReceived,
    LinkError,
    LinkEvent,
    Misrouted,
    SubscribeReceived,
    Welcomed,
)
from ._messages import (
    CAPABILITIES,
    MINOR,
    ActorAddress,
    Ask,
    Bye,
    Error,
    Event,
    Heartbeat,
    HeartbeatAck,
    Hello,
    Message,
    Reply,
    Subscribe,
    Welcome,
    decode,
    encode,
)

#: Asks one side may have pending on a link; more is our own overload (LinkStateError).
MAX_PENDING_ASKS = 1024


class Side(enum.Enum):
    DIALLER = "dialler"
    LISTENER = "listener"


class LinkState(enum.Enum):
    NEW = "new"
    GREETING = "greeting"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class LocalInfo:
    """What this instance says about itself in a Hello or Welcome."""

    uid: str
    name: str
    software: str
    address: str = ""
    api: str = ""
    started: float = 0.0
    minor: int = MINOR
    capabilities: tuple[str, ...] = CAPABILITIES


@dataclass
class _Pending:
    deadline: float
    request: str


@dataclass
class Link:
    """The state of one link; see the module docstring for the rules."""

    side: Side
    local: LocalInfo
    now: float  # when the link was made (its silence is counted from here)
    heartbeat_interval: float = 1.0  # seconds
    dead_after: float = 3.0  # seconds of silence
    handshake_timeout: float = 5.0  # seconds for the dialler to get its Welcome
    state: LinkState = LinkState.NEW
    remote: Hello | Welcome | None = None  # what the other side said about itself
    minor: int = 0  # agreed once OPEN
    rtt: float | None = None  # seconds, from the last heartbeat answered
    last_heard: float = 0.0
    malformed: int = 0  # frames that could not be decoded
    late_replies: int = 0  # answers to asks that had expired
    _outbox: list[bytes] = field(default_factory=list)
    _events: list[LinkEvent] = field(default_factory=list)
    _pending: dict[int, _Pending] = field(default_factory=dict)
    _next_id: int = 1
    _hb_seq: int = 0
    _hb_sent: dict[int, float] = field(default_factory=dict)
    _next_heartbeat: float = 0.0
    _greeted_at: float = 0.0

    def __post_init__(self) -> None:
        self.last_heard = self.now

    # -- draining ----------------------------------------------------------------------

    def outbox(self) -> list[bytes]:
        """Frames to send, in order (and forget them)."""
        out, self._outbox = self._outbox, []
        return out

    def events(self) -> list[LinkEvent]:
        """What happened since the last call, in order (and forget it)."""
        out, self._events = self._events, []
        return out

    @property
    def remote_uid(self) -> str:
        return self.remote.uid if self.remote is not None else ""

    @property
    def pending(self) -> int:
        return len(self._pending)

    def next_deadline(self) -> float:
        """When `tick` has something to do next (inf when nothing is scheduled)."""
        if self.state is LinkState.CLOSED:
            return float("inf")
        times = [self.last_heard + self.dead_after] if self._watching_silence() else []
        if self.state is LinkState.GREETING and self.side is Side.DIALLER:
            times.append(self._greeted_at + self.handshake_timeout)
        if self.state is LinkState.OPEN and self.side is Side.DIALLER:
            times.append(self._next_heartbeat)
        times.extend(p.deadline for p in self._pending.values())
        return min(times, default=float("inf"))

    # -- our side ----------------------------------------------------------------------

    def hello(self, now: float, *, join: str = "") -> None:
        """Dialler: introduce ourselves (NEW -> GREETING)."""
        self._expect(Side.DIALLER, LinkState.NEW, "hello")
        me = self.local
        msg = Hello(
            uid=me.uid,
            name=me.name,
            minor=me.minor,
            software=me.software,
            capabilities=list(me.capabilities),
            address=me.address,
            api=me.api,
            started=me.started,
            join=join,
        )
        self._send(msg, minor=0)
        self.state = LinkState.GREETING
        self._greeted_at = now
        self.last_heard = now

    def welcome(self, role: str, now: float) -> None:
        """Listener: accept the hello received, giving the dialler `role` (-> OPEN)."""
        self._expect(Side.LISTENER, LinkState.GREETING, "welcome")
        assert isinstance(self.remote, Hello)
        me = self.local
        self.minor = min(self.remote.minor, me.minor)
        msg = Welcome(
            uid=me.uid,
            name=me.name,
            minor=self.minor,
            software=me.software,
            role=role,
            capabilities=list(me.capabilities),
            address=me.address,
            api=me.api,
            started=me.started,
        )
        self._send(msg, minor=0)
        self.state = LinkState.OPEN
        self.last_heard = now

    def refuse(self, reason: str, code: str = "refused") -> None:
        """Listener: turn the hello down with a `Bye` saying why (-> CLOSED)."""
        self._expect(Side.LISTENER, LinkState.GREETING, "refuse")
        self._send(Bye(reason, code))
        self._close(reason, code, by_remote=False)

    def ask(
        self, actor: ActorAddress, request: str, body: msgspec.Raw, timeout: float, now: float
    ) -> int:
        """Send a request; returns its id. The answer comes as Answered / AskFailed /
        AskExpired (after `timeout` seconds) / AskAborted (the link closed)."""
        self._expect_open("ask")
        if len(self._pending) >= MAX_PENDING_ASKS:
            raise LinkStateError(f"{MAX_PENDING_ASKS} asks already pending on this link")
        ask_id = self._next_id
        self._next_id += 1
        timeout_ms = max(1, round(timeout * 1000))
        self._send(Ask(ask_id, actor, request, body, timeout_ms))
        self._pending[ask_id] = _Pending(now + timeout, request)
        return ask_id

    def reply(self, ask_id: int, body: msgspec.Raw) -> None:
        self._expect_open("reply")
        self._send(Reply(ask_id, body))

    def error(
        self,
        ask_id: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        actor: ActorAddress | None = None,
    ) -> None:
        """Answer an ask with an error (or, with id 0, complain about the link)."""
        if self.state is LinkState.CLOSED:
            raise LinkStateError("cannot send an error: the link is closed")
        self._send(Error(ask_id, code, message, details or [], actor))

    def event(self, event: Event) -> None:
        self._expect_open("event")
        self._send(event)

    def subscribe(self, kinds: list[str], *, active: bool = True) -> None:
        self._expect_open("subscribe")
        self._send(Subscribe(kinds, active))

    def abort(self, reason: str, code: str) -> None:
        """Close without a word: the transport below failed (the peer refused our key in
        the CURVE handshake, the connection is gone). A no-op once closed."""
        if self.state is not LinkState.CLOSED:
            self._close(reason, code, by_remote=False)

    def bye(self, reason: str, code: str = "closing") -> None:
        """Close the link, telling the other side why; a no-op once closed."""
        if self.state is LinkState.CLOSED:
            return
        if self.state is not LinkState.NEW:
            self._send(Bye(reason, code))
        self._close(reason, code, by_remote=False)

    # -- time --------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Expire asks, send heartbeats that are due, notice a silent peer."""
        if self.state is LinkState.CLOSED:
            return
        for ask_id, pending in list(self._pending.items()):
            if now >= pending.deadline:
                del self._pending[ask_id]
                self._events.append(AskExpired(ask_id))
        if (
            self.side is Side.DIALLER
            and self.state is LinkState.GREETING
            and now >= self._greeted_at + self.handshake_timeout
        ):
            self._close(f"no welcome within {self.handshake_timeout:g} s", "dead", by_remote=False)
            return
        if self._watching_silence() and now >= self.last_heard + self.dead_after:
            self._close(f"silent for {now - self.last_heard:.1f} s", "dead", by_remote=False)
            return
        heartbeat_due = now >= self._next_heartbeat
        if self.side is Side.DIALLER and self.state is LinkState.OPEN and heartbeat_due:
            self._hb_seq += 1
            self._hb_sent[self._hb_seq] = now
            if len(self._hb_sent) > 8:
                del self._hb_sent[min(self._hb_sent)]
            self._send(Heartbeat(self._hb_seq))
            self._next_heartbeat = now + self.heartbeat_interval

    # -- their side --------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """Feed one frame. Raises MalformedMessage (frame dropped, link open) or
        RemoteProtocolError (link closed with a Bye); see the rules."""
        if self.state is LinkState.CLOSED:
            return
        try:
            frame = decode(data)
        except MalformedMessage as exc:
            self.malformed += 1
            self._send(Error(0, "malformed", str(exc)))
            raise
        if frame.dst not in ("", self.local.uid) or (
            self.remote is not None and frame.src not in ("", self.remote.uid)
        ):
            self.last_heard = now
            self._events.append(Misrouted(frame))
            return
        if self.state is LinkState.OPEN and frame.v[1] > self.minor:
            self._violation(f"a frame of minor {frame.v[1]} on a link that agreed {self.minor}")
        self.last_heard = now
        self._dispatch(frame.msg, now)

    def _dispatch(self, msg: Message, now: float) -> None:
        state, side = self.state, self.side
        match msg:
            case Bye(reason=reason, code=code):
                self._close(reason, code, by_remote=True)
            case Hello() if side is Side.LISTENER and state is LinkState.NEW:
                self.remote = msg
                self.state = LinkState.GREETING
                self._events.append(HelloReceived(msg))
            case Welcome() if side is Side.DIALLER and state is LinkState.GREETING:
                if msg.minor > self.local.minor:
                    self._violation(f"welcome agrees minor {msg.minor}, above ours")
                self.remote = msg
                self.minor = msg.minor
                self.state = LinkState.OPEN
                self._next_heartbeat = now + self.heartbeat_interval
                self._events.append(Welcomed(msg))
            case Error(id=0) if state is not LinkState.NEW:
                self._events.append(LinkError(msg))
            case Hello() | Welcome():
                self._violation(f"unexpected {type(msg).__name__} ({state.value} link)")
            case _ if state is not LinkState.OPEN:
                self._violation(f"{type(msg).__name__} before the handshake ended")
            case Heartbeat(seq=seq) if side is Side.LISTENER:
                self._send(HeartbeatAck(seq))
            case HeartbeatAck(seq=seq) if side is Side.DIALLER:
                sent = self._hb_sent.pop(seq, None)
                if sent is not None:
                    self.rtt = now - sent
            case Ask():
                if msg.id <= 0:
                    self._violation(f"ask with id {msg.id}")
                self._events.append(AskReceived(msg))
            case Reply(id=ask_id, body=body):
                if self._pending.pop(ask_id, None) is None:
                    self.late_replies += 1
                else:
                    self._events.append(Answered(ask_id, body))
            case Error(id=ask_id):
                if self._pending.pop(ask_id, None) is None:
                    self.late_replies += 1
                else:
                    self._events.append(AskFailed(ask_id, msg))
            case Event():
                self._events.append(EventReceived(msg))
            case Subscribe():
                self._events.append(SubscribeReceived(msg))
            case _:
                self._violation(f"unexpected {type(msg).__name__} on the {side.value} side")

    # -- helpers -----------------------------------------------------------------------

    def _watching_silence(self) -> bool:
        """A greeting dialler waits for its handshake timeout, not for `dead_after`."""
        return self.state is LinkState.OPEN or self.side is Side.LISTENER

    def _send(self, msg: Message, *, minor: int | None = None) -> None:
        self._outbox.append(
            encode(
                msg,
                src=self.local.uid,
                dst=self.remote_uid,
                minor=self.minor if minor is None else minor,
            )
        )

    def _violation(self, what: str) -> None:
        reason = f"protocol error: {what}"
        self._send(Bye(reason, "protocol"))
        self._close(reason, "protocol", by_remote=False)
        raise RemoteProtocolError(what)

    def _close(self, reason: str, code: str, *, by_remote: bool) -> None:
        self.state = LinkState.CLOSED
        for ask_id in list(self._pending):
            self._events.append(AskAborted(ask_id, reason))
        self._pending.clear()
        self._events.append(Closed(reason, code, by_remote))

    def _expect(self, side: Side, state: LinkState, what: str) -> None:
        if self.side is not side:
            raise LinkStateError(f"the {self.side.value} side cannot {what}")
        if self.state is not state:
            raise LinkStateError(f"cannot {what} in state {self.state.value}")

    def _expect_open(self, what: str) -> None:
        if self.state is not LinkState.OPEN:
            raise LinkStateError(f"cannot {what}: the link is {self.state.value}")
