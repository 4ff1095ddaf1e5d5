"""Peer actors: one per trusted remote instance, keeping a link to it and its mirror.

The actor dials the remote's listener, over and over: a link that closes (the peer said
bye, went silent for `dead_after` seconds, was killed) is marked offline at once and
dialled again after a backoff (0.5 s doubling to 5 s; reset after a link that got
through; a `Retry` skips the wait, e.g. when that peer has just dialled us). Each time a
link opens the actor subscribes to the remote's events, then loads the remote's state in
full (`GetSnapshot`) into its mirror, then applies and relays every event it receives:
the mirror stays current, and this instance's event bus carries the remote's events.
Events lost on the way (a gap in their numbers) cause a full reload.

The actor's face in the `Peers` directory is its `RemotePeer` (rocd.actors._remote_peer),
through which the API and the stream coordinator ask that instance like the local one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import trio
import zmq

from rocd.errors import RocdError
from rocd.net.signalling import (
    ActorAddress,
    AskRefused,
    AskTimedOut,
    Closed,
    Connection,
    HandshakeFailed,
    KeyPair,
    LinkDown,
    LocalInfo,
    MalformedMessage,
    Welcome,
    decode_value,
    encode_value,
    fingerprint,
)

from ._actor import Actor, Request
from ._events import Event
from ._mirror import GetSnapshot, Snapshot
from ._peer_handle import Peers
from ._remote_peer import RemotePeer
from ._supervisor import Publish
from ._trust import TrustedPeer

log = logging.getLogger("rocd.cluster")

R = TypeVar("R")

#: Seconds between two dials of a peer that cannot be reached (doubling, up to MAX).
BACKOFF_MIN = 0.5
BACKOFF_MAX = 5.0
#: Seconds a snapshot may take.
SNAPSHOT_TIMEOUT = 10.0


@dataclass
class PeerRuntime:
    """What every peer actor of this instance shares."""

    ctx: zmq.Context[Any]
    keys: KeyPair
    local: Callable[[], LocalInfo]  # what this instance says about itself, now
    publish: Publish
    relay: Callable[[Event], None]  # a remote event into this instance's bus
    peers: Peers
    learned: Callable[[TrustedPeer], None]  # a handshake taught us the peer's uid/name
    join_refused: Callable[[TrustedPeer, str], None]  # an invite we used was turned down
    heartbeat_interval: float = 1.0
    dead_after: float = 3.0
    handshake_timeout: float = 5.0


class Retry(msgspec.Struct, frozen=True):
    """Dial again now (skip the backoff)."""


class Leave(Request[None], frozen=True):
    """Say bye on the link (if open) and stop dialling until the actor restarts."""

    reason: str
    code: str = "closing"


class SetTrust(msgspec.Struct, frozen=True):
    """The peer's trust entry changed (its role, its learnt uid)."""

    trusted: TrustedPeer


