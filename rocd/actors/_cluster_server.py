"""The listening side of the cluster: who may say hello, and serving what peers ask.

Admission happens twice, both at the handshake:
- the ZAP handler (`decide`) lets a CURVE client finish its handshake only if its key is
  trusted, or while an invite is open (a newcomer's key is not known yet);
- the hello (`hello`) of a trusted key is welcomed with the role that key was given; an
  untrusted one must carry a valid, unexpired invite secret (then its key is trusted with
  the invite's role, and this instance dials it back), else it is refused.
Every refusal is counted per key and published as `peer.refused` (at most once a minute
per key). A uid belongs to one key: a hello with the uid another trusted key already has
is refused (a rendezvous relies on it to tell who sent a frame).

A direct session, once admitted, is also a carrier of relayed links (see
rocd.net.signalling._switchboard). A relayed session (a hello that came through another
instance) is admitted with the role of its own key, but never more than the role of the
instance that carried it: a rendezvous vouches for who is talking, and can never make
this instance do more than it may do itself. A trusted peer dialling us is also a sign
that our own link to it may now get through: its peer actor is told to retry at once.

An ask names a registered request (`WIRE`), which the asking key's role must allow; its
fields are decoded into the request class and the addressed actor is asked, with the
asker's deadline; the reply or the RocdError goes back. Each session may have a bounded
number of asks in flight. A subscription forwards this instance's own events (never the
ones relayed from other peers, so nothing loops); if the bus drops the subscription for
being slow, a number is skipped so the subscriber sees the gap and reloads.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import trio

from rocd.errors import Busy, Forbidden, NotFound, RocdError, Unsupported
from rocd.net.signalling import (
    Admit,
    Ask,
    Closed,
    Hello,
    LinkState,
    Listener,
    MalformedMessage,
    Misrouted,
    Refuse,
    Session,
    SessionCarrier,
    Subscribe,
    Switchboard,
    ZapAnswer,
    ZapRequest,
    decode_value,
    encode_value,
    fingerprint,
)
from rocd.net.signalling import Event as EventMessage

from ._actor import ActorRef
from ._events import EventFilter
from ._events import Subscribe as SubscribeEvents
from ._peer_handle import Peers
from ._registry import Registry
from ._relay_types import Forward, GetProbeTicket, ProbeTicket
from ._remote_peer import RemotePeer
from ._roles import ROLES, allows
from ._supervisor import Publish
from ._trust import PendingInvite, TrustBook, TrustedPeer
from ._wire import WIRE

log = logging.getLogger("rocd.cluster")

#: Asks one session may have in flight; more are answered "busy".
MAX_ASKS_PER_SESSION = 64
#: Longest deadline honoured for an ask, seconds.
MAX_ASK_SECONDS = 60.0
#: Seconds a UDP probe ticket stays valid, and how many may be outstanding.
PROBE_TICKET_SECONDS = 30.0
MAX_PROBE_TICKETS = 1024


@dataclass(eq=False)
class _SessionTasks:
    scopes: set[trio.CancelScope] = field(default_factory=set)
    events: trio.CancelScope | None = None
    carrier: SessionCarrier | None = None  # a direct session, as a carrier of relayed links


class ClusterServer:
    """The listener's handler; see the module docstring."""

    def __init__(
        self,
        *,
        uid: str,
        name: Callable[[], str],
        book: TrustBook,
        registry: Registry,
        bus: ActorRef,
        nursery: trio.Nursery,
        publish: Publish,
        adopt: Callable[[TrustedPeer, PendingInvite], None],
        met: Callable[[TrustedPeer, Hello, Session], None],
    ) -> None:
        self.uid = uid
        self._name = name
        self.book = book
        self._registry = registry
        self._bus = bus
        self._nursery = nursery
        self._publish = publish
        self._adopt = adopt
        self._met = met
        self.listener: Listener | None = None
        self.switchboard: Switchboard | None = None
        self.peers: Peers | None = None  # for Forward: this instance's peer handles
        #: The IP address each peer's session came from, by uid.
        self.observed: dict[str, str] = {}
        #: A rendezvous's UDP probe port (None: this instance answers no probes).
        self.probe_port: int | None = None
        #: host:port each peer's UDP probes came from, by uid (told on change).
        self.observed_udp: dict[str, str] = {}
        self.observed_changed: Callable[[str], None] = lambda uid: None
        self._tickets: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    # -- admission -----------------------------------------------------------------------

    def decide(self, request: ZapRequest) -> ZapAnswer:
        """The ZAP handler's answer for a client completing its CURVE handshake."""
        if self.book.trusted(request.key) is not None:
            return ZapAnswer(True)
        if self.book.invites_open(time.time()):
            return ZapAnswer(True)  # maybe a newcomer with an invite: its hello decides
        self._refused(request.key, request.address, "unknown key")
        return ZapAnswer(False, "unknown key")

    def hello(self, session: Session, hello: Hello) -> Admit | Refuse:
        answer = self._admit(session, hello)
        if isinstance(answer, Admit) and session.carrier is None:
            tasks = session.state
            assert isinstance(tasks, _SessionTasks)
            self.observed[hello.uid] = session.address
            if self.switchboard is not None and self.listener is not None:
                tasks.carrier = SessionCarrier(
                    self.listener, session, rendezvous="rendezvous" in hello.capabilities
                )
                self.switchboard.add_carrier(tasks.carrier)
        return answer

    def misrouted(self, session: Session, event: Misrouted) -> None:
        """A frame on a session that is not its own: the switchboard sorts it (only a
        direct session carries relayed links)."""
        tasks = session.state
        if self.switchboard is None or not isinstance(tasks, _SessionTasks):
            return
        if tasks.carrier is None:
            self.switchboard.stats.dropped["frame on a relayed link"] += 1
            return
        self.switchboard.receive(tasks.carrier, event.frame, event.data)

    def _admit(self, session: Session, hello: Hello) -> Admit | Refuse:
        session.state = _SessionTasks()
        if hello.uid == self.uid:
            return Refuse("that is this instance itself", "refused")
        for other in self.book.peers.values():
            if other.uid == hello.uid and other.key != session.key:
                self._refused(session.key, session.address, f"uid {hello.uid} has another key")
                return Refuse(
                    f"uid {hello.uid} belongs to another key here ({fingerprint(other.key)})",
                    "refused",
                )
        trusted = self.book.trusted(session.key)
        if trusted is not None and session.carrier is not None and session.via != hello.uid:
            carrier = self.book.trusted(session.carrier.key)
            if carrier is None:
                return Refuse("the instance that relayed this hello is not trusted", "refused")
            # Not a sign that a direct link would work: no `met` (no retry, no address).
            return Admit(min(trusted.role, carrier.role, key=_rank))
        if trusted is not None:
            self._met(trusted, hello, session)
            return Admit(trusted.role)
        if hello.join and session.carrier is not None and session.via != hello.uid:
            # The key of a hello through a rendezvous is its word, not a proof: an
            # invite makes a key trusted, so it is used only where the key was proven.
            return Refuse("an invite cannot be used through a relay; dial directly", "join")
        if hello.join:
            invite = self.book.take_invite(hello.join, time.time())
            if invite is not None:
                newcomer = TrustedPeer(
                    key=session.key,
                    role=invite.role,
                    address=hello.address,
                    uid=hello.uid,
                    name=hello.name,
                    source="invite",
                    added=time.time(),
                )
                self.book.peers[session.key] = newcomer
                log.info("%s (%s) joined with an invite, as %s", hello.name, hello.uid, invite.role)
                self._adopt(newcomer, invite)
                return Admit(invite.role)
            self._refused(session.key, session.address, "invalid join token")
            return Refuse("the join token is unknown, used or expired", "join")
        self._refused(session.key, session.address, "unknown key")
        return Refuse("this instance does not trust your key", "refused")

    def _refused(self, key: str, address: str, reason: str) -> None:
        entry = self.book.refuse(key, address, reason, time.time())
        log.info("refused %s from %s: %s", fingerprint(key) if key else "?", address, reason)
        if entry is not None:
            self._publish(
                "peer.refused",
                fingerprint(key) if key else "",
                {
                    "fingerprint": fingerprint(key) if key else "",
                    "key": key,
                    "address": address,
                    "reason": reason,
                    "count": entry.count,
                },
            )

    def closed(self, session: Session, closed: Closed) -> None:
        tasks = session.state
        if isinstance(tasks, _SessionTasks):
            for scope in tasks.scopes:
                scope.cancel()
            if tasks.events is not None:
                tasks.events.cancel()
            if tasks.carrier is not None and self.switchboard is not None:
                why = f"{session.uid} left: {closed.reason}"
                self.switchboard.remove_carrier(tasks.carrier, why)
                tasks.carrier = None

    def revoke(self, key: str, reason: str) -> None:
        """Close every session of `key` (its trust was withdrawn)."""
        if self.listener is None:
            return
        for session in list(self.listener.sessions.values()):
            if session.key == key:
                self.listener.bye(session, reason, "revoked")

    def set_role(self, key: str, role: str) -> None:
        """`key`'s role changed: its sessions, and the sessions it relays, get it now."""
        if self.listener is None:
            return
        for session in self.listener.sessions.values():
            carrier = session.carrier
            relayed = carrier is not None and carrier.uid != session.uid
            if session.key == key and not relayed:
                session.role = role
            elif relayed and key in (session.key, carrier.key if carrier else ""):
                own = self.book.trusted(session.key)
                via = self.book.trusted(carrier.key) if carrier else None
                roles = [r.role for r in (own, via) if r is not None] + [role]
                session.role = min(roles, key=_rank)

    def sessions_of(self, uid: str) -> list[Session]:
        if self.listener is None:
            return []
        return [s for s in self.listener.sessions.values() if s.uid == uid]

    # -- asks ----------------------------------------------------------------------------

    def ask(self, session: Session, ask: Ask) -> None:
        tasks = session.state
        assert isinstance(tasks, _SessionTasks)
        assert self.listener is not None
        if len(tasks.scopes) >= MAX_ASKS_PER_SESSION:
            self.listener.error(session, ask.id, Busy.code, "too many asks in flight")
            return
        self._nursery.start_soon(self._serve, session, tasks, ask)

    async def _serve(self, session: Session, tasks: _SessionTasks, ask: Ask) -> None:
        listener = self.listener
        assert listener is not None
        with trio.CancelScope() as scope:
            tasks.scopes.add(scope)
            try:
                reply = await self._answer(session, ask)
                body = encode_value(reply)
            except RocdError as exc:
                listener.error(session, ask.id, exc.code, exc.message, exc.details, ask.actor)
            except (MalformedMessage, msgspec.EncodeError, TypeError) as exc:
                listener.error(session, ask.id, "invalid", f"{ask.request}: {exc}")
            else:
                listener.reply(session, ask.id, body)
            finally:
                tasks.scopes.discard(scope)

    async def _answer(self, session: Session, ask: Ask) -> Any:
        entry = self._allowed(session, ask.request)
        request = decode_value(ask.body, entry.cls)
        if isinstance(request, GetProbeTicket):
            return self._ticket(session)
        if isinstance(request, Forward):
            return await self._forward_ask(session, request)
        ref = self._registry.find(ask.actor.kind, ask.actor.uid)
        if ref is None:
            kind, uid = ask.actor.kind[:32], ask.actor.uid[:200]
            raise NotFound(f"no {kind} with uid {uid!r}", details=[{"in": "path", "field": "uid"}])
        # Answer a little before the asker gives up, so it hears why.
        within = min(ask.timeout_ms / 1000, MAX_ASK_SECONDS)
        return await ref.ask(request, within=max(0.05, within * 0.9))

    def _allowed(self, session: Session, name: str) -> Any:
        """The WIRE entry of request `name`, if the session's role allows it."""
        entry = WIRE.get(name)
        if entry is None:
            raise Unsupported(f"{name[:64]!r} is not a request other instances may make")
        if not allows(session.role, entry.role):
            raise Forbidden(
                f"{entry.name} needs role {entry.role} on {self._name()} ({self.uid}); "
                f"the asking instance's key has role {session.role}",
                details=[{"required": entry.role, "role": session.role, "peer": self.uid}],
            )
        return entry

    async def _forward_ask(self, session: Session, forward: Forward) -> Any:
        """Make the carried request on our peer `forward.peer`, as ourselves."""
        entry = self._allowed(session, forward.request)
        if entry.cls in (Forward, GetProbeTicket):
            raise Unsupported(f"{entry.name} cannot be forwarded")
        if self.peers is None or forward.peer in ("", session.uid, self.uid):
            raise NotFound(f"no peer {forward.peer[:64]!r} to forward to")
        handle = self.peers.get(forward.peer)
        if handle.local or not isinstance(handle, RemotePeer):
            raise NotFound(f"{forward.peer[:64]!r} is not a peer this instance links to")
        request = decode_value(forward.body, entry.cls)
        within = min(max(0.05, forward.timeout_s), MAX_ASK_SECONDS) * 0.9
        return await handle.ask(forward.kind, forward.uid, request, within=within)

    # -- UDP probes (a rendezvous) --------------------------------------------------------

    def _ticket(self, session: Session) -> ProbeTicket:
        if self.probe_port is None:
            raise Unsupported(f"{self._name()} ({self.uid}) is not a rendezvous")
        now = time.monotonic()
        while self._tickets and (
            len(self._tickets) >= MAX_PROBE_TICKETS or next(iter(self._tickets.values()))[1] < now
        ):
            self._tickets.popitem(last=False)
        token = secrets.token_bytes(16)
        self._tickets[token] = (session.uid, now + PROBE_TICKET_SECONDS)
        return ProbeTicket(token.hex(), self.probe_port, PROBE_TICKET_SECONDS)

    def probe_seen(self, token: bytes, host: str, port: int) -> None:
        """A UDP probe came with `token`: that peer's datagrams come from host:port."""
        ticket = self._tickets.get(token)
        if ticket is None or ticket[1] < time.monotonic():
            return
        uid, address = ticket[0], f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        if self.observed_udp.get(uid) != address:
            self.observed_udp[uid] = address
            self.observed_changed(uid)

    # -- events --------------------------------------------------------------------------

    def subscribe(self, session: Session, subscribe: Subscribe) -> None:
        tasks = session.state
        assert isinstance(tasks, _SessionTasks)
        if tasks.events is not None:
            tasks.events.cancel()
            tasks.events = None
        if subscribe.active:
            scope = trio.CancelScope()
            tasks.events = scope
            self._nursery.start_soon(self._forward, session, tuple(subscribe.kinds), scope)

    async def _forward(
        self, session: Session, kinds: tuple[str, ...], scope: trio.CancelScope
    ) -> None:
        listener = self.listener
        assert listener is not None
        n = 0
        with scope:
            while session.link.state is LinkState.OPEN:
                events = await self._bus.ask(
                    SubscribeEvents(EventFilter(kinds=kinds, peer=self.uid), buffer=1024)
                )
                async with events:
                    async for ev in events:
                        n += 1
                        message = EventMessage(
                            n, ev.seq, ev.time, ev.kind, ev.peer, ev.subject, ev.data
                        )
                        try:
                            listener.event(session, message)
                        except (msgspec.EncodeError, TypeError) as exc:
                            log.warning("event %s not forwarded: %s", ev.kind, exc)
                if not events.overrun:
                    return  # the bus is shutting down
                n += 1  # a gap: the subscriber reloads our state


def _rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1
