"""The listening side of the cluster: who may say hello, and serving what peers ask.

Admission happens twice, both at the handshake:
- the ZAP handler (`decide`) lets a CURVE client finish its handshake only if its key is
  trusted, or while an invite is open (a newcomer's key is not known yet);
- the hello (`hello`) of a trusted key is welcomed with the role that key was given; an
  untrusted one must carry a valid, unexpired invite secret (then its key is trusted with
  the invite's role, and this instance dials it back), else it is refused.
Every refusal is counted per key and published as `peer.refused` (at most once a minute
per key). A trusted peer dialling us is also a sign that our own link to it may now get
through: its peer actor is told to retry at once.

An ask names a registered request (`WIRE`), which the asking key's role must allow; its
fields are decoded into the request class and the addressed actor is asked, with the
asker's deadline; the reply or the RocdError goes back. Each session may have a bounded
number of asks in flight. A subscription forwards this instance's own events (never the
ones relayed from other peers, so nothing loops); if the bus drops the subscription for
being slow, a number is skipped so the subscriber sees the gap and reloads.
"""

from __future__ import annotations

import logging
import time
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
    Refuse,
    Session,
    Subscribe,
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
from ._registry import Registry
from ._roles import allows
from ._supervisor import Publish
from ._trust import PendingInvite, TrustBook, TrustedPeer
from ._wire import WIRE

log = logging.getLogger("rocd.cluster")

#: Asks one session may have in flight; more are answered "busy".
MAX_ASKS_PER_SESSION = 64
#: Longest deadline honoured for an ask, seconds.
MAX_ASK_SECONDS = 60.0


@dataclass(eq=False)
class _SessionTasks:
    scopes: set[trio.CancelScope] = field(default_factory=set)
    events: trio.CancelScope | None = None


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
        session.state = _SessionTasks()
        if hello.uid == self.uid:
            return Refuse("that is this instance itself", "refused")
        trusted = self.book.trusted(session.key)
        if trusted is not None:
            self._met(trusted, hello, session)
            return Admit(trusted.role)
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

    def revoke(self, key: str, reason: str) -> None:
        """Close every session of `key` (its trust was withdrawn)."""
        if self.listener is None:
            return
        for session in list(self.listener.sessions.values()):
            if session.key == key:
                self.listener.bye(session, reason, "revoked")

    def set_role(self, key: str, role: str) -> None:
        if self.listener is None:
            return
        for session in self.listener.sessions.values():
            if session.key == key:
                session.role = role

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
        entry = WIRE.get(ask.request)
        if entry is None:
            raise Unsupported(f"{ask.request[:64]!r} is not a request other instances may make")
        if not allows(session.role, entry.role):
            raise Forbidden(
                f"{entry.name} needs role {entry.role} on {self._name()} ({self.uid}); "
                f"the asking instance's key has role {session.role}",
                details=[{"required": entry.role, "role": session.role, "peer": self.uid}],
            )
        request = decode_value(ask.body, entry.cls)
        ref = self._registry.find(ask.actor.kind, ask.actor.uid)
        if ref is None:
            kind, uid = ask.actor.kind[:32], ask.actor.uid[:200]
            raise NotFound(f"no {kind} with uid {uid!r}", details=[{"in": "path", "field": "uid"}])
        # Answer a little before the asker gives up, so it hears why.
        within = min(ask.timeout_ms / 1000, MAX_ASK_SECONDS)
        return await ref.ask(request, within=max(0.05, within * 0.9))

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