class PeerActor(Actor):
    """Keeps the link to one trusted peer; see the module docstring."""

    kind = "peer"

    def __init__(self, trusted: TrustedPeer, runtime: PeerRuntime) -> None:
        super().__init__(fingerprint(trusted.key))
        self.remote = RemotePeer(trusted)
        self._runtime = runtime
        self._retry_scope: trio.CancelScope | None = None
        self._greeting_scope: trio.CancelScope | None = None
        self._retry_now = False
        self._leaving = False

    async def on_start(self) -> None:
        self._leaving = False
        if self.remote.uid and self.remote.uid != self._runtime.local().uid:
            # Known from an earlier run: reachable by uid at once (offline until linked).
            self._runtime.peers.add(self.remote)
        self.nursery.start_soon(self._keep_linked)

    async def on_stop(self) -> None:
        self.remote.connection = None

    async def handle(self, msg: Any) -> Any:
        match msg:
            case Retry():
                # Waiting to dial again, or dialling a peer that had not let us in yet:
                # start over at once (it has just shown it is there).
                self._retry_now = True
                for scope in (self._retry_scope, self._greeting_scope):
                    if scope is not None:
                        scope.cancel()
                return None
            case SetTrust(trusted=trusted):
                self.remote.trusted = trusted
                return None
            case Leave(reason=reason, code=code):
                self._leaving = True
                conn = self.remote.connection
                if conn is not None:
                    await conn.aclose(reason, code)
                return None
        return await super().handle(msg)

    # -- the link ------------------------------------------------------------------------

    async def _keep_linked(self) -> None:
        backoff = BACKOFF_MIN
        while not self._leaving:
            self._retry_now = False
            if await self._attempt():
                backoff = BACKOFF_MIN
            if self._leaving:
                return
            if self._retry_now:
                continue
            with trio.move_on_after(backoff) as scope:
                self._retry_scope = scope
                await trio.sleep_forever()
            self._retry_scope = None
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _attempt(self) -> bool:
        """One link, from dialling to its end; True if it got through the handshake."""
        rt, trusted = self._runtime, self.remote.trusted
        conn = Connection(
            rt.ctx,
            rt.keys,
            address=trusted.address,
            server_key=trusted.key,
            local=rt.local(),
            join=trusted.join,
            heartbeat_interval=rt.heartbeat_interval,
            dead_after=rt.dead_after,
            handshake_timeout=rt.handshake_timeout,
        )
        async with trio.open_nursery() as nursery:
            try:
                with trio.CancelScope() as greeting:
                    self._greeting_scope = greeting
                    welcome: Welcome = await nursery.start(conn.run)
            except HandshakeFailed as exc:
                self._failed(exc.closed)
                return False
            except LinkDown as exc:
                self.remote.reason = str(exc)
                return False
            finally:
                self._greeting_scope = None
            if greeting.cancelled_caught:
                return False
            if welcome.uid == rt.local().uid:
                self.remote.reason = "it has this instance's uid (a copied state directory?)"
                await conn.aclose(self.remote.reason, "refused")
                return False
            self._online(conn, welcome)
            try:
                await self._follow(conn)
            finally:
                self._offline(conn)
        return True

    def _failed(self, closed: Closed) -> None:
        remote = self.remote
        joining = bool(remote.trusted.join)
        if closed.code == "join" or (joining and closed.code == "refused"):
            remote.reason = f"join refused: {closed.reason}"
            remote.refusal = RocdError(remote.reason)
            remote.settled.set()
            self._leaving = True
            self._runtime.join_refused(remote.trusted, closed.reason)
        elif closed.by_remote or closed.code == "refused":
            remote.reason = f"refused: {closed.reason}"
        else:
            remote.reason = f"no answer from {remote.trusted.address} ({closed.reason})"

    def _online(self, conn: Connection, welcome: Welcome) -> None:
        rt, remote = self._runtime, self.remote
        if remote.uid and remote.uid != welcome.uid:
            rt.peers.remove(remote.uid)
        remote._uid = welcome.uid
        remote.connection, remote.welcome, remote.reason = conn, welcome, ""
        rt.peers.add(remote)
        trusted = remote.trusted
        if (trusted.uid, trusted.name, trusted.join) != (welcome.uid, welcome.name, ""):
            remote.trusted = msgspec.structs.replace(
                trusted, uid=welcome.uid, name=welcome.name, join=""
            )
            rt.learned(remote.trusted)
        remote.settled.set()
        log.info("peer %s (%s) online at %s", welcome.name, welcome.uid, conn.address)
        rt.publish(
            "peer.joined",
            welcome.uid,
            {
                "uid": welcome.uid,
                "name": welcome.name,
                "address": trusted.address,
                "fingerprint": remote.fingerprint,
                "role": trusted.role,
            },
        )

    def _offline(self, conn: Connection) -> None:
        remote = self.remote
        closed = conn.closed_by
        remote.connection = None
        remote.last_contact = conn.link.last_heard
        remote.reason = closed.reason if closed is not None else "link closed"
        if closed is not None and closed.by_remote:
            remote.reason = f"the peer said bye: {closed.reason}"
        log.info("peer %s (%s) offline: %s", remote.name, remote.uid, remote.reason)
        self._runtime.publish(
            "peer.left",
            remote.uid,
            {"uid": remote.uid, "name": remote.name, "reason": remote.reason},
        )

    async def _follow(self, conn: Connection) -> None:
        """Subscribe, load the mirror, then apply and relay events until the link ends."""
        conn.subscribe([])
        await self._resync(conn)
        expected, lost = 1, conn.events_lost
        async for ev in conn.events:
            if ev.n != expected or conn.events_lost != lost:
                log.info("peer %s: events lost, reloading its state", self.remote.uid)
                lost = conn.events_lost
                await self._resync(conn)
            expected = ev.n + 1
            self.remote.mirror.apply(ev.kind, ev.subject, ev.data, ev.seq)
            self._runtime.relay(Event(ev.seq, ev.time, ev.kind, ev.peer, ev.subject, ev.data))

    async def _resync(self, conn: Connection) -> None:
        """Load the remote's state into the mirror (retrying while the link is open)."""
        address = ActorAddress("cluster", self.remote.uid)
        while conn.open:
            try:
                body = await conn.ask(
                    address, "GetSnapshot", encode_value(GetSnapshot()), SNAPSHOT_TIMEOUT
                )
                self.remote.mirror.load(decode_value(body, Snapshot))
                return
            except LinkDown:
                return
            except (AskRefused, AskTimedOut, MalformedMessage) as exc:
                log.warning("peer %s: no snapshot (%s); trying again", self.remote.uid, exc)
                await trio.sleep(1.0)
